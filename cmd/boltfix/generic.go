package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/salvage"
)

// Reports for bbolt files that are not etcd's. Such files can hold
// thousands of nested buckets (containerd: one per image, container, blob):
// the human report summarises them by path pattern, and --json lists all.

// maxPatternRows bounds the bucket pattern rows of a human report.
const maxPatternRows = 30

// wideFanout is the number of child buckets above which a path segment is
// shown as "*": per-object buckets (images, containers) fold together,
// structural ones (namespaces, a few fixed buckets) stay named.
const wideFanout = 8

// bucketPatterns maps each bucket path to its pattern: the path up to the
// first segment whose parent has more than wideFanout child buckets, that
// segment shown as "*" and everything below it folded in ("/*" stands for
// each object's bucket and the buckets nested in it).
func bucketPatterns(paths [][]string) []string {
	children := map[string]map[string]bool{}
	for _, p := range paths {
		for i := range p {
			parent := strings.Join(p[:i], "\x00")
			if children[parent] == nil {
				children[parent] = map[string]bool{}
			}
			children[parent][p[i]] = true
		}
	}
	out := make([]string, len(paths))
	for j, p := range paths {
		segs := make([]string, 0, len(p))
		for i := range p {
			if len(children[strings.Join(p[:i], "\x00")]) > wideFanout {
				segs = append(segs, "*")
				break
			}
			segs = append(segs, p[i])
		}
		out[j] = strings.Join(segs, "/")
	}
	return out
}

// patternRow aggregates the buckets of one pattern.
type patternRow struct {
	pattern string
	buckets int
	counts  [5]int // caller-defined columns
	damaged int
}

// groupRows groups per-bucket counts by pattern, damaged patterns first,
// then in path order; at most maxPatternRows rows, the rest summed in one.
func groupRows(paths [][]string, counts [][5]int, damaged []bool) []patternRow {
	pats := bucketPatterns(paths)
	idx := map[string]*patternRow{}
	var rows []*patternRow
	for i, p := range pats {
		r := idx[p]
		if r == nil {
			r = &patternRow{pattern: p}
			idx[p] = r
			rows = append(rows, r)
		}
		r.buckets++
		for c := range r.counts {
			r.counts[c] += counts[i][c]
		}
		if damaged[i] {
			r.damaged++
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].damaged > 0 && rows[j].damaged == 0 })
	// A single bucket with nothing of its own (v1, a namespace, the
	// images bucket when undamaged) is structure: its row says nothing.
	rows = slices.DeleteFunc(rows, func(r *patternRow) bool { return r.buckets == 1 && r.counts == [5]int{} && r.damaged == 0 })
	var out []patternRow
	for i, r := range rows {
		if i < maxPatternRows {
			out = append(out, *r)
			continue
		}
		if i == maxPatternRows {
			out = append(out, patternRow{pattern: "(other patterns)"})
		}
		o := &out[len(out)-1]
		o.buckets += r.buckets
		for c := range o.counts {
			o.counts[c] += r.counts[c]
		}
		o.damaged += r.damaged
	}
	return out
}

func status(damaged, buckets int) string {
	if damaged == 0 {
		return "ok"
	}
	return fmt.Sprintf("DAMAGED (%d of %d)", damaged, buckets)
}

// printScanBuckets is the scan's bucket table for a file that is not
// etcd's: one row per path pattern.
func printScanBuckets(w io.Writer, bs []pagewalk.BucketReport) {
	paths := make([][]string, len(bs))
	counts := make([][5]int, len(bs))
	damaged := make([]bool, len(bs))
	for i, b := range bs {
		paths[i], damaged[i] = b.Path, b.Damaged
		counts[i] = [5]int{b.Records, b.Nodes + b.Overflow}
	}
	rows := groupRows(paths, counts, damaged)
	section(w, fmt.Sprintf("buckets (%d; by path pattern, nested buckets folded in, empty structure not shown; --json lists each)", len(bs)))
	var tr [][]string
	for _, r := range rows {
		tr = append(tr, []string{r.pattern, strconv.Itoa(r.buckets), strconv.Itoa(r.counts[0]), strconv.Itoa(r.counts[1]), status(r.damaged, r.buckets)})
	}
	table(w, []string{"BUCKETS (PATTERN)", "COUNT", "RECORDS", "PAGES", "STATUS"}, tr)
}

// printScanNextGeneric is the scan's next step for a file that is not
// etcd's.
func printScanNextGeneric(w io.Writer, r *pagewalk.Report) {
	app := "the application that owns it"
	if r.Layout != nil && r.Layout.Application != "" {
		app = r.Layout.Application
	}
	if r.Clean {
		fmt.Fprintln(w, "The file is structurally sound.")
		return
	}
	fmt.Fprintf(w, "Do not let %s open this file (bbolt may panic or make it worse). Copy every record still on disk into a new file:\n  boltfix salvage %s --out %s.salvaged\n", app, r.Path, r.Path)
}

// printGenericSalvage is the salvage report for a file that is not etcd's.
func printGenericSalvage(w io.Writer, r *salvage.Report) {
	g := r.Generic
	fmt.Fprintf(w, "boltfix salvage %s -> %s\n", r.Input, r.Output)
	if r.Layout != nil {
		prose(w, "file: ", r.Layout.String())
	}
	prose(w, "", fmt.Sprintf("scan: %d findings; tree: %s", r.Findings, r.Source))
	if g.Proof == "synced-freelist" {
		prose(w, "proof: ", "synced freelist: unreached pages it does not list were cut off by the damage, so their records are current and were put back in place")
	} else {
		prose(w, "proof: ", "none ("+g.ProofMissing+"): records outside the walked tree were not put back; those under damage are in lost+found")
	}

	paths := make([][]string, len(g.Buckets))
	counts := make([][5]int, len(g.Buckets))
	damaged := make([]bool, len(g.Buckets))
	for i, b := range g.Buckets {
		paths[i], damaged[i] = b.Path, b.Damaged || b.OpenRanges > 0
		counts[i] = [5]int{b.Reached, b.Restored, b.LostFound, b.LeftOut}
	}
	rows := groupRows(paths, counts, damaged)
	section(w, fmt.Sprintf("buckets (%d; by path pattern, nested buckets folded in, empty structure not shown; --json lists each)", len(g.Buckets)))
	var tr [][]string
	for _, x := range rows {
		tr = append(tr, []string{x.pattern, strconv.Itoa(x.buckets), strconv.Itoa(x.counts[0]), strconv.Itoa(x.counts[1]),
			strconv.Itoa(x.counts[2]), strconv.Itoa(x.counts[3]), status(x.damaged, x.buckets)})
	}
	table(w, []string{"BUCKETS (PATTERN)", "COUNT", "REACHED", "RESTORED", "LOST+FOUND", "LEFT OUT", "STATUS"}, tr)

	if len(g.Lost) > 0 {
		section(w, fmt.Sprintf("key ranges under damage (%d, %d not recovered)", len(g.Lost), g.OpenRanges))
		var lr [][]string
		const maxLost = 20
		for i, l := range g.Lost {
			if i == maxLost {
				break
			}
			st := "RECOVERED"
			if !l.Recovered {
				st = "LOST: " + l.Why
			}
			lr = append(lr, []string{strings.Join(l.Bucket, "/"), keyText(l.After, "(start)"), keyText(l.Before, "(end)"), optU(l.Page), strconv.Itoa(l.Restored), st})
		}
		table(w, []string{"BUCKET", "AFTER", "BEFORE", "PAGE", "RESTORED", "STATUS"}, lr)
		if len(g.Lost) > maxLost {
			fmt.Fprintf(w, "... and %d more: see --json generic.lost\n", len(g.Lost)-maxLost)
		}
	}

	u := g.Unreached
	section(w, "unreached pages")
	prose(w, "", fmt.Sprintf("%d orphaned subtrees (%d put back in place); %d subtrees of older copies outside every lost range left out (%d records); %d pages of the last tree unaccounted for",
		u.Orphaned, u.Placed, u.Stale, u.StaleRecords, u.UnaccountedPages))
	if lf := g.LostFound; lf.Records > 0 {
		var st []string
		for _, k := range []string{"orphan", "free", "unproven", "past-hwm"} {
			if n := lf.Status[k]; n > 0 {
				st = append(st, fmt.Sprintf("%s %d", k, n))
			}
		}
		prose(w, "", fmt.Sprintf("lost+found: %d records from %d pages in bucket %q (%s); %d identical to the output were not repeated",
			lf.Records, lf.Pages, lf.Bucket, strings.Join(st, ", "), lf.Duplicates))
	}

	section(w, "result")
	verdict := "PARTIAL: see the key ranges above."
	if r.Complete {
		verdict = "COMPLETE: every record of the last tree is in place."
	}
	fmt.Fprintf(w, "%s %d records written (%d reached, %d restored). The new file passed bbolt's check.\n", verdict, g.Written, g.Reached, g.Restored)
	for _, n := range r.Notes {
		prose(w, "note: ", n)
	}
	section(w, "next")
	for _, n := range r.Next {
		prose(w, "  ", n)
	}
}

func keyText(k *pagewalk.Key, open string) string {
	if k == nil {
		return open
	}
	return clip(k.Text, 40)
}
