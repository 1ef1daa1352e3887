package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/salvage"
	"github.com/boltfix/boltfix/spill"
	"github.com/spf13/cobra"
)

type salvageOptions struct {
	out        string
	json       bool
	aggressive bool
	force      bool
	pageSize   int
}

// pageSizeUsage is --page-size's help, shared by salvage and repair.
const pageSizeUsage = "page size of the new db in bytes, a power of two from 4096 to 65536 (default: the input's or 16384, whichever is larger; 4096 is what etcd creates on x86)"

func (o *salvageOptions) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.out, "out", "", "path of the new db to write (required; never the input)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the report as one JSON document (schema "+salvage.ReportSchema+")")
	cmd.Flags().BoolVar(&o.aggressive, "aggressive", false, "keep carved records that may be compaction garbage (flagged; may resurrect deleted keys)")
	cmd.Flags().BoolVar(&o.force, "force", false, "replace --out if it exists")
	cmd.Flags().IntVar(&o.pageSize, "page-size", 0, pageSizeUsage)
	_ = cmd.MarkFlagRequired("out")
}

func init() { register(newSalvageCommand) }

func newSalvageCommand() *cobra.Command {
	var o salvageOptions
	cmd := &cobra.Command{
		Use:   "salvage DB --out NEW.db",
		Short: "Copy every record still on disk into a fresh, valid db",
		Long: `salvage writes a new bbolt db holding every record the damaged DB still has:
the records the best tree reaches, plus etcd key-bucket records carved from
free, orphan and unreachable pages (revision records are immutable, so a copy
found anywhere is true history). etcd's mutable buckets (meta, members, lease,
auth, alarm, cluster) come from one consistent tree only.

Carved records below the compaction revision whose key has no newer record
may be compaction garbage: they are left out and listed unless --aggressive.

The report names every revision range that may be lost and every key whose
newest surviving record predates a lost range. DB is never modified; the
output is written to a temp file, synced, checked with bbolt, then renamed.

EXIT STATUS
  0  every record recovered, nothing left out
  1  partial: something may be lost or was left out (the report says what)
  2  could not run`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return salvageFunc(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], o)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func salvageFunc(ctx context.Context, stdout, stderr io.Writer, arg string, o salvageOptions) error {
	in, err := resolveDB(arg)
	if err != nil {
		return cantRun(err)
	}
	if err := salvage.CheckOutput(in, o.out, o.force); err != nil {
		return cantRun(err)
	}
	if err := salvage.ValidPageSize(o.pageSize); err != nil {
		return cantRun(fmt.Errorf("--page-size: %w", err))
	}
	f, err := pagewalk.Open(in)
	if err != nil {
		return cantRun(err)
	}
	defer f.Close()
	bar := newProgress(stderr)
	defer bar.Done()
	bar.Phase("scanning", int64(f.PageCount()))
	// The tables that grow with the db spill next to the output.
	sp := spill.For(filepath.Dir(o.out), f.Size())
	defer sp.Close()
	res, err := f.Scan(pagewalk.Options{Progress: bar, Context: ctx, Spill: sp})
	if err != nil {
		return cantRun(err)
	}
	rep, err := salvage.FromScan(res, in, o.out, salvage.Options{Aggressive: o.aggressive, Force: o.force, PageSize: o.pageSize, Progress: bar, Context: ctx})
	bar.Done()
	if err != nil {
		var re *salvage.RecordError
		if errors.As(err, &re) {
			return cantRun(fmt.Errorf("record at page %d: %w", re.Page, err))
		}
		return cantRun(err)
	}
	m := dbMembership(in, res.Report.Etcd)
	if o.json {
		if err := writeJSON(stdout, salvageJSON{rep, m}); err != nil {
			return cantRun(err)
		}
	} else {
		printSalvage(stdout, rep)
		printMembership(stdout, m)
	}
	if !rep.Complete {
		return damaged()
	}
	return nil
}

func printSalvage(w io.Writer, r *salvage.Report) {
	if r.Generic != nil {
		printGenericSalvage(w, r)
		return
	}
	fmt.Fprintf(w, "boltfix salvage %s -> %s\n", r.Input, r.Output)
	prose(w, "", fmt.Sprintf("scan: %d findings; tree: %s", r.Findings, r.Source))

	section(w, "buckets")
	var rows [][]string
	for _, b := range r.Buckets {
		status := "ok"
		switch {
		case b.Missing:
			status = "NOT REACHED (created empty)"
		case b.Damaged:
			status = "DAMAGED tree"
		}
		rows = append(rows, []string{strings.Join(b.Bucket, "/"), strconv.Itoa(b.Reached), strconv.Itoa(b.Carved), strconv.Itoa(b.LeftOut), strconv.Itoa(b.Written), status})
	}
	table(w, []string{"BUCKET", "REACHED", "CARVED", "LEFT OUT", "WRITTEN", "STATUS"}, rows)

	rc := r.Records
	section(w, "etcd key records")
	table(w, []string{"ITEM", "VALUE"}, [][]string{
		{"revisions", fmt.Sprintf("%d .. %d", r.FirstRevision, r.LastRevision)},
		{"reached / carved / written", fmt.Sprintf("%d / %d / %d", rc.Reached, rc.Carved, rc.Written)},
		{"carved pages (of candidates)", fmt.Sprintf("%d of %d", rc.CarvedPages, rc.CandidatePages)},
		{"duplicate copies", strconv.Itoa(rc.Duplicates)},
		{"compacted (dropped)", strconv.Itoa(rc.Compacted)},
		{"uncertain", fmt.Sprintf("%d (%s)", rc.Uncertain, map[bool]string{true: "kept, flagged", false: "left out"}[r.Aggressive])},
		{"compaction revision", fmt.Sprintf("%d (%s)", r.CompactRevision, r.CompactSource)},
		{"consistent_index / term", optU(r.ConsistentIndex) + " / " + optU(r.Term)},
	})

	if e := r.Evidence; e != (salvage.EvidenceCounts{}) {
		fmt.Fprintf(w, "evidence below the compaction: %d proven compacted (newer record %d, tombstone %d, spanning leaf %d, lease gone %d, live tiling %d), %d proven live (live tiling %d, newer record above %d), %d without evidence\n",
			e.SupersededNewer+e.Tombstone+e.SpannedLacking+e.LeaseGone+e.NotInLiveTiling, e.SupersededNewer, e.Tombstone, e.SpannedLacking, e.LeaseGone, e.NotInLiveTiling,
			e.LiveTiling+e.NewerAboveCompaction, e.LiveTiling, e.NewerAboveCompaction, e.NoEvidence)
	}
	if r.LeftOutCount > 0 {
		fmt.Fprintf(w, "%d keys seen on disk were not written (no evidence whether compaction kept them): see --json left_out\n", r.LeftOutCount)
		for i, l := range r.LeftOut {
			if i == 5 {
				fmt.Fprintf(w, "  ... %d more\n", r.LeftOutCount-5)
				break
			}
			fmt.Fprintf(w, "  %s (revision %d) %s\n", l.Key, l.Revision, l.Object)
		}
	}
	lostTable(w, r.LostRevisions, r.LostReasons, "end")
	if len(r.LostRevisions) > 0 {
		prose(w, "", fmt.Sprintf("%d keys have their newest surviving record before a lost range (possibly stale or deleted): see --json possibly_stale", r.PossiblyStaleCount))
	}
	if len(r.Conflicts) > 0 {
		fmt.Fprintf(w, "%d revisions had differing copies: the value more copies agree on was kept; see --json conflicts\n", len(r.Conflicts))
	}
	if r.UnverifiedCount > 0 {
		fmt.Fprintf(w, "%d records are unverified: %s; see --json unverified (boltfix repair checks them against the WAL where it reaches)\n", r.UnverifiedCount, r.UnverifiedReason)
	}

	ledgerTable(w, r.Ledger)

	section(w, "result")
	if r.Complete {
		fmt.Fprintln(w, "COMPLETE: every record was recovered. The new db passed bbolt's check.")
	} else {
		fmt.Fprintln(w, "PARTIAL: see the lost revisions above. The new db passed bbolt's check.")
	}
	section(w, "next")
	for _, n := range r.Next {
		prose(w, "  ", n)
	}
}
