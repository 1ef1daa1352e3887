package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/boltfix/boltfix/repair"
	"github.com/spf13/cobra"
)

// repairPlanFunc is `repair DATA_DIR --dry-run`: the plan, printed; nothing
// written. Exit 0 when the plan can run, 1 when it is a refusal, 2 when no
// plan could be made.
func repairPlanFunc(cmd *cobra.Command, dataDir string, opts repair.Options, asJSON bool) error {
	bar := newProgress(cmd.ErrOrStderr())
	defer bar.Done()
	opts.Progress = bar
	p, err := repair.NewPlan(dataDir, opts)
	bar.Done()
	if err != nil {
		return cantRun(err)
	}
	defer p.Close()
	stdout := cmd.OutOrStdout()
	if asJSON {
		if err := writeJSON(stdout, p); err != nil {
			return cantRun(err)
		}
	} else {
		printPlan(stdout, p)
	}
	if p.Refused != nil {
		return damaged()
	}
	return nil
}

func printPlan(w io.Writer, p *repair.Plan) {
	fmt.Fprintf(w, "boltfix repair %s -> %s: DRY RUN, nothing written\n", p.Input, p.Output)
	section(w, "sources")
	db := p.DB
	dbRow := "missing"
	switch {
	case db.Present:
		top := "damaged at its top"
		if db.TopIntact {
			top = fmt.Sprintf("intact at its top (revision %d)", db.NewestRevision)
		}
		dbRow = fmt.Sprintf("%d scan findings, consistent_index %d, term %d, %d key records reached, key bucket %s", db.Findings, db.ConsistentIndex, db.Term, db.KeyRecords, top)
	case db.Problem != "":
		dbRow = "unreadable: " + db.Problem
	}
	walRow := "none"
	if wl := p.WAL; wl.Present {
		state := "clean"
		if !wl.Clean {
			state = fmt.Sprintf("%d damage stops (boltfix wal verify shows where)", len(wl.Stops))
		}
		walRow = fmt.Sprintf("entries %d..%d, commit %d, %s", wl.FirstIndex, wl.LastIndex, wl.Commit, state)
	} else if wl.DirMissing {
		walRow = "none: " + wl.Dir + " does not exist"
	}
	table(w, []string{"SOURCE", "WHAT"}, [][]string{{"db", dbRow}, {"wal", walRow}, {"membership", p.Membership.Summary()}})
	for _, warn := range p.Warnings {
		prose(w, "WARNING: ", warn)
	}
	if p.Refused != nil {
		section(w, "refused")
		prose(w, "", p.Refused.Reason)
		for i, n := range p.Refused.Procedure {
			prose(w, fmt.Sprintf("  %d. ", i+1), n)
		}
		return
	}
	section(w, "strategy")
	fmt.Fprintf(w, "%s, because:\n", p.Strategy)
	for _, why := range p.Why {
		prose(w, "  - ", why)
	}
	section(w, "steps")
	rows := make([][]string, 0, len(p.Steps))
	for i, s := range p.Steps {
		what := s.Does
		if s.If != "" {
			what = "if " + s.If + ": " + what
		}
		rows = append(rows, []string{strconv.Itoa(i + 1), string(s.Name), what})
	}
	table(w, []string{"#", "STEP", "WHAT IT WILL DO"}, rows)
	section(w, "outputs")
	prose(w, "", strings.Join(p.Outputs, " "))
	section(w, "next steps")
	prose(w, "", "run the same command without --dry-run to repair")
}

// repairClusterPlanFunc is `repair DIR1 DIR2 ... --dry-run`: the cluster
// plan with each member's plan. Exit 0, or 2 when no plan could be made.
func repairClusterPlanFunc(cmd *cobra.Command, dataDirs []string, opts repair.Options, asJSON bool) error {
	bar := newProgress(cmd.ErrOrStderr())
	defer bar.Done()
	opts.Progress = bar
	p, err := repair.NewClusterPlan(dataDirs, opts)
	if err == nil {
		err = p.PlanMembers()
	}
	bar.Done()
	if err != nil {
		return cantRun(err)
	}
	stdout := cmd.OutOrStdout()
	if asJSON {
		if err := writeJSON(stdout, p); err != nil {
			return cantRun(err)
		}
		return nil
	}
	fmt.Fprintf(stdout, "boltfix repair %s -> %s (cluster %s): DRY RUN, nothing written\n", strings.Join(p.Inputs, " "), p.Output, p.ClusterID)
	section(stdout, "sources")
	var rows [][]string
	for i, s := range p.Sources {
		strategy := ""
		if i < len(p.Members) {
			strategy = string(p.Members[i].Strategy)
			if e := p.Members[i].Error; e != "" {
				strategy = "cannot repair: " + e
			}
		}
		rows = append(rows, []string{s.Input, s.Name, fmt.Sprintf("%d..%d commit %d", s.WALFirst, s.WALLast, s.WALCommit), strconv.Itoa(s.WALOnlyHere), strategy})
	}
	table(stdout, []string{"INPUT", "MEMBER", "WAL", "ONLY HERE", "ITS DB WITH THE UNION WAL"}, rows)
	fmt.Fprintf(stdout, "union of the WALs: entries %d..%d, commit %d, %d gaps\n", p.WAL.FirstIndex, p.WAL.LastIndex, p.WAL.Commit, len(p.WAL.Gaps))
	for _, m := range p.Members {
		if m.Error != "" {
			continue
		}
		section(stdout, "member "+m.Name+": "+string(m.Strategy))
		for _, why := range m.Why {
			prose(stdout, "  - ", why)
		}
	}
	section(stdout, "steps")
	rows = nil
	for i, s := range p.Steps {
		rows = append(rows, []string{strconv.Itoa(i + 1), string(s.Name), s.Does})
	}
	table(stdout, []string{"#", "STEP", "WHAT IT WILL DO"}, rows)
	section(stdout, "outputs")
	prose(stdout, "", strings.Join(p.Outputs, " "))
	return nil
}
