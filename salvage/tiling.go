package salvage

import (
	"fmt"
	"sort"

	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/spill"
)

// The live tiling of a damaged range (docs/recovery.md §3, "The live
// tiling of a damaged range"). When a branch element's pointer is lost (zeroed, out of
// range) but the page it pointed to is intact, the live subtree is still on
// disk, orphaned, next to older copies of the same key range in free pages.
// The live pages under a run of m lost elements are exactly m nodes of the
// children's level whose key ranges do not overlap and that hold no record
// compaction removed. Older copies either hold such a record (and are
// stale), or overlap a live node in a way that tells which is older. When
// exactly m nodes remain, they are the live ones: every record on them is
// live, every other record in the range was compacted.

// maxBranchPages bounds the bytes read for one unreached branch node (a
// branch of a few thousand revision keys spans a page or two; a header
// claiming more is garbage).
const maxBranchPages = 64

// maxTilingCandidates bounds the work of resolving one damaged range.
const maxTilingCandidates = 4096

// maxTreeLevels bounds the descent that finds the level of a branch's
// children (bbolt trees of a few GiB are 4-5 levels deep).
const maxTreeLevels = 16

// pointerKinds are the findings where a branch element's pointer is bad but
// the page it pointed to was not touched. A child past the end of the file
// is not one: a truncation destroys the pages it cuts.
var pointerKinds = map[pagewalk.Kind]bool{
	pagewalk.KindChildIsMeta:     true,
	pagewalk.KindChildOutOfRange: true,
	pagewalk.KindChildIsFreelist: true,
	pagewalk.KindElementBounds:   true,
}

// damagedRun is the damage under one key range of the key bucket's tree.
type damagedRun struct {
	after, before *pagewalk.Revision // the open key range (nil: open end)
	m             int                // lost children
	level         int                // their level: 0 leaves, 1 branches over leaves, ...
	findings      []int              // indexes into the scan's findings
	ok            bool               // only lost pointers: the children may be intact
}

// tiling is a damaged range whose live records are known.
type tiling struct {
	after, before *pagewalk.Revision
	// maybe are records that some answers that fit take as live and others
	// not: nothing in the file tells; they are reported, not written.
	maybe    map[pagewalk.Revision]bool
	findings []int
	recs     []pagewalk.Revision // every live record in the range, in order (isLive)
}

// contains reports whether revision k lies inside the tiling's range.
func (t *tiling) contains(k pagewalk.Revision) bool {
	return (t.after == nil || cmpRev(k, *t.after) > 0) && (t.before == nil || cmpRev(k, *t.before) < 0)
}

// isLive reports whether k is a live record of the range.
func (t *tiling) isLive(k pagewalk.Revision) bool {
	i := sort.Search(len(t.recs), func(i int) bool { return cmpRev(t.recs[i], k) >= 0 })
	return i < len(t.recs) && t.recs[i] == k
}

// cmpRev orders revisions as their revision keys' bytes: by main, sub,
// then a put before a tombstone.
// The records of a tiling are revisions, not keys: a damaged db of a few
// GiB holds millions of them, and a Revision holds no pointer.
func cmpRev(a, b pagewalk.Revision) int { return pagewalk.CompareRevisions(a, b) }

// tileNode is a candidate for one live child: a leaf, or a branch whose
// whole subtree is made of candidates.
type tileNode struct {
	pgid  uint64
	recs  []pagewalk.Revision // the records under it, ascending
	stale bool
}

func (n *tileNode) first() pagewalk.Revision { return n.recs[0] }
func (n *tileNode) last() pagewalk.Revision  { return n.recs[len(n.recs)-1] }

func (n *tileNode) has(k pagewalk.Revision) bool {
	i := sort.Search(len(n.recs), func(i int) bool { return cmpRev(n.recs[i], k) >= 0 })
	return i < len(n.recs) && n.recs[i] == k
}

// damagedRuns groups the key bucket's findings by the key range they lose.
func damagedRuns(res *pagewalk.Result) []damagedRun {
	byRange := map[[2]string]*damagedRun{}
	var order [][2]string
	for i, f := range res.Report.Findings {
		if f.Lost == nil || len(f.Bucket) != 1 || f.Bucket[0] != "key" {
			continue
		}
		var k [2]string
		if f.Lost.After != nil {
			k[0] = "a" + f.Lost.After.Hex
		}
		if f.Lost.Before != nil {
			k[1] = "b" + f.Lost.Before.Hex
		}
		r := byRange[k]
		if r == nil {
			r = &damagedRun{ok: true, level: -1}
			r.after, r.before = decodeBound(f.Lost.After), decodeBound(f.Lost.Before)
			byRange[k] = r
			order = append(order, k)
		}
		r.findings = append(r.findings, i)
		if !pointerKinds[f.Kind] || f.Page == nil || f.Element == nil || (f.Lost.After != nil && r.after == nil) || (f.Lost.Before != nil && r.before == nil) {
			r.ok = false
			continue
		}
		from, to := *f.Element, *f.Element
		if f.Elements != nil {
			from, to = f.Elements[0], f.Elements[1]
		}
		r.m += to - from + 1
		if r.level < 0 {
			r.level = childLevel(res, *f.Page, from, to)
		}
	}
	out := make([]damagedRun, 0, len(order))
	for _, k := range order {
		r := byRange[k]
		if r.level < 0 {
			r.ok = false
		}
		out = append(out, *r)
	}
	return out
}

func decodeBound(k *pagewalk.Key) *pagewalk.Revision {
	if k == nil || k.Truncated || k.Revision == nil {
		return nil
	}
	r := *k.Revision
	return &r
}

// childLevel is the level of branch page pgid's children, found by
// descending from a child outside the damaged elements [from, to]: a B+tree
// is balanced, so the lost children are at that level too. -1 if unknown.
func childLevel(res *pagewalk.Result, pgid uint64, from, to int) int {
	n, err := res.File.ReadNode(pgid)
	if err != nil || n.Type() != pagewalk.TypeBranch {
		return -1
	}
	for i := 0; i < n.Elements(); i++ {
		if i >= from && i <= to {
			continue
		}
		e, fe := n.Branch(i)
		if fe != nil {
			continue
		}
		if l := levelOf(res, e.Child); l >= 0 {
			return l
		}
	}
	return -1
}

// levelOf descends first children from pgid to a leaf.
func levelOf(res *pagewalk.Result, pgid uint64) int {
	for d := 0; d < maxTreeLevels; d++ {
		if pgid < 2 || pgid >= res.File.PageCount() {
			return -1
		}
		if res.WellformedLeaf(pgid) {
			return d
		}
		n, err := res.File.ReadNode(pgid)
		if err != nil || n.Type() != pagewalk.TypeBranch || n.Count == 0 {
			return -1
		}
		e, fe := n.Branch(0)
		if fe != nil {
			return -1
		}
		pgid = e.Child
	}
	return -1
}

// liveTilings resolves every damaged range it can. dead holds the revision
// keys proven compacted; compact is the compaction revision.
func liveTilings(res *pagewalk.Result, cr *carveResult, dead map[pagewalk.Revision]bool, compact int64) []*tiling {
	runs := damagedRuns(res)
	var out []*tiling
	var branches map[uint64][]revBranchElem
	for _, r := range runs {
		if !r.ok || r.m <= 0 {
			continue
		}
		if r.level > 0 && branches == nil {
			branches = unreachedBranches(res)
		}
		if t := tileRun(r, cr, branches, dead, compact); t != nil {
			out = append(out, t)
		}
	}
	return out
}

// revBranchElem is a key-bucket branch element: its separator, a
// revision key, as a revision (no pointer, no copy of the key).
type revBranchElem struct {
	sep   pagewalk.Revision
	child uint64
}

// unreachedBranches reads every unreached branch page whose elements all
// decode to revision keys in ascending order (a key-bucket branch).
// Every page's elements are a slice of one table (spilled for a large
// input), sized by the element counts the headers claim, capped by what
// the file can hold.
func unreachedBranches(res *pagewalk.Result) map[uint64][]revBranchElem {
	out := map[uint64][]revBranchElem{}
	pages := res.UnreachedBranches()
	bound := 0
	for _, pgid := range pages {
		bound += res.ElementCount(pgid)
	}
	bound = int(min(int64(bound), 2*res.File.Size()/pagewalk.BranchElementSize+1))
	all := spill.Slice[revBranchElem](res.Spill(), bound)
	var buf []byte
	for _, pgid := range pages {
		n, nb, err := res.File.ReadNodeInto(pgid, buf, int64(res.File.PageSize)*maxBranchPages)
		buf = nb
		if err != nil || n.Count == 0 {
			continue
		}
		from := len(all)
		ok := true
		for i := 0; i < int(n.Count) && ok; i++ {
			e, fe := n.Branch(i)
			sep, sok := pagewalk.ParseRevision(e.Key)
			ok = fe == nil && sok && (i == 0 || cmpRev(sep, all[len(all)-1].sep) > 0)
			if ok {
				all = append(all, revBranchElem{sep: sep, child: e.Child})
			}
		}
		if !ok {
			all = all[:from]
			continue
		}
		out[pgid] = all[from:len(all):len(all)]
	}
	return out
}

// tileRun finds the live nodes of one damaged range, or nil.
func tileRun(r damagedRun, cr *carveResult, branches map[uint64][]revBranchElem, dead map[pagewalk.Revision]bool, compact int64) *tiling {
	inRange := func(first, last pagewalk.Revision) bool {
		return (r.after == nil || cmpRev(first, *r.after) > 0) && (r.before == nil || cmpRev(last, *r.before) < 0)
	}
	// Level 0: the whole, valid leaves inside the range.
	level := map[uint64]*tileNode{}
	for i := range cr.leaves {
		lp := &cr.leaves[i]
		if !inRange(lp.first(), lp.last()) {
			continue
		}
		n := &tileNode{pgid: lp.pgid, recs: lp.revs}
		for _, k := range lp.revs {
			if dead[k] {
				n.stale = true
				break
			}
		}
		level[lp.pgid] = n
	}
	// Up to the lost children's level: branches whose every child is a
	// candidate one level down, inside its separators.
	// A branch's records are its children's, copied into one table per
	// level (in a spill file for a large input: a damaged db of a few GiB
	// has millions under one lost pointer).
	for h := 1; h <= r.level; h++ {
		up := map[uint64]*tileNode{}
		total := 0
		for _, elems := range branches {
			for _, e := range elems {
				if c := level[e.child]; c != nil {
					total += len(c.recs)
				}
			}
		}
		levelRecs := spill.Slice[pagewalk.Revision](cr.spill, total)
		for pgid, elems := range branches {
			n := &tileNode{pgid: pgid}
			from := len(levelRecs)
			for _, e := range elems {
				if level[e.child] == nil {
					n = nil
					break
				}
			}
			if n == nil {
				continue
			}
			for j, e := range elems {
				c := level[e.child]
				if (j > 0 && cmpRev(c.first(), e.sep) < 0) || (j+1 < len(elems) && cmpRev(c.last(), elems[j+1].sep) >= 0) {
					n.stale = true
				}
				if len(n.recs) > 0 && cmpRev(c.first(), n.last()) <= 0 {
					n.stale = true // children out of order: not a page bbolt wrote
				}
				n.stale = n.stale || c.stale
				levelRecs = append(levelRecs, c.recs...)
				n.recs = levelRecs[from:len(levelRecs):len(levelRecs)]
			}
			if n == nil || len(n.recs) == 0 || !inRange(n.first(), n.last()) {
				continue
			}
			up[pgid] = n
		}
		level = up
	}
	nodes := make([]*tileNode, 0, len(level))
	for _, n := range level {
		nodes = append(nodes, n)
	}
	if len(nodes) > maxTilingCandidates {
		return nil
	}
	sols := resolveTiling(nodes, r.m, compact)
	if tilingHook != nil {
		stale := 0
		for _, n := range nodes {
			if n.stale {
				stale++
			}
		}
		tilingHook(fmt.Sprintf("range %s..%s: %d lost children at level %d, %d candidates (%d stale), %d answers", boundString(r.after), boundString(r.before), r.m, r.level, len(nodes), stale, len(sols)))
	}
	if len(sols) == 0 {
		return nil
	}
	// Live: on a node of every answer. Compacted: on none. Else unknown.
	// One answer (the usual case): its records are the live ones, no
	// count needed (a range can hold millions of records).
	t := &tiling{after: r.after, before: r.before, maybe: map[pagewalk.Revision]bool{}, findings: r.findings}
	if len(sols) == 1 {
		// In a spill file too: 62 MiB of the heap at the peak of a
		// damaged 8 GiB db's salvage.
		total := 0
		for _, n := range sols[0].nodes {
			total += len(n.recs)
		}
		t.recs = spill.Slice[pagewalk.Revision](cr.spill, total)
		for _, n := range sols[0].nodes {
			t.recs = append(t.recs, n.recs...)
		}
		return t
	}
	count := map[pagewalk.Revision]int{}
	for _, sol := range sols {
		for _, n := range sol.nodes {
			for _, k := range n.recs {
				count[k]++
			}
		}
	}
	for _, n := range sols[0].nodes {
		for _, k := range n.recs {
			if count[k] == len(sols) {
				t.recs = append(t.recs, k)
			}
		}
	}
	for k, c := range count {
		if c < len(sols) {
			t.maybe[k] = true
		}
	}
	return t
}

// resolveTiling picks the live nodes among the candidates: drop the stale,
// fold identical copies, settle each overlap by which copy is older, and
// accept the result only when exactly m nodes remain and they hold every
// record above the compaction found in the range (those are never
// removed). Where an overlap cannot be settled by content alone, both
// answers are tried; every distinct answer that fits is returned.
func resolveTiling(nodes []*tileNode, m int, compact int64) []tileSolution {
	var above []pagewalk.Revision // records above the compaction: all must be live
	seenAbove := map[pagewalk.Revision]bool{}
	for _, n := range nodes {
		for _, k := range n.recs {
			if k.Main > compact && !seenAbove[k] {
				seenAbove[k] = true
				above = append(above, k)
			}
		}
	}
	sort.Slice(above, func(i, j int) bool { return cmpRev(above[i], above[j]) < 0 })
	var cur []*tileNode
	seen := map[string]bool{}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].pgid < nodes[j].pgid })
	for _, n := range nodes {
		if n.stale || lacksAnyAbove(n, above) {
			continue
		}
		sig := recsSignature(n.recs)
		if seen[sig] {
			continue
		}
		seen[sig] = true
		cur = append(cur, n)
	}
	sort.Slice(cur, func(i, j int) bool { return cmpRev(cur[i].first(), cur[j].first()) < 0 })
	s := &tileSearch{m: m, compact: compact, above: above, budget: maxTilingStates}
	s.search(cur)
	if s.budget < 0 {
		return nil
	}
	return s.solutions
}

// lacksAnyAbove reports whether a record above the compaction found in the
// range lies inside n's span without being in n. Such records are never
// removed, and a live node holds every record inside its span (a live
// branch's children tile it): n is not live (a stale branch whose children
// were rewritten since, an older copy of a leaf).
func lacksAnyAbove(n *tileNode, above []pagewalk.Revision) bool {
	i := sort.Search(len(above), func(i int) bool { return cmpRev(above[i], n.first()) > 0 })
	for ; i < len(above) && cmpRev(above[i], n.last()) < 0; i++ {
		if !n.has(above[i]) {
			return true
		}
	}
	return false
}

// maxTilingStates bounds the answers tried for one damaged range.
const maxTilingStates = 512

type tileSearch struct {
	m         int
	compact   int64
	above     []pagewalk.Revision
	budget    int
	solutions []tileSolution
}

type tileSolution struct {
	nodes []*tileNode
	sig   string
}

// search drops one copy of the first overlap, each way it may go, until
// none is left; cur is sorted by first key.
func (s *tileSearch) search(cur []*tileNode) {
	if s.budget--; s.budget < 0 || len(cur) < s.m {
		return
	}
	a, b := overlapping(cur)
	if a < 0 {
		s.accept(cur)
		return
	}
	opts := s.older(cur, a, b)
	for _, drop := range opts {
		next := make([]*tileNode, 0, len(cur)-1)
		next = append(next, cur[:drop]...)
		next = append(next, cur[drop+1:]...)
		s.search(next)
	}
}

// accept records cur as an answer if it has m nodes and every record above
// the compaction.
func (s *tileSearch) accept(cur []*tileNode) {
	if len(cur) != s.m {
		return
	}
	for _, k := range s.above {
		if !onAny(cur, k) {
			return
		}
	}
	var sig string
	for _, n := range cur {
		sig += recsSignature(n.recs)
	}
	for _, old := range s.solutions {
		if old.sig == sig {
			return
		}
	}
	s.solutions = append(s.solutions, tileSolution{nodes: cur, sig: sig})
}

// onAny reports whether some node of cur (sorted, disjoint) holds k.
func onAny(cur []*tileNode, k pagewalk.Revision) bool {
	i := sort.Search(len(cur), func(i int) bool { return cmpRev(cur[i].last(), k) >= 0 })
	return i < len(cur) && cur[i].has(k)
}

// older says which of two overlapping copies may be the one that is not
// live, most likely first. Neither holds a record proven compacted, and
// they agree where their spans overlap (a valid leaf lacking a record
// inside its span proves it compacted), so one holds all the records of
// the other and more. The extra records:
//   - are nowhere else and lie above the smaller copy, one of them above
//     the compaction: they were appended after the smaller copy was
//     written (compaction never removes those): the smaller is older;
//   - otherwise either may be newer, and both are tried. Extra records
//     below the smaller copy were most often removed from a newer smaller
//     copy by compaction (records are only appended at the top), but
//     bbolt's rebalance also merges an underfilled first child with its
//     right sibling (node.rebalance), which makes a newer copy with extra
//     records below the sibling's. Extra records above the smaller copy,
//     none above the compaction, were appended after it (or merged in from
//     a right sibling) unless a compaction removed them from a newer
//     smaller copy. Nothing in the file orders the two (docs/recovery.md
//     §3, "What the file cannot tell").
func (s *tileSearch) older(cur []*tileNode, a, b int) []int {
	small, big := a, b
	if !subset(cur[small], cur[big]) {
		small, big = b, a
		if !subset(cur[small], cur[big]) {
			// Each lacks something the other has. A record above the
			// compaction is never removed: a copy whose span holds one
			// it lacks was not live (a stale branch whose children were
			// rewritten since).
			la, lb := s.lacksAbove(cur[a], cur[b]), s.lacksAbove(cur[b], cur[a])
			switch {
			case la && !lb:
				return []int{a}
			case lb && !la:
				return []int{b}
			}
			// Records moved between siblings (a merge after a compaction
			// at the other edge): either may be the newer; try both.
			return []int{a, b}
		}
	}
	extra := minus(cur[big], cur[small])
	after, elsewhere, anyAbove := true, true, false
	for _, k := range extra {
		after = after && cmpRev(k, cur[small].last()) > 0
		if k.Main > s.compact {
			anyAbove = true
		}
		if elsewhere {
			found := false
			for i, n := range cur {
				if i != small && i != big && n.has(k) {
					found = true
					break
				}
			}
			elsewhere = found
		}
	}
	if !elsewhere && after && anyAbove {
		return []int{small}
	}
	return []int{big, small}
}

// subset reports whether every record of a is in b.
func subset(a, b *tileNode) bool {
	i := 0
	for _, k := range a.recs {
		for i < len(b.recs) && cmpRev(b.recs[i], k) < 0 {
			i++
		}
		if i == len(b.recs) || b.recs[i] != k {
			return false
		}
	}
	return true
}

// minus returns the records of b that a lacks (a is a subset of b).
func minus(b, a *tileNode) []pagewalk.Revision {
	var out []pagewalk.Revision
	for _, k := range b.recs {
		if !a.has(k) {
			out = append(out, k)
		}
	}
	return out
}

// overlapping returns two nodes whose key spans intersect, or -1. cur is
// sorted by first key, so a node overlaps an earlier one iff it starts at
// or before the largest last key so far.
func overlapping(cur []*tileNode) (int, int) {
	maxAt := 0
	for i := 1; i < len(cur); i++ {
		if cmpRev(cur[i].first(), cur[maxAt].last()) <= 0 {
			return maxAt, i
		}
		if cmpRev(cur[i].last(), cur[maxAt].last()) > 0 {
			maxAt = i
		}
	}
	return -1, -1
}

// lacksAbove reports whether x's span holds a record of y above the
// compaction that x lacks.
func (s *tileSearch) lacksAbove(x, y *tileNode) bool {
	for _, k := range y.recs {
		if cmpRev(k, x.first()) <= 0 || cmpRev(k, x.last()) >= 0 {
			continue
		}
		if k.Main > s.compact && !x.has(k) {
			return true
		}
	}
	return false
}

// recsSignature is a string that is equal for equal record lists.
func recsSignature(recs []pagewalk.Revision) string {
	b := make([]byte, 0, 17*len(recs))
	var buf [18]byte
	for _, r := range recs {
		k := revisionKeyInto(&buf, r)
		b = append(b, byte(len(k)))
		b = append(b, k...)
	}
	return string(b)
}

// boundString shows an open range bound.
func boundString(b *pagewalk.Revision) string {
	if b == nil {
		return "(open)"
	}
	return b.String()
}

// tilingHook, when set (by tests), is told how each damaged range went.
var tilingHook func(string)
