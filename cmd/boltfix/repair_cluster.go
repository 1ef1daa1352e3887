package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/boltfix/boltfix/repair"
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
	rep, err := repair.RunCluster(dataDirs, repair.Options{Out: o.out, Force: o.force, Aggressive: o.aggressive,
		InitialClusterToken: o.token, SkipStartCheck: o.noStart})
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
	fmt.Fprintf(w, "membership: %s\n", r.Membership.Summary())
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
		fmt.Fprintf(w, "%d disagreements between members: %s\n", len(r.Disagreements), strings.Join(r.Disagreements[:min(5, len(r.Disagreements))], "; "))
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
		fmt.Fprintln(w, "note: "+n)
	}
	section(w, "result")
	if r.Complete {
		fmt.Fprintln(w, "COMPLETE: every revision is accounted for and no member disagreed.")
	} else {
		fmt.Fprintln(w, "PARTIAL: see the lost revisions and disagreements above.")
	}
	section(w, "next steps")
	for i, n := range r.Next {
		fmt.Fprintf(w, "  %d. %s\n", i+1, n)
	}
}
