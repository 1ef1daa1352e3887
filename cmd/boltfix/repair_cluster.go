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

// repairClusterFunc repairs a whole cluster from its members' data dirs.
func repairClusterFunc(cmd *cobra.Command, dataDirs []string, o repairOptions) error {
	stdout := cmd.OutOrStdout()
	for _, d := range dataDirs {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return cantRun(fmt.Errorf("%s is not a data dir", d))
		}
	}
	// Flags that shape one member's dir have no meaning for a cluster,
	// whose membership is the original one.
	for _, f := range []string{"name", "initial-cluster", "initial-advertise-peer-urls", "wal-dir", "bump-revision", "mark-compacted", "force-new-cluster"} {
		if cmd.Flags().Changed(f) {
			return cantRun(fmt.Errorf("--%s applies to one data dir, not to a cluster repair", f))
		}
	}
	ctx := cmd.Context()
	if err := salvage.ValidPageSize(o.pageSize); err != nil {
		return cantRun(fmt.Errorf("--page-size: %w", err))
	}
	opts := repair.Options{Out: o.out, Force: o.force, Aggressive: o.aggressive, PageSize: o.pageSize,
		InitialClusterToken: o.token, SkipStartCheck: o.noStart, Context: ctx,
		ClusterStartCheck: func(db string, n int, work string) ([]int, int64, error) { return childClusterCheck(ctx, db, n, work) }}
	if o.dryRun {
		return repairClusterPlanFunc(cmd, dataDirs, opts, o.json)
	}
	rep, err := repair.RunCluster(dataDirs, opts)
	if err != nil {
		return cantRun(err)
	}
	if o.json {
		if err := writeJSON(stdout, rep); err != nil {
			return cantRun(err)
		}
	} else {
		printRepairCluster(stdout, rep)
	}
	if !rep.Complete {
		return damaged()
	}
	return nil
}

func printRepairCluster(w io.Writer, r *repair.ClusterReport) {
	fmt.Fprintf(w, "boltfix repair %s -> %s (cluster %s)\n", strings.Join(r.Inputs, " "), r.Output, r.ClusterID)
	prose(w, "membership: ", r.Membership.Summary())
	section(w, "sources")
	var rows [][]string
	for _, s := range r.Sources {
		chosen := ""
		if s.Chosen {
			chosen = "CHOSEN"
		}
		rows = append(rows, []string{s.Input, s.Name, fmt.Sprintf("%d..%d commit %d", s.WALFirst, s.WALLast, s.WALCommit), strconv.Itoa(s.DBFindings), chosen, s.Contributed, s.Lacked})
	}
	table(w, []string{"INPUT", "MEMBER", "WAL", "DB FINDINGS", "", "CONTRIBUTED", "LACKED"}, rows)
	fmt.Fprintf(w, "union of the WALs: entries %d..%d, commit %d, %d gaps\n", r.WAL.FirstIndex, r.WAL.LastIndex, r.WAL.Commit, len(r.WAL.Gaps))
	if len(r.Disagreements) > 0 {
		prose(w, "", fmt.Sprintf("%d disagreements between members: %s", len(r.Disagreements), strings.Join(r.Disagreements[:min(5, len(r.Disagreements))], "; ")))
	}
	lostTable(w, r.LostRevisions, r.LostReasons, "unknown")
	section(w, "output members (start them together)")
	rows = nil
	for _, m := range r.Members {
		rows = append(rows, []string{m.Name, m.DataDir, strings.Join(m.PeerURLs, ","), m.MemberID, strconv.Itoa(r.Check.Keys[m.Name])})
	}
	table(w, []string{"NAME", "DIR", "PEER URLS", "ID", "KEYS (check)"}, rows)
	switch {
	case r.Check.Started:
		fmt.Fprintf(w, "check: the repaired data started as a %d-member cluster on loopback peers, revision %d\n", len(r.Members), r.Check.Revision)
	case r.Check.Skipped:
		fmt.Fprintln(w, "check: skipped")
	}
	for _, n := range r.Notes {
		prose(w, "note: ", n)
	}
	section(w, "result")
	if r.Complete {
		fmt.Fprintln(w, "COMPLETE: every revision is accounted for and no member disagreed.")
	} else {
		fmt.Fprintln(w, "PARTIAL: see the lost revisions and disagreements above.")
	}
	section(w, "next steps")
	for i, n := range r.Next {
		prose(w, fmt.Sprintf("  %d. ", i+1), n)
	}
}

func init() { register(newClusterCheckCommand) }

// childClusterCheck runs the cluster start check in a child boltfix
// process, as childStartCheck does for one member: an etcd that panics in
// one of its goroutines takes only the child down.
func childClusterCheck(ctx context.Context, db string, n int, work string) ([]int, int64, error) {
	exe, err := os.Executable()
	if err != nil {
		return repair.ClusterStartCheck(db, n, work)
	}
	out, err := exec.CommandContext(ctx, exe, "internal-cluster-check", db, strconv.Itoa(n), work).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg = firstPanicLine(string(ee.Stderr))
		}
		return nil, 0, fmt.Errorf("%s", msg)
	}
	var r struct {
		Keys []int `json:"keys"`
		Rev  int64 `json:"revision"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, 0, err
	}
	return r.Keys, r.Rev, nil
}

func newClusterCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "internal-cluster-check DB N WORK_DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 1 || n > 9 {
				return cantRun(fmt.Errorf("member count %q", args[1]))
			}
			keys, rev, err := repair.ClusterStartCheck(args[0], n, args[2])
			if err != nil {
				return cantRun(err)
			}
			return writeJSON(cmd.OutOrStdout(), map[string]any{"keys": keys, "revision": rev})
		},
	}
}
