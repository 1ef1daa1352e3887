package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/boltfix/boltfix/wal"
)

func init() { register(newWALCommand) }

func newWALCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wal",
		Short: "Read an etcd WAL without ever stopping silently",
		Long: `The wal commands decode the write-ahead log with boltfix's own loop: every
record that cannot be read is reported with its segment, byte offset and
cause, and reading resumes at the next valid record, so nothing after
damage is dropped without saying so. They never write to the WAL.

DIR may be an etcd data dir (member/wal is used), a member dir, or the wal
dir itself.`,
	}
	cmd.AddCommand(newWALVerifyCommand(), newWALDumpCommand())
	return cmd
}

type walOptions struct {
	json     bool
	from, to uint64
}

func (o *walOptions) AddFlags(cmd *cobra.Command, schema string, dump bool) {
	cmd.Flags().BoolVar(&o.json, "json", false, "print one JSON document (schema "+schema+")")
	if dump {
		cmd.Flags().Uint64Var(&o.from, "from", 0, "first entry index to list")
		cmd.Flags().Uint64Var(&o.to, "to", 0, "last entry index to list (0: the last)")
	}
}

const walExitStatus = `
EXIT STATUS
  0  the WAL reads cleanly from end to end
  1  damage found (every stop is listed with segment, offset and cause)
  2  could not run (usage, no WAL segments, unreadable directory)`

func newWALVerifyCommand() *cobra.Command {
	var o walOptions
	cmd := &cobra.Command{
		Use:   "verify DIR",
		Short: "Check every WAL segment and report segments, index range, HardState, snapshots and stops",
		Long: `verify decodes every segment and checks the rolling CRC chain. It prints
each segment (index range, record counts), the metadata (member and
cluster id), the last HardState (term, vote, commit), the snapshot records,
the entry index range with any gaps, and every stop: segment, byte offset,
cause, and where reading resumed.` + walExitStatus,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return walFunc(cmd.Context(), cmd.OutOrStdout(), args[0], o, false)
		},
	}
	o.AddFlags(cmd, wal.VerifySchema, false)
	return cmd
}

func newWALDumpCommand() *cobra.Command {
	var o walOptions
	cmd := &cobra.Command{
		Use:   "dump DIR",
		Short: "List WAL entries: index, term, type and what each one does",
		Long: `dump lists every raft entry the WAL holds after raft's overwrite rules
(a later entry with the same index replaces the earlier ones): index, term,
entry type, request kind and a one-line description (put, delete, txn,
lease, compaction, membership...). Flagged entries were read after damage.
With --json each entry also carries the decoded request in protojson form.` + walExitStatus,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return walFunc(cmd.Context(), cmd.OutOrStdout(), args[0], o, true)
		},
	}
	o.AddFlags(cmd, wal.DumpSchema, true)
	return cmd
}

func walFunc(ctx context.Context, w io.Writer, dir string, o walOptions, dump bool) error {
	if err := checkWALInput(dir); err != nil {
		return cantRun(err)
	}
	l, err := wal.Read(dir)
	if err != nil {
		return cantRun(err)
	}
	defer l.Close()
	if err := ctx.Err(); err != nil {
		// wal.Read takes no context; stop before printing a report the
		// user no longer wants.
		return cantRun(err)
	}
	r := l.Report(dump)
	if dump && (o.from > 0 || o.to > 0) {
		kept := r.Entries[:0]
		for _, e := range r.Entries {
			if e.Index >= o.from && (o.to == 0 || e.Index <= o.to) {
				kept = append(kept, e)
			}
		}
		r.Entries = kept
	}
	if o.json {
		if err := writeJSON(w, r); err != nil {
			return cantRun(err)
		}
	} else {
		if dump {
			printWALEntries(w, r.Entries)
		}
		printWALReport(w, r)
	}
	if !r.Clean {
		return damaged()
	}
	return nil
}

func printWALEntries(w io.Writer, ents []wal.EntryInfo) {
	rows := make([][]string, 0, len(ents))
	for _, e := range ents {
		rows = append(rows, []string{strconv.FormatUint(e.Index, 10), strconv.FormatUint(e.Term, 10), e.Type, e.Kind, clip(e.Text, 100), string(e.Flag)})
	}
	table(w, []string{"INDEX", "TERM", "TYPE", "KIND", "DESCRIPTION", "FLAG"}, rows)
}

func printWALReport(w io.Writer, r *wal.Report) {
	fmt.Fprintf(w, "WAL %s\n", r.Dir)
	section(w, "segments")
	rows := make([][]string, 0, len(r.Segments))
	for _, s := range r.Segments {
		idx := "-"
		if s.Records.Entry > 0 {
			idx = fmt.Sprintf("%d..%d", s.FirstIndex, s.LastIndex)
		}
		rows = append(rows, []string{
			s.Name, strconv.FormatUint(s.Seq, 10), strconv.FormatUint(s.NameIndex, 10), idx,
			fmt.Sprintf("%d/%d/%d/%d/%d", s.Records.Entry, s.Records.State, s.Records.Snapshot, s.Records.Metadata, s.Records.CRC),
			fmt.Sprintf("0x%x", s.DataEnd), strconv.Itoa(len(s.Stops)),
		})
	}
	table(w, []string{"SEGMENT", "SEQ", "NAME INDEX", "ENTRIES", "ENT/STATE/SNAP/META/CRC", "DATA END", "STOPS"}, rows)

	section(w, "raft state")
	if m := r.Metadata; m != nil {
		fmt.Fprintf(w, "  member %016x  cluster %016x\n", m.NodeID, m.ClusterID)
	} else {
		fmt.Fprintln(w, "  no readable metadata record")
	}
	if hs := r.HardState; hs != nil {
		fmt.Fprintf(w, "  hard state   term %d  vote %x  commit %d%s\n               (the last of %d, %s @ 0x%x)\n",
			hs.Term, hs.Vote, hs.Commit, flagNote(hs.Flag), r.HardStates, hs.Segment, hs.Offset)
	} else {
		fmt.Fprintln(w, "  no readable HardState: nothing can be treated as committed")
	}
	for _, s := range r.Snapshots {
		fmt.Fprintf(w, "  snapshot     index %d  term %d  voters %s%s\n", s.Index, s.Term, ids(s.Voters), flagNote(s.Flag))
	}
	if r.EntryCount > 0 {
		fmt.Fprintf(w, "  entries      %d..%d (%d entries, %d overwritten, %d flagged)\n",
			r.FirstIndex, r.LastIndex, r.EntryCount, r.Overwritten, r.Flagged)
	} else {
		fmt.Fprintln(w, "  entries      none")
	}
	fmt.Fprintf(w, "  committed    %d", r.CommitIndex)
	if r.LastIndex > r.CommitIndex {
		fmt.Fprintf(w, " (%d entries above it were never committed)", r.LastIndex-r.CommitIndex)
	}
	fmt.Fprintln(w)
	for _, g := range r.Gaps {
		fmt.Fprintf(w, "  gap          %d..%d missing (%d entries)\n", g.From, g.To, g.To-g.From+1)
	}

	if len(r.Stops) > 0 {
		section(w, "stops")
		for _, s := range r.Stops {
			fmt.Fprintf(w, "  %s @ 0x%x (%d): %s", s.Segment, s.Offset, s.Offset, s.Cause)
			if s.Detail != "" {
				fmt.Fprintf(w, ": %s", s.Detail)
			}
			if s.ResumedAt >= 0 {
				fmt.Fprintf(w, "\n      resumed at 0x%x, %d bytes skipped\n", s.ResumedAt, s.Skipped)
			} else {
				fmt.Fprintf(w, "\n      nothing readable after it in this segment (%d bytes)\n", s.Skipped)
			}
		}
	}
	if len(r.Suspect) > 0 {
		section(w, "suspect entries (read, not used)")
		for _, e := range r.Suspect {
			fmt.Fprintf(w, "  %d term %d %s: %s (%s @ 0x%x)\n", e.Index, e.Term, e.Flag, clip(e.Text, 80), e.Segment, e.Offset)
		}
	}
	fmt.Fprintln(w)
	if r.Clean {
		fmt.Fprintln(w, "OK: every segment reads cleanly to its end")
	} else {
		fmt.Fprintf(w, "DAMAGED: %d stop(s); entries after damage are kept and flagged\n", len(r.Stops))
	}
}

func flagNote(f wal.Flag) string {
	if f == wal.FlagNone {
		return ""
	}
	return " [" + string(f) + "]"
}

func ids(v []uint64) string {
	s := make([]string, len(v))
	for i, id := range v {
		s[i] = fmt.Sprintf("%x", id)
	}
	return "[" + strings.Join(s, " ") + "]"
}
