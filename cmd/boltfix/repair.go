package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/boltfix/boltfix/repair"
	"github.com/boltfix/boltfix/salvage"
	"github.com/spf13/cobra"
)

type repairOptions struct {
	out, name, initialCluster, token, walDir string
	peerURLs                                 []string
	bump                                     uint64
	markCompacted                            bool
	json, aggressive, force, noStart         bool
	forceNewCluster, dryRun                  bool
	pageSize                                 int
}

func (o *repairOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "", "new data dir to write (required; never inside the input)")
	f.BoolVar(&o.json, "json", false, "print the report as one JSON document (schema "+repair.ReportSchema+")")
	f.BoolVar(&o.aggressive, "aggressive", false, "keep carved records that may be compaction garbage (flagged)")
	f.BoolVar(&o.force, "force", false, "replace --out if it exists")
	f.StringVar(&o.walDir, "wal-dir", "", "the WAL dir, when etcd ran with --wal-dir (default: DATA_DIR/member/wal)")
	f.StringVar(&o.name, "name", "", "member name (default: the original member's)")
	f.StringVar(&o.initialCluster, "initial-cluster", "", "name=peerURL of the new single-member cluster (default: the original)")
	f.StringSliceVar(&o.peerURLs, "initial-advertise-peer-urls", nil, "peer URLs of the member (default: the original)")
	f.StringVar(&o.token, "initial-cluster-token", "", "initial cluster token (default etcd-cluster)")
	f.Uint64Var(&o.bump, "bump-revision", 0, "raise the revision by this much (default: 1000000 when revisions may have gone backwards)")
	f.BoolVar(&o.markCompacted, "mark-compacted", false, "mark the bumped revision compacted so watchers relist (default: with an automatic bump)")
	f.BoolVar(&o.noStart, "skip-start-check", false, "do not start etcd on a copy of the result to check it")
	f.BoolVar(&o.forceNewCluster, "force-new-cluster", false, "write a new one-member cluster even when DATA_DIR is one member of a cluster with other members (they must never run again beside it)")
	f.IntVar(&o.pageSize, "page-size", 0, pageSizeUsage)
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan (sources, strategy and why, steps, outputs) and write nothing")
	_ = cmd.MarkFlagRequired("out")
	_ = cmd.MarkFlagDirname("out")
}

func init() {
	register(newRepairCommand)
	register(newStartCheckCommand)
}

func newRepairCommand() *cobra.Command {
	var o repairOptions
	cmd := &cobra.Command{
		Use:   "repair DATA_DIR [DATA_DIR...] --out NEW_DIR",
		Short: "Rebuild a member dir etcd starts from: salvage the db, replay the WAL",
		Long: `repair salvages DATA_DIR/member/snap/db (or starts from nothing when it is
missing), reads DATA_DIR/member/wal, replays the committed entries the salvaged
state lacks with etcd's own apply code, cross-checks what the replay regenerates
against the records carved from the db, and writes NEW_DIR/member/{snap,wal}
the way etcdutl's snapshot restore does, with etcd's own code. It checks its own output (bbolt check, the
consistent_index against the new WAL, a start of etcd on a copy) before it
reports success. DATA_DIR is never modified.

By default the new dir is a drop-in for the original: same member name and
peer URLs, single-member cluster. When DATA_DIR is one member of a cluster
with other voting members, repair writes nothing and prints etcd's procedure
to replace the member from its healthy peers (a one-member cluster next to
them would split the cluster); --force-new-cluster writes it anyway.

With several DATA_DIRs, the data dirs of the members of one cluster, repair
rebuilds the whole cluster: the union of their WALs, each member's db
repaired with it, the best result cross-checked against the others, written
as NEW_DIR/<member-name>/member for every original member (original names
and peer URLs, --initial-cluster-token default etcd-cluster), and started
as one cluster on loopback peer URLs as a check. When revisions may have gone backwards it
bumps the revision and marks it compacted, so Kubernetes watch caches relist.

EXIT STATUS
  0  complete: nothing lost, and the db's claims hold against the WAL
  1  partial: the report names the lost revision ranges and what could not
     be proven; or refused (one member of a multi-member cluster, nothing
     written)
  2  could not run

With --dry-run, repair reads and scans the inputs, prints the plan (the
sources, the strategy and the evidence for it, the steps in order, the
outputs) and writes nothing: exit 0 when the plan can run, 1 when it is a
refusal, 2 when no plan could be made. With several DATA_DIRs it prints the
cluster plan and each member's plan.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return repairClusterFunc(cmd, args, o)
			}
			return repairFunc(cmd, args[0], o)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func repairFunc(cmd *cobra.Command, dataDir string, o repairOptions) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if st, err := os.Stat(dataDir); err != nil || !st.IsDir() {
		return cantRun(fmt.Errorf("%s is not a data dir", dataDir))
	}
	ctx := cmd.Context()
	if err := salvage.ValidPageSize(o.pageSize); err != nil {
		return cantRun(fmt.Errorf("--page-size: %w", err))
	}
	opts := repair.Options{Out: o.out, Force: o.force, Aggressive: o.aggressive, Name: o.name, WALDir: o.walDir, PageSize: o.pageSize,
		InitialCluster: o.initialCluster, InitialAdvertisePeerURLs: o.peerURLs, InitialClusterToken: o.token,
		SkipStartCheck: o.noStart, Context: ctx, ForceNewCluster: o.forceNewCluster,
		StartCheck: func(dir string) (int, int64, error) { return childStartCheck(ctx, dir) }}
	if cmd.Flags().Changed("bump-revision") {
		opts.BumpRevision = &o.bump
	}
	if cmd.Flags().Changed("mark-compacted") {
		opts.MarkCompacted = &o.markCompacted
	}
	if o.dryRun {
		return repairPlanFunc(cmd, dataDir, opts, o.json)
	}
	bar := newProgress(stderr)
	defer bar.Done()
	opts.Progress = bar
	rep, err := repair.Run(dataDir, opts)
	bar.Done()
	if err != nil {
		return cantRun(err)
	}
	if o.json {
		if err := writeJSON(stdout, rep); err != nil {
			return cantRun(err)
		}
	} else if rep.Refused != nil {
		printRefusal(stdout, rep)
	} else {
		printRepair(stdout, rep)
	}
	if !rep.Complete {
		return damaged()
	}
	return nil
}

// childStartCheck runs the etcd start check in a child boltfix process: an
// etcd that panics in one of its goroutines takes only the child down. An
// interrupt kills the child (its etcd runs on a copy inside repair's temp
// dir, which repair then removes).
func childStartCheck(ctx context.Context, dir string) (int, int64, error) {
	exe, err := os.Executable()
	if err != nil {
		return repair.StartCheck(dir)
	}
	out, err := exec.CommandContext(ctx, exe, "internal-start-check", dir).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg = firstPanicLine(string(ee.Stderr))
		}
		return 0, 0, fmt.Errorf("%s", msg)
	}
	var r struct {
		Keys int   `json:"keys"`
		Rev  int64 `json:"revision"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, 0, err
	}
	return r.Keys, r.Rev, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func newStartCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "internal-start-check DATA_DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, rev, err := repair.StartCheck(args[0])
			if err != nil {
				return cantRun(err)
			}
			return writeJSON(cmd.OutOrStdout(), map[string]any{"keys": keys, "revision": rev})
		},
	}
}

func printRepair(w io.Writer, r *repair.Report) {
	fmt.Fprintf(w, "boltfix repair %s -> %s\n", r.Input, r.Output)
	printRepairSources(w, r)

	if len(r.Steps) > 0 {
		section(w, "steps (strategy "+string(r.Strategy)+"; --dry-run shows the plan)")
		rows := make([][]string, 0, len(r.Steps))
		for _, s := range r.Steps {
			ran := "done"
			if !s.Ran {
				ran = "skipped"
			}
			rows = append(rows, []string{string(s.Name), ran, s.Result})
		}
		table(w, []string{"STEP", "", "RESULT"}, rows)
	}

	section(w, "records")
	c := r.Counts
	table(w, []string{"REACHED", "CARVED", "REPLAYED", "REGENERATED (cross-checked)", "IN NEW DB"}, [][]string{{
		strconv.Itoa(c.Reached), strconv.Itoa(c.Carved), strconv.Itoa(c.Replayed), strconv.Itoa(c.Regenerated), strconv.Itoa(c.Final)}})
	if len(r.Disagreements) > 0 {
		prose(w, "", fmt.Sprintf("%d revisions differ between the db and the WAL (the WAL's version was kept): %s", len(r.Disagreements), strings.Join(r.Disagreements[:min(10, len(r.Disagreements))], ", ")))
	}

	if a := r.Audit; a != nil {
		section(w, "audit (the db's claims against the WAL)")
		prose(w, "", a.Verdict)
		for i, f := range a.Failures {
			if i == 3 {
				prose(w, "  ", fmt.Sprintf("... %d contradictions in all (--json audit.failures)", a.Missing))
				break
			}
			prose(w, "  - ", f)
		}
		if a.Unvouched != "" {
			prose(w, "", a.Unvouched)
		}
	}

	lostTable(w, r.LostRevisions, r.LostReasons, "unknown")
	if len(r.LostRevisions) > 0 {
		fmt.Fprintf(w, "%d keys may be stale or deleted (see --json possibly_stale)\n", r.PossiblyStaleCount)
	}

	ledgerTable(w, r.Ledger)

	printRepairChecks(w, r)
	if r.BumpReason != "" {
		prose(w, "", r.BumpReason)
	}
	if len(r.Notes) > 0 {
		section(w, "notes")
		for _, n := range r.Notes {
			prose(w, "  - ", n)
		}
	}
	for _, warn := range r.Warnings {
		prose(w, "WARNING: ", warn)
	}
	section(w, "result")
	if r.Complete {
		fmt.Fprintln(w, "COMPLETE: every revision is accounted for.")
	} else {
		fmt.Fprintln(w, "PARTIAL: not everything could be recovered or proven:")
		if len(r.LostRevisions) > 0 {
			fmt.Fprintf(w, "  - %d lost revision ranges (above)\n", len(r.LostRevisions))
		}
		for _, u := range r.Unproven {
			prose(w, "  - ", u)
		}
	}
	section(w, "next steps")
	for i, n := range r.Next {
		prose(w, fmt.Sprintf("  %d. ", i+1), n)
	}
}

// printRepairSources is the SOURCES table: where the data came from.
func printRepairSources(w io.Writer, r *repair.Report) {
	section(w, "sources")
	rows := [][]string{}
	if r.DB.Present {
		rows = append(rows, []string{"db", fmt.Sprintf("%d scan findings; %s", r.DB.Findings, r.DB.Strategy)})
	} else {
		rows = append(rows, []string{"db", r.DB.Strategy})
	}
	if r.WAL.Present {
		state := "clean"
		if !r.WAL.Clean {
			state = fmt.Sprintf("%d damage stops (boltfix wal verify shows where)", len(r.WAL.Stops))
		}
		rows = append(rows, []string{"wal", fmt.Sprintf("entries %d..%d, commit %d, %s", r.WAL.FirstIndex, r.WAL.LastIndex, r.WAL.Commit, state)})
	} else {
		rows = append(rows, []string{"wal", "none"})
	}
	if r.Replay != nil {
		rows = append(rows, []string{"replay", fmt.Sprintf("index %d -> %d, revision %d -> %d, %d rejected as etcd did, %d errors",
			r.Replay.ConsistentIndexBefore, r.Replay.ConsistentIndex, r.Replay.RevisionBefore, r.Replay.Revision, len(r.Replay.Rejected), len(r.Replay.Errors))})
	}
	rows = append(rows, []string{"version", r.Version})
	rows = append(rows, []string{"membership", r.Membership.Summary()})
	table(w, []string{"SOURCE", "WHAT"}, rows)
}

// printRepairChecks is the CHECKS table: what repair checked of its output.
func printRepairChecks(w io.Writer, r *repair.Report) {
	section(w, "checks")
	etcd := "skipped"
	if r.Checks.EtcdStarted {
		etcd = fmt.Sprintf("started and served %d keys at revision %d", r.Checks.EtcdKeys, r.Checks.EtcdRevision)
	}
	table(w, []string{"CHECK", "RESULT"}, [][]string{
		{"bbolt check of the new db", okString(r.Checks.BboltCheck)},
		{"consistent_index <= new WAL commit", okString(r.Checks.IndexWithinWAL)},
		{"etcd start on a copy", etcd},
		{"member", fmt.Sprintf("%s %s (from %s)", r.Member.Name, strings.Join(r.Member.PeerURLs, ","), r.Member.From)},
		{"revision bump", fmt.Sprintf("%d, mark compacted %v", r.RevisionBump, r.MarkCompacted)},
	})
}

func okString(b bool) string {
	if b {
		return "ok"
	}
	return "FAILED"
}
