package pagewalk

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	"github.com/boltfix/boltfix/spill"
)

// Counter receives progress, in pages read. The CLI turns it into a
// progress bar; the library never touches the terminal.
type Counter interface {
	Add(n int64)
}

// Options tune a scan.
type Options struct {
	// Deep decodes every etcd key-bucket value and reports those that are
	// not an mvccpb.KeyValue; it also counts live keys.
	Deep bool
	// Progress, if set, is told about every page read; its max is
	// File.PageCount().
	Progress Counter
	// Context, if set, ends the scan early with its error when it is
	// cancelled (checked per 4 MiB chunk of the page census, the pass that
	// reads the whole file).
	Context context.Context
	// Spill, if enabled, holds the tables that grow with the file (per
	// page, per branch element, leaf keys) in a temp file's mapping
	// instead of the heap (package spill). The caller closes it after the
	// last use of the Result.
	Spill *spill.Dir
}

// Result is a scan's outcome: the report, and what salvage needs to read
// the reached tree again.
type Result struct {
	File   *File
	Report *Report
	// Buckets reached, in walk order; Buckets[0] is the root tree.
	Buckets []*Bucket
	// HWM is the high-water mark the walk used.
	HWM   uint64
	reach []uint8
	owner []int32
	c     *census
	// branchLevel: lost pages known to have been branches (walker).
	branchLevel map[uint64]bool
}

// Spill is the spill dir the scan was given (nil: none); what builds on
// the Result (a salvage's per-key tables) spills there too.
func (r *Result) Spill() *spill.Dir { return r.c.spill }

// Reached reports whether the tree reaches page pgid (as a node or an
// overflow continuation), and which bucket owns it.
func (r *Result) Reached(pgid uint64) (*Bucket, bool) {
	if pgid >= uint64(len(r.reach)) || r.reach[pgid] == reachNone {
		return nil, false
	}
	if o := r.owner[pgid]; o >= 0 {
		return r.Buckets[o], true
	}
	return nil, true
}

// Bucket finds a reached bucket by path, or nil.
func (r *Result) Bucket(path ...string) *Bucket {
	for _, b := range r.Buckets {
		if len(b.Path) != len(path) {
			continue
		}
		match := true
		for i := range path {
			if string(b.Path[i]) != path[i] {
				match = false
				break
			}
		}
		if match {
			return b
		}
	}
	return nil
}

// WellformedLeaf reports whether page pgid holds a well-formed leaf (its own
// id, valid elements count) in the census, whatever reaches it.
func (r *Result) WellformedLeaf(pgid uint64) bool {
	if pgid >= uint64(len(r.c.sums)) {
		return false
	}
	s := r.c.sums[pgid]
	return s.state == stateWellFormed && s.typ == TypeLeaf
}

// Scan reads the whole file once and walks the tree from the best root.
func (f *File) Scan(opts Options) (*Result, error) {
	newCensus := func(noMap bool) *census {
		c := &census{f: f, deep: opts.Deep, ctx: opts.Context, spill: opts.Spill, noMap: noMap}
		if opts.Deep {
			c.keyValueOK = decodeKeyValue
		}
		return c
	}
	c := newCensus(false)
	err := c.run(opts.Progress)
	if errors.Is(err, errMappingFault) {
		// The file shrank under the mapping: read it again with pread,
		// which sees the shorter file (and Changed reports the change).
		c = newCensus(true)
		err = c.run(opts.Progress)
	}
	if err != nil {
		return nil, err
	}
	rep := &Report{
		Schema: ReportSchema, Path: f.path, Size: f.size, PageSize: f.PageSize,
		PageSizeSource: f.PageSizeSource, Pages: f.PageCount(), Findings: []Finding{}, Deep: opts.Deep,
	}
	for i := range f.Metas {
		rep.Metas = append(rep.Metas, f.Metas[i])
	}
	root, hwm, freelist := f.chooseRoot(c, rep)
	w := newWalker(c, hwm, freelist)
	// A usable meta whose root page is damaged was passed over: that root
	// page is damage (the newest commit's tree, typically), even when an
	// older tree walks clean.
	for _, m := range f.Metas {
		if !m.Usable || m.Meta.Root == root {
			continue
		}
		if kind, msg := w.contentProblem(m.Meta.Root); kind != "" {
			w.add(Finding{Kind: kind, Page: u64p(m.Meta.Root), Offset: i64p(int64(m.Meta.Root) * int64(f.PageSize)),
				Chain: []uint64{m.Page, m.Meta.Root}, Message: fmt.Sprintf("root page of meta %d (txid %d): %s", m.Page, m.Meta.Txid, msg)})
		}
	}
	for _, m := range f.Metas {
		if !m.Valid {
			w.add(Finding{Kind: KindMetaInvalid, Page: u64p(m.Page), Offset: i64p(int64(m.Page) * int64(f.PageSize)),
				Chain: []uint64{m.Page}, Message: joinProblems(m.Problems)})
		} else if !m.Usable {
			w.add(Finding{Kind: KindMetaUnusable, Page: u64p(m.Page), Offset: i64p(int64(m.Page) * int64(f.PageSize)),
				Chain: []uint64{m.Page}, Message: joinProblems(m.Problems)})
		}
	}
	if root == 0 {
		w.add(Finding{Kind: KindNoUsableMeta, Message: "no usable meta page and no page that looks like a root bucket: nothing to walk"})
	} else {
		if rep.Chosen < 0 {
			w.add(Finding{Kind: KindNoUsableMeta, Message: fmt.Sprintf("no usable meta page; walked from root candidate page %d", root)})
		}
		w.walkRoot(root)
	}
	if hwm > f.PageCount() {
		w.cur = nil
		w.add(Finding{Kind: KindTruncated, Message: fmt.Sprintf(
			"the high-water mark is page %d but the file ends after %d pages (%d bytes): %d pages are missing",
			hwm, f.PageCount(), f.size, hwm-f.PageCount())})
	}
	w.cur = nil
	w.checkFreelist(freelist)
	res := &Result{File: f, Report: rep, Buckets: w.buckets, HWM: hwm, reach: w.reach, owner: w.owner, c: c, branchLevel: w.branchLevel}
	rep.Census = w.census(freelist)
	rep.Buckets = bucketReports(w.buckets)
	rep.Etcd = res.etcdSummary(opts.Deep)
	rep.Layout = res.identify()
	if f.Changed() {
		w.add(Finding{Kind: KindFileChanged, Message: "the file changed while it was read (is etcd running?): this report describes no single state of it"})
	}
	rep.Findings = w.findings
	if c.arenaCut {
		rep.Notes = append(rep.Notes, "keys past 1 GiB of branch keys were not kept: some key ranges are open")
	}
	rep.Clean = len(rep.Findings) == 0
	return res, nil
}

func joinProblems(p []string) string {
	var b bytes.Buffer
	for i, s := range p {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// chooseRoot picks the tree to walk: the usable meta with the higher txid
// whose root page is a well-formed node (bbolt's rule, plus the root check
// bbolt skips); else a root found among the leaves.
func (f *File) chooseRoot(c *census, rep *Report) (root, hwm, freelist uint64) {
	rep.Chosen = -1
	order := []int{0, 1}
	if f.Metas[1].Meta.Txid > f.Metas[0].Meta.Txid {
		order = []int{1, 0}
	}
	var skipped []string
	for _, i := range order {
		m := f.Metas[i]
		if !m.Usable {
			continue
		}
		s := c.sums[m.Meta.Root]
		if s.state != stateWellFormed || (s.typ != TypeBranch && s.typ != TypeLeaf) {
			skipped = append(skipped, fmt.Sprintf("meta %d (txid %d) has a damaged root page %d", i, m.Meta.Txid, m.Meta.Root))
			continue
		}
		rep.Chosen = i
		other := f.Metas[1-i]
		switch {
		case len(skipped) > 0:
			rep.ChosenReason = fmt.Sprintf("meta %d (txid %d): %s", i, m.Meta.Txid, skipped[0])
		case other.Usable:
			rep.ChosenReason = fmt.Sprintf("meta %d: both metas are valid and its txid %d is the higher", i, m.Meta.Txid)
		default:
			rep.ChosenReason = fmt.Sprintf("meta %d (txid %d): the only usable meta; meta %d: %s", i, m.Meta.Txid, 1-i, joinProblems(other.Problems))
		}
		return m.Meta.Root, m.Meta.Pgid, m.Meta.Freelist
	}
	// No usable meta: look for the most recent page that looks like an
	// etcd root bucket, and walk it with the whole file as the range.
	cands := c.rootCandidates()
	rep.RootCandidates = cands
	hwm = uint64(len(c.sums))
	for _, i := range order {
		// A valid-but-unusable meta can still tell the high-water mark.
		if m := f.Metas[i]; m.Valid && m.Meta.Pgid > 2 && m.Meta.Pgid < 1<<48 {
			hwm = max(hwm, m.Meta.Pgid)
		}
	}
	if len(cands) == 0 {
		rep.ChosenReason = "no usable meta page and no root candidate"
		return 0, hwm, NoFreelist
	}
	best := cands[0]
	rep.ChosenReason = fmt.Sprintf("no usable meta page (%s); walked from root candidate page %d: %s",
		joinProblems(skipped), best.Page, best.Why)
	return best.Page, hwm, NoFreelist
}

// RootCandidate is a leaf page that could be the root bucket page.
type RootCandidate struct {
	Page            uint64   `json:"page"`
	Buckets         []string `json:"buckets"`
	ConsistentIndex uint64   `json:"consistent_index"`
	Why             string   `json:"why"`
	// ListedFree: the freelist page that fits the chosen candidate best
	// lists this page (a stale copy).
	ListedFree bool `json:"listed_free"`
	// Tied: this root and a freelist page fit each other as well as the
	// chosen one's do: it may be the newer commit (bbolt's format does
	// not order them). Salvage keeps what only it holds in lost+found.
	Tied bool `json:"tied,omitempty"`
}

// etcdBuckets are the bucket names that identify an etcd root page.
var etcdRootMarkers = []string{"key", "meta"}

// rootCandidates lists well-formed leaves whose elements are all buckets,
// best first: those with etcd's buckets, by consistent_index, then by
// page id (a later page is more often a later copy).
func (c *census) rootCandidates() []RootCandidate {
	var out []RootCandidate
	for pgid := uint64(2); pgid < uint64(len(c.sums)); pgid++ {
		s := c.sums[pgid]
		if s.state != stateWellFormed || s.typ != TypeLeaf || s.info < 0 {
			continue
		}
		li := c.leaves[s.info]
		if li.bn == 0 || li.records != 0 {
			continue
		}
		rc := RootCandidate{Page: pgid}
		for i := li.bfirst; i < li.bfirst+li.bn; i++ {
			rc.Buckets = append(rc.Buckets, printable(c.key(c.lbuckets[i].name)))
		}
		rc.ConsistentIndex = c.consistentIndexUnder(pgid)
		out = append(out, rc)
	}
	isEtcd := func(rc RootCandidate) bool {
		n := 0
		for _, b := range rc.Buckets {
			for _, m := range etcdRootMarkers {
				if b == m {
					n++
				}
			}
		}
		return n == len(etcdRootMarkers)
	}
	// The candidate whose tree fits a freelist page best is the last
	// commit's; one that freelist lists is a stale copy (see freeroot.go).
	// Files that keep no freelist (etcd) have no such pair.
	pages := make([]uint64, len(out))
	for i := range out {
		pages[i] = out[i].Page
	}
	newest, freed, tied := c.newestTree(pages)
	sort.SliceStable(out, func(i, j int) bool {
		ei, ej := isEtcd(out[i]), isEtcd(out[j])
		if ei != ej {
			return ei
		}
		if out[i].ConsistentIndex != out[j].ConsistentIndex {
			return out[i].ConsistentIndex > out[j].ConsistentIndex
		}
		if ni, nj := out[i].Page == newest, out[j].Page == newest; ni != nj {
			return ni
		}
		if fi, fj := freed[out[i].Page], freed[out[j].Page]; fi != fj {
			return fj
		}
		return out[i].Page > out[j].Page
	})
	for i := range out {
		out[i].ListedFree, out[i].Tied = freed[out[i].Page], tied[out[i].Page]
		switch {
		case isEtcd(out[i]):
			out[i].Why = fmt.Sprintf("holds etcd's buckets, consistent_index %d", out[i].ConsistentIndex)
		case out[i].Page == newest && len(tied) > 0:
			out[i].Why = "a leaf whose elements are all buckets; its tree and a freelist page account for the most pages without overlap, as well as another candidate's (the larger tree was taken)"
		case out[i].Page == newest:
			out[i].Why = "a leaf whose elements are all buckets; its tree and a freelist page account for the most pages without overlap (the last commit's)"
		case tied[out[i].Page]:
			out[i].Why = "a leaf whose elements are all buckets; its tree fits a freelist page as well as the chosen one's: it may be the last commit"
		case freed != nil && !freed[out[i].Page]:
			out[i].Why = "a leaf whose elements are all buckets, not listed free by the last commit's freelist page"
		case freed != nil:
			out[i].Why = "a leaf whose elements are all buckets, listed free by the last commit's freelist page (a stale copy)"
		default:
			out[i].Why = "a leaf whose elements are all buckets"
		}
	}
	return out
}

// census computes the page census once the walk has marked what it reached.
func (w *walker) census(freelist uint64) Census {
	var cs Census
	free := w.freeSet(freelist)
	for pgid := range w.c.sums {
		s := &w.c.sums[pgid]
		p := uint64(pgid)
		switch w.reach[pgid] {
		case reachMeta:
			cs.Meta++
			continue
		case reachFreelist:
			cs.Freelist++
			continue
		case reachOverflow:
			cs.Overflow++
			continue
		case reachNode:
			if s.typ == TypeBranch {
				cs.Branch++
			} else {
				cs.Leaf++
			}
			continue
		}
		wellFormed := s.state == stateWellFormed && (s.typ == TypeBranch || s.typ == TypeLeaf)
		switch {
		case p >= w.hwm:
			cs.PastHWM++
			if wellFormed {
				cs.PastHWMStale++
			}
		case free == nil || free[p]:
			cs.Free++
			if wellFormed {
				cs.FreeStale++
			}
		case wellFormed:
			cs.Orphan++
		default:
			cs.Unreadable++
		}
	}
	if w.hwm > uint64(len(w.c.sums)) {
		cs.Missing = w.hwm - uint64(len(w.c.sums))
	}
	return cs
}

// LeafMayBeLost says why a leaf of some bucket may be gone from the file
// without a trace in what remains, or "" when none can be: every page below
// the high-water mark is a well-formed node (reached, free or orphaned),
// part of one (an overflow page, even of a stale node), a meta or freelist
// page, a page whose content is lost but which a sibling shows was a
// branch, or, when all the damage found wrote zeros, a page of garbage
// (the leftover data of a freed node). A leaf that is not gone is on disk,
// reached or found by carving: whatever records it holds are seen. (Damage
// inside a leaf that is on disk is reported by its own findings.)
func (r *Result) LeafMayBeLost() string {
	for _, f := range r.Report.Findings {
		switch f.Kind {
		case KindTruncated, KindChildPastEOF, KindOverflowPastEOF:
			return "the file is cut short: pages past its end are gone"
		}
	}
	n := uint64(len(r.c.sums))
	if r.HWM > n {
		return "the file is cut short: pages past its end are gone"
	}
	// The pages a stale node's overflow covers: the leftover data of a
	// freed node reads as garbage, not as a lost page. (A zero page there
	// is no leftover: a reused page that was wiped.)
	covered := make([]bool, n)
	for q := range r.c.sums {
		s := &r.c.sums[q]
		if s.state != stateWellFormed {
			continue
		}
		for p := uint64(q) + 1; p <= uint64(q)+uint64(s.overflow) && p < n; p++ {
			covered[p] = true
		}
	}
	onlyZeros := r.damageOnlyZeros()
	for p := uint64(2); p < min(r.HWM, n); p++ {
		s := &r.c.sums[p]
		switch {
		case r.reach[p] != reachNone, r.branchLevel[p]:
		case covered[p] && s.state != stateZero:
		case s.state == stateGarbage && onlyZeros:
			// The leftover data of a freed node whose first page was
			// reused (common: etcd frees and reuses the pages of large
			// values), when all the damage the scan found wrote zeros:
			// what wipes pages does not also write garbage.
		case s.state == stateWellFormed:
		default:
			return fmt.Sprintf("page %d holds no readable node, and nothing shows it was not a leaf", p)
		}
	}
	return ""
}

// damageOnlyZeros reports whether every finding is damage that writes
// zeros: zeroed pages, zeroed branch elements, zeroed blocks. Any other
// finding, meta damage included, may have written garbage.
func (r *Result) damageOnlyZeros() bool {
	for _, f := range r.Report.Findings {
		switch f.Kind {
		case KindChildIsMeta, KindZeroedBlock, KindZeroedKey:
			continue
		case KindPageType:
			if f.Page != nil && *f.Page < uint64(len(r.c.sums)) && r.c.sums[*f.Page].state == stateZero {
				continue
			}
		}
		return false
	}
	return true
}

// ZeroedElements lists the elements of the leaf at pgid whose bytes a
// whole zero block covers (zeroed-block, zeroed-key): in a page the walk
// did not reach too, where the damage is no finding (a free page's is
// history), but a carver must not take such a record at its word. values
// lost bytes of the value, keys of the key.
func (r *Result) ZeroedElements(pgid uint64) (values, keys []int) {
	for _, p := range r.c.problems[pgid] {
		switch p.kind {
		case KindZeroedBlock:
			values = append(values, p.elem)
		case KindZeroedKey:
			keys = append(keys, p.elem)
		}
	}
	return values, keys
}

// CarveCandidates lists the pages whose header says leaf (with their own id
// or another's) that the tree does not reach: free pages, orphans, pages
// past the high-water mark, and pages a damaged pointer no longer reaches.
// They may hold older copies of live pages.
func (r *Result) CarveCandidates() []uint64 {
	var out []uint64
	for pgid, s := range r.c.sums {
		if r.reach[pgid] != reachNone || s.typ != TypeLeaf {
			continue
		}
		if s.state == stateWellFormed || s.state == stateIDMismatch {
			out = append(out, uint64(pgid))
		}
	}
	return out
}

// UnreachedBranches lists well-formed branch pages the tree does not reach:
// stale or orphaned interior nodes, whose separators still tell which
// leaves were neighbours.
func (r *Result) UnreachedBranches() []uint64 {
	var out []uint64
	for pgid, s := range r.c.sums {
		if r.reach[pgid] == reachNone && s.typ == TypeBranch && s.state == stateWellFormed {
			out = append(out, uint64(pgid))
		}
	}
	return out
}

// LostKeyRanges returns the open key ranges (after, before; a nil bound is
// unbounded) that the findings in the top-level bucket name report lost
// under damage, in finding order.
func (r *Result) LostKeyRanges(name string) [][2][]byte {
	var out [][2][]byte
	for _, f := range r.Report.Findings {
		if f.Lost == nil || len(f.Bucket) != 1 || f.Bucket[0] != name {
			continue
		}
		var kr [2][]byte
		if f.Lost.After != nil {
			kr[0], _ = hex.DecodeString(f.Lost.After.Hex)
		}
		if f.Lost.Before != nil {
			kr[1], _ = hex.DecodeString(f.Lost.Before.Hex)
		}
		out = append(out, kr)
	}
	return out
}

// ElementCount is the element count page pgid's header claims (0 for a
// page out of range). It bounds what a reader of the page can find; it is
// not checked against the node's size.
func (r *Result) ElementCount(pgid uint64) int {
	if pgid >= uint64(len(r.c.sums)) {
		return 0
	}
	return int(r.c.sums[pgid].count)
}
