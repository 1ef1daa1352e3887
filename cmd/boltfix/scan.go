package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/salvage"
	"github.com/boltfix/boltfix/spill"
	"github.com/spf13/cobra"
)

type scanOptions struct {
	json bool
	deep bool
}

func (o *scanOptions) AddFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.json, "json", false, "print the report as one JSON document (schema "+pagewalk.ReportSchema+")")
	cmd.Flags().BoolVar(&o.deep, "deep", false, "decode every etcd key-bucket value and count live keys")
}

func init() { register(newScanCommand) }

func newScanCommand() *cobra.Command {
	var o scanOptions
	cmd := &cobra.Command{
		Use:   "scan DB",
		Short: "Find the damage in a bbolt file and say what it holds",
		Long: `scan reads a bbolt database page by page, without bbolt, validates both
meta pages, walks every bucket from the best root, counts every page, and
reports each piece of damage with the page that holds it, the chain of pages
from the root, the bucket, the element and the key (and etcd revision) range
that hangs under it. It never writes to DB and takes no lock.

DB may be the bbolt file or an etcd data dir (member/snap/db is used).

EXIT STATUS
  0  no damage found
  1  damage found
  2  could not run (usage, unreadable input, not a bbolt file)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return scanFunc(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], o)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

// resolveDB accepts the db file or a data dir holding member/snap/db, and
// refuses a db that is not a regular file before anything opens it.
func resolveDB(p string) (string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return p, checkRegularFile(p)
	}
	for _, c := range []string{filepath.Join(p, "member", "snap", "db"), filepath.Join(p, "snap", "db")} {
		if _, err := os.Stat(c); err == nil {
			return c, checkRegularFile(c)
		}
	}
	return "", fmt.Errorf("%s is a directory without member/snap/db", p)
}

func scanFunc(ctx context.Context, stdout, stderr io.Writer, arg string, o scanOptions) error {
	path, err := resolveDB(arg)
	if err != nil {
		return cantRun(err)
	}
	f, err := pagewalk.Open(path)
	if err != nil {
		return cantRun(err)
	}
	defer f.Close()
	bar := newProgress(stderr)
	bar.Phase("scanning", int64(f.PageCount()))
	sp := spill.For(os.TempDir(), f.Size())
	defer sp.Close()
	res, err := f.Scan(pagewalk.Options{Deep: o.deep, Progress: bar, Context: ctx, Spill: sp})
	bar.Done()
	if err != nil {
		return cantRun(err)
	}
	m := dbMembership(path, res.Report.Etcd)
	if o.json {
		if err := writeJSON(stdout, scanJSON{res.Report, m}); err != nil {
			return cantRun(err)
		}
	} else {
		printScan(stdout, res.Report)
		printMembership(stdout, m)
	}
	if !res.Report.Clean {
		return damaged()
	}
	return nil
}

func printScan(w io.Writer, r *pagewalk.Report) {
	fmt.Fprintf(w, "boltfix scan %s\n%s bytes, page size %d (from %s), %d pages\n",
		r.Path, humanBytes(r.Size), r.PageSize, r.PageSizeSource, r.Pages)
	generic := r.Layout != nil && !r.Layout.IsEtcd()
	if r.Layout != nil {
		prose(w, "file: ", r.Layout.String())
	}

	section(w, "meta pages")
	var rows [][]string
	for _, m := range r.Metas {
		status := "valid"
		if !m.Valid || !m.Usable {
			status = "BAD: " + strings.Join(m.Problems, "; ")
		}
		if r.Chosen == int(m.Page) {
			status += " (walked)"
		}
		fl := "none (NoFreelistSync)"
		if m.Meta.Freelist != pagewalk.NoFreelist {
			fl = strconv.FormatUint(m.Meta.Freelist, 10)
		}
		rows = append(rows, []string{strconv.FormatUint(m.Page, 10), strconv.FormatUint(m.Meta.Txid, 10),
			strconv.FormatUint(m.Meta.Root, 10), fl, strconv.FormatUint(m.Meta.Pgid, 10), clip(status, 90)})
	}
	table(w, []string{"META", "TXID", "ROOT", "FREELIST", "HWM", "STATUS"}, rows)
	prose(w, "Chosen: ", r.ChosenReason)

	section(w, "pages")
	c := r.Census
	table(w, []string{"KIND", "PAGES", "NOTE"}, [][]string{
		{"meta", u(c.Meta), ""},
		{"freelist", u(c.Freelist), ""},
		{"branch", u(c.Branch), "reached"},
		{"leaf", u(c.Leaf), "reached"},
		{"overflow", u(c.Overflow), "continuation pages of reached nodes"},
		{"free", u(c.Free), fmt.Sprintf("%d hold older copies of pages (carvable)", c.FreeStale)},
		{"orphan", u(c.Orphan), "well-formed, reached by nothing, not free"},
		{"unreadable", u(c.Unreadable), ""},
		{"past hwm", u(c.PastHWM), fmt.Sprintf("%d hold stale pages", c.PastHWMStale)},
		{"missing", u(c.Missing), "below the high-water mark but past EOF"},
	})

	if generic && len(r.Buckets) > 0 {
		printScanBuckets(w, r.Buckets)
	} else if len(r.Buckets) > 0 {
		section(w, "buckets")
		rows = nil
		for _, b := range r.Buckets {
			root := strconv.FormatUint(b.Root, 10)
			if b.Inline {
				root = "inline"
			}
			status := "ok"
			if b.Damaged {
				status = "DAMAGED"
			}
			span := ""
			if b.First != nil {
				span = clip(b.First.Text, 30) + " .. " + clip(b.Last.Text, 30)
			}
			rows = append(rows, []string{strings.Join(b.Path, "/"), root, strconv.Itoa(b.Records), strconv.Itoa(b.Nodes + b.Overflow), strconv.Itoa(b.Depth), span, status})
		}
		table(w, []string{"BUCKET", "ROOT", "RECORDS", "PAGES", "DEPTH", "KEYS", "STATUS"}, rows)
	}

	if e := r.Etcd; e != nil && e.IsEtcd {
		section(w, "etcd")
		kv := [][]string{}
		add := func(k, v string) { kv = append(kv, []string{k, v}) }
		add("consistent_index / term", optU(e.ConsistentIndex)+" / "+optU(e.Term))
		sv := e.StorageVersion
		if sv == "" {
			sv = "(none: written by etcd 3.5 or older)"
		}
		add("storage version", sv)
		if e.FirstRevision != nil {
			add("revisions", fmt.Sprintf("%s .. %s (%d records reached)", e.FirstRevision, e.LastRevision, e.KeyRecords))
		}
		add("compaction", "scheduled "+optI(e.ScheduledCompact)+", finished "+optI(e.FinishedCompact))
		if e.LiveKeys != nil {
			add("live keys", fmt.Sprintf("%d (%d tombstones)", *e.LiveKeys, *e.Tombstones))
		}
		add("leases", strconv.Itoa(e.Leases))
		for _, m := range e.Members {
			add("member "+m.ID, m.Name+" "+strings.Join(m.PeerURLs, ","))
		}
		for _, a := range e.Alarms {
			add("ALARM", a+" (etcd will refuse writes until it is disarmed)")
		}
		if len(e.MissingBuckets) > 0 {
			add("buckets not reached", strings.Join(e.MissingBuckets, ", "))
		}
		table(w, []string{"ITEM", "VALUE"}, kv)
	}

	section(w, fmt.Sprintf("findings (%d)", len(r.Findings)))
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "none: every page the tree reaches is well-formed.")
	} else {
		rows = nil
		const maxRows = 40
		for i, f := range r.Findings {
			if i == maxRows {
				break
			}
			rows = append(rows, []string{string(f.Kind), optU(f.Page), strings.Join(f.Bucket, "/"), elemString(f), lostString(f.Lost), clip(f.Message, 80)})
		}
		table(w, []string{"KIND", "PAGE", "BUCKET", "ELEM", "LOST (under the damage)", "DETAIL"}, rows)
		if len(r.Findings) > maxRows {
			fmt.Fprintf(w, "... and %d more: use --json for all of them\n", len(r.Findings)-maxRows)
		}
	}

	section(w, "next")
	if generic {
		printScanNextGeneric(w, r)
		return
	}
	if r.Clean {
		fmt.Fprintln(w, "The db is structurally sound. If etcd still fails, check the WAL:\n  boltfix wal verify DATA_DIR")
		return
	}
	dataDir := "DATA_DIR"
	if d, ok := salvage.DataDirOf(r.Path); ok {
		dataDir = d
	}
	fmt.Fprintf(w, "Do not start etcd on this file. Rebuild the member dir from the db and the WAL:\n  boltfix repair %s --out %s.repaired\n", dataDir, dataDir)
	fmt.Fprintf(w, "or copy out every record still on disk into a new db:\n  boltfix salvage %s --out %s.salvaged.db\n", r.Path, dataDir)
}

func elemString(f pagewalk.Finding) string {
	switch {
	case f.Elements != nil:
		return fmt.Sprintf("%d..%d", f.Elements[0], f.Elements[1])
	case f.Element != nil:
		return strconv.Itoa(*f.Element)
	}
	return ""
}

func lostString(l *pagewalk.KeyRange) string {
	if l == nil {
		return ""
	}
	if rr := l.Revisions; rr != nil {
		to := "end"
		if rr.To != 0 {
			to = strconv.FormatInt(rr.To, 10)
		}
		return fmt.Sprintf("revisions %d..%s", rr.From, to)
	}
	a, b := "start", "end"
	if l.After != nil {
		a = clip(l.After.Text, 24)
	}
	if l.Before != nil {
		b = clip(l.Before.Text, 24)
	}
	return "keys (" + a + ", " + b + ")"
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }

func optU(v *uint64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatUint(*v, 10)
}

func optI(v *int64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatInt(*v, 10)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
