package pagewalk

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/boltfix/boltfix/spill"
)

// Bucket is a bucket the walk reached.
type Bucket struct {
	Path     [][]byte // names from the outermost bucket in
	Root     uint64   // root page; 0 for an inline bucket
	Holder   uint64   // the page whose leaf element holds the bucket header
	Element  int      // that element's index
	Inline   bool
	Sequence uint64
	Records  int      // reached key/value records (nested buckets not counted)
	Nodes    int      // reached branch and leaf pages
	Overflow int      // reached overflow continuation pages
	Depth    int      // levels in the bucket's tree (1 = a single leaf)
	Leaves   []uint64 // reached leaf pages, in key order
	Damaged  bool     // some finding lies in this bucket's own tree
	First    []byte   // smallest and largest reached key
	Last     []byte
	chain    []uint64 // pages from the file's root to the holder
}

// Name renders the bucket path, "/"-separated.
func (b *Bucket) Name() string {
	var s string
	for i, p := range b.Path {
		if i > 0 {
			s += "/"
		}
		s += printable(p)
	}
	return s
}

func (b *Bucket) pathStrings() []string {
	out := make([]string, len(b.Path))
	for i, p := range b.Path {
		out[i] = printable(p)
	}
	return out
}

// IsKeyBucket reports whether b is etcd's top-level `key` bucket, whose
// keys are revisions.
func (b *Bucket) IsKeyBucket() bool {
	return len(b.Path) == 1 && string(b.Path[0]) == "key"
}

// reach values per page.
const (
	reachNone     uint8 = iota
	reachNode           // a branch or leaf page the tree reaches
	reachOverflow       // a continuation page of a reached node
	reachMeta
	reachFreelist
)

type walker struct {
	c        *census
	f        *File
	hwm      uint64
	freelist uint64
	reach    []uint8
	owner    []int32 // bucket index reaching each page, -1 for none
	findings []Finding
	buckets  []*Bucket
	cur      *Bucket
	curIdx   int32
	lastKey  []byte // in-order: the largest key reached so far in cur
	path     []uint64
	// branchLevel are the pages whose content is lost (zeros, garbage)
	// that a sibling shows were branch pages: the children of one branch
	// all stand at one level, so when another child of the same parent is
	// a branch, so was this one, and it held no records.
	branchLevel map[uint64]bool
	// sink keeps prefetch's loads from being optimized away.
	sink uint32
}

func newWalker(c *census, hwm, freelist uint64) *walker {
	n := len(c.sums)
	w := &walker{c: c, f: c.f, hwm: hwm, freelist: freelist, branchLevel: map[uint64]bool{}}
	w.reach, w.owner = spill.Zeroed[uint8](c.spill, n), spill.Zeroed[int32](c.spill, n)
	for i := range w.owner {
		w.owner[i] = -1
	}
	for i := 0; i < 2 && i < n; i++ {
		w.reach[i] = reachMeta
	}
	return w
}

func (w *walker) add(f Finding) {
	// The walk reuses its chain buffer (extend): a finding keeps a copy.
	f.Chain = append([]uint64{}, f.Chain...)
	if f.Bucket == nil {
		f.Bucket = []string{}
		if w.cur != nil {
			f.Bucket = w.cur.pathStrings()
		}
	}
	if w.cur != nil && f.Page != nil {
		w.cur.Damaged = true
	}
	w.findings = append(w.findings, f)
}

func appendChain(chain []uint64, pgid uint64) []uint64 {
	out := make([]uint64, len(chain)+1)
	copy(out, chain)
	out[len(chain)] = pgid
	return out
}

// extend returns chain+pgid without allocating: in a depth-first walk every
// chain is a prefix of the current path, kept in one buffer. Whatever keeps
// a chain past the walk (a finding, a bucket) copies it.
func (w *walker) extend(chain []uint64, pgid uint64) []uint64 {
	n := len(chain)
	if n >= len(w.path) {
		grown := make([]uint64, 2*n+16)
		copy(grown, chain)
		w.path = grown
	}
	w.path[n] = pgid
	return w.path[: n+1 : n+1]
}

// pointerProblem judges a child pgid by itself: damage in the page that
// holds the pointer.
func (w *walker) pointerProblem(pgid uint64) (Kind, string) {
	switch {
	case pgid < 2:
		return KindChildIsMeta, fmt.Sprintf("child pgid %d is a meta page", pgid)
	case pgid >= w.hwm && pgid >= uint64(len(w.c.sums)):
		return KindChildOutOfRange, fmt.Sprintf("child pgid %d at or past the high-water mark %d", pgid, w.hwm)
	case pgid >= uint64(len(w.c.sums)):
		return KindChildPastEOF, fmt.Sprintf("child pgid %d past the end of the file (%d pages)", pgid, len(w.c.sums))
	case pgid >= w.hwm:
		return KindChildOutOfRange, fmt.Sprintf("child pgid %d at or past the high-water mark %d", pgid, w.hwm)
	case w.freelist != NoFreelist && pgid == w.freelist:
		return KindChildIsFreelist, fmt.Sprintf("child pgid %d is the freelist page", pgid)
	case w.reach[pgid] != reachNone:
		return KindReachedTwice, fmt.Sprintf("child pgid %d is already reached (cycle or shared page)", pgid)
	}
	return "", ""
}

// contentProblem judges the page a valid pointer leads to: damage in that
// page itself.
func (w *walker) contentProblem(pgid uint64) (Kind, string) {
	s := &w.c.sums[pgid]
	switch s.state {
	case stateShort:
		return KindPageType, "page cut short by the end of the file"
	case stateZero:
		return KindPageType, "page is zeros (never written, or wiped)"
	case stateGarbage:
		return KindPageType, fmt.Sprintf("invalid page flags %#x: not a bbolt page", s.typ)
	case stateIDMismatch:
		return KindPageIDMismatch, fmt.Sprintf("page %d identifies itself as page %d (%s)", pgid, s.id, s.typ)
	}
	if s.typ != TypeBranch && s.typ != TypeLeaf {
		return KindPageType, fmt.Sprintf("invalid type: %s where a branch or leaf belongs", s.typ)
	}
	return "", ""
}

// walkRoot walks the file's root bucket tree from pgid.
func (w *walker) walkRoot(pgid uint64) {
	root := &Bucket{Root: pgid, Element: -1}
	w.enterBucket(root, nil, pgid, 0)
}

// enterBucket walks bucket b whose tree starts at pgid (b.Root). chain
// leads to the holder page.
func (w *walker) enterBucket(b *Bucket, chain []uint64, pgid uint64, bdepth int) {
	saveCur, saveIdx, saveLast := w.cur, w.curIdx, w.lastKey
	w.cur, w.curIdx, w.lastKey = b, int32(len(w.buckets)), nil
	b.chain = append([]uint64(nil), chain...)
	w.buckets = append(w.buckets, b)
	if kind, msg := w.pointerProblem(pgid); kind != "" {
		holder := pgid
		if len(chain) > 0 {
			holder = chain[len(chain)-1]
		}
		f := Finding{Kind: kind, Chain: chain, Child: u64p(pgid), Message: "bucket root: " + msg, Lost: w.lostRange(nil, nil)}
		if len(chain) > 0 {
			f.Page = u64p(holder)
			f.Element = intp(b.Element)
		}
		w.add(f)
	} else if kind, msg := w.contentProblem(pgid); kind != "" {
		w.add(Finding{Kind: kind, Page: u64p(pgid), Offset: i64p(int64(pgid) * int64(w.f.PageSize)),
			Chain: appendChain(chain, pgid), Message: "bucket root: " + msg, Lost: w.lostRange(nil, nil)})
	} else {
		b.Depth = w.walkNode(pgid, chain, 1, nil, nil, bdepth)
	}
	w.cur, w.curIdx, w.lastKey = saveCur, saveIdx, saveLast
}

// walkNode walks a node whose pointer and content checks passed. lo and hi
// bound its keys (lo inclusive, hi exclusive; nil is open). It returns the
// depth of the subtree.
func (w *walker) walkNode(pgid uint64, parentChain []uint64, depth int, lo, hi []byte, bdepth int) int {
	chain := w.extend(parentChain, pgid)
	if depth > maxTreeDepth {
		w.add(Finding{Kind: KindTreeTooDeep, Page: u64p(pgid), Chain: chain,
			Message: fmt.Sprintf("more than %d levels: a cycle or a hostile file", maxTreeDepth)})
		return depth
	}
	s := &w.c.sums[pgid]
	w.reach[pgid] = reachNode
	w.owner[pgid] = w.curIdx
	w.cur.Nodes++
	w.markOverflow(pgid, s, chain)
	w.localProblems(pgid, chain, s.typ == TypeLeaf, hi)
	if s.typ == TypeLeaf {
		w.walkLeaf(pgid, s, chain, lo, hi, bdepth)
		return 1
	}
	return 1 + w.walkBranch(pgid, s, chain, depth, lo, hi, bdepth)
}

func (w *walker) markOverflow(pgid uint64, s *pageSum, chain []uint64) {
	if s.overflow == 0 {
		return
	}
	end := pgid + uint64(s.overflow) // last continuation page
	if end < pgid || end >= w.hwm {
		w.add(Finding{Kind: KindOverflowPastHWM, Page: u64p(pgid), Offset: i64p(int64(pgid)*int64(w.f.PageSize) + 12), Chain: chain,
			Message: fmt.Sprintf("overflow %d runs past the high-water mark %d", s.overflow, w.hwm)})
	}
	last := min(end, w.hwm-1, uint64(len(w.reach))-1)
	if end < pgid {
		last = min(w.hwm-1, uint64(len(w.reach))-1)
	}
	for p := pgid + 1; p <= last; p++ {
		if w.reach[p] != reachNone {
			w.add(Finding{Kind: KindReachedTwice, Page: u64p(pgid), Chain: chain, Child: u64p(p),
				Message: fmt.Sprintf("overflow page %d of this node is also reached elsewhere", p)})
			return
		}
		w.reach[p] = reachOverflow
		w.owner[p] = w.curIdx
		w.cur.Overflow++
	}
}

// localProblems turns the census's page-local problems into findings now
// that the page is known to be live.
func (w *walker) localProblems(pgid uint64, chain []uint64, leaf bool, hi []byte) {
	var lost, other []localProblem
	for _, p := range w.c.problems[pgid] {
		if p.keyOnly && !w.cur.IsKeyBucket() {
			continue
		}
		if leaf && recordLost(p.kind) {
			lost = append(lost, p)
		} else {
			other = append(other, p)
		}
	}
	// Consecutive elements with the same damage make one finding, so the
	// report stays linear in the page (a page of empty keys is 65k of them).
	for _, r := range elementRuns(other) {
		p := other[r[0]]
		f := Finding{Kind: p.kind, Page: u64p(pgid), Offset: i64p(p.off), Chain: chain, Message: p.msg}
		if p.elem >= 0 {
			f.Element = intp(p.elem)
			if r[1] > r[0] {
				last := other[r[1]].elem
				f.Elements = &[2]int{p.elem, last}
				f.Message = fmt.Sprintf("elements %d..%d: %s", p.elem, last, p.msg)
			}
		}
		w.add(f)
	}
	if len(lost) > 0 {
		w.leafLosses(pgid, chain, hi, lost)
	}
}

// elementRuns groups problems into runs [first, last] (indexes into probs)
// of one kind on consecutive elements.
func elementRuns(probs []localProblem) [][2]int {
	var runs [][2]int
	for i := 0; i < len(probs); {
		j := i
		for j+1 < len(probs) && probs[j+1].kind == probs[i].kind && probs[i].elem >= 0 && probs[j+1].elem == probs[j].elem+1 {
			j++
		}
		runs = append(runs, [2]int{i, j})
		i = j + 1
	}
	return runs
}

// recordLost reports whether a leaf problem of this kind loses records:
// an element that cannot be read, or a value that is not what it claims.
func recordLost(k Kind) bool {
	return k == KindElementBounds || k == KindValueUndecodable || k == KindOverflowPastEOF || k == KindZeroedKey
}

// leafLosses reports the leaf problems that lose records, consecutive
// elements of one kind as one finding, each with the readable keys around
// it as its lost range. The page is read once more: damage is the rare
// path, and grouping keeps the report (and its memory) linear in the page.
func (w *walker) leafLosses(pgid uint64, chain []uint64, hi []byte, probs []localProblem) {
	n, _, err := w.f.readNodeLimit(pgid, nil, 1<<62)
	var good []int // elements with a readable key
	if err == nil {
		for i := 0; i < int(n.Count) && PageHeaderSize+(i+1)*LeafElementSize <= len(n.Data); i++ {
			if _, fe := n.Leaf(i); fe == nil {
				good = append(good, i)
			}
		}
	}
	key := func(i int) []byte {
		e, _ := n.Leaf(i)
		return bytes.Clone(e.Key)
	}
	// neighbours of element elem (-1: past the node's last element).
	neighbours := func(from, to int) (after, before []byte) {
		after, before = w.lastKey, hi
		if err != nil {
			return nil, hi
		}
		j := sort.SearchInts(good, from)
		if from >= 0 && j > 0 {
			after = key(good[j-1])
		} else if from < 0 && len(good) > 0 {
			after = key(good[len(good)-1])
		}
		if from >= 0 {
			k := sort.SearchInts(good, to+1)
			if k < len(good) {
				before = key(good[k])
			}
		}
		return after, before
	}
	for _, r := range elementRuns(probs) {
		i, j := r[0], r[1]
		p := probs[i]
		f := Finding{Kind: p.kind, Page: u64p(pgid), Offset: i64p(p.off), Chain: chain, Message: p.msg}
		if p.elem >= 0 {
			f.Element = intp(p.elem)
			if j > i {
				f.Elements = &[2]int{p.elem, probs[j].elem}
				f.Message = fmt.Sprintf("elements %d..%d: %s", p.elem, probs[j].elem, p.msg)
			}
		}
		after, before := neighbours(p.elem, probs[j].elem)
		f.Lost = w.lostRange(after, before)
		w.add(f)
	}
}

func (w *walker) walkLeaf(pgid uint64, s *pageSum, chain []uint64, lo, hi []byte, bdepth int) {
	li := &w.c.leaves[s.info]
	w.cur.Leaves = append(w.cur.Leaves, pgid)
	w.cur.Records += li.records
	if li.hasKeys {
		first, last := w.c.key(li.first), w.c.key(li.last)
		if (lo != nil && bytes.Compare(first, lo) < 0) || (hi != nil && bytes.Compare(last, hi) >= 0) {
			w.add(Finding{Kind: KindKeyOrder, Page: u64p(pgid), Offset: i64p(int64(pgid) * int64(w.f.PageSize)), Chain: chain,
				Message: "leaf keys fall outside the range its parent's separators give it"})
		}
		if w.cur.First == nil {
			w.cur.First = first // the census arena does not move once the walk starts
		}
		if w.lastKey == nil || bytes.Compare(last, w.lastKey) > 0 {
			w.lastKey = last
			w.cur.Last = last
		}
	}
	for i := li.bfirst; i < li.bfirst+li.bn; i++ {
		lb := &w.c.lbuckets[i]
		path := append(append([][]byte{}, w.cur.Path...), bytes.Clone(w.c.key(lb.name)))
		nb := &Bucket{Path: path, Root: lb.hdr.Root, Holder: pgid, Element: lb.elem, Sequence: lb.hdr.Sequence}
		if bdepth+1 > maxBucketDepth {
			w.add(Finding{Kind: KindTreeTooDeep, Page: u64p(pgid), Chain: chain, Element: intp(lb.elem),
				Message: fmt.Sprintf("buckets nested more than %d deep", maxBucketDepth)})
			continue
		}
		if lb.inline {
			nb.Inline = true
			nb.Records = max(lb.records, 0)
			nb.Depth = 1
			if lb.hasFirst {
				nb.First, nb.Last = bytes.Clone(w.c.key(lb.first)), bytes.Clone(w.c.key(lb.last))
			}
			nb.chain = append([]uint64(nil), chain...)
			nb.Damaged = lb.records < 0
			w.buckets = append(w.buckets, nb)
			continue
		}
		w.enterBucket(nb, chain, lb.hdr.Root, bdepth+1)
	}
}

// badRun is a run of consecutive branch elements that lead nowhere.
type badRun struct {
	kind     Kind
	msg      string
	from, to int
	page     uint64 // the page that holds the damage
	child    *uint64
	content  bool // damage in the child page, not the pointer
}

func (w *walker) walkBranch(pgid uint64, s *pageSum, chain []uint64, depth int, lo, hi []byte, bdepth int) int {
	bi := w.c.branches[s.info]
	elems := w.c.belems[bi.first : bi.first+bi.n]
	maxDepth := 0
	// nextGood[i] is the next element after i with a readable key, or -1.
	nextGood := make([]int32, len(elems))
	next := int32(-1)
	for i := len(elems) - 1; i >= 0; i-- {
		nextGood[i] = next
		if elems[i].bad == 0 && !elems[i].zero {
			next = int32(i)
		}
	}
	var pending []badRun
	var lostKids []uint64 // children whose page content is lost
	var keyRuns [][2]int
	var prevKey []byte
	flush := func(before []byte) {
		if len(pending) == 0 {
			return
		}
		lost := w.lostRange(w.lastKey, before)
		for _, r := range pending {
			f := Finding{Kind: r.kind, Page: u64p(r.page), Chain: chain, Child: r.child, Message: r.msg, Lost: lost}
			if r.content {
				f.Chain = appendChain(chain, r.page)
				f.Offset = i64p(int64(r.page) * int64(w.f.PageSize))
				f.Message = fmt.Sprintf("element %d of page %d: %s", r.from, pgid, r.msg)
			} else {
				f.Offset = i64p(int64(pgid)*int64(w.f.PageSize) + int64(PageHeaderSize+r.from*BranchElementSize))
			}
			f.Element = intp(r.from)
			if r.to > r.from {
				f.Elements = &[2]int{r.from, r.to}
				f.Message = fmt.Sprintf("elements %d..%d: %s", r.from, r.to, r.msg)
			}
			w.add(f)
		}
		pending = pending[:0]
	}
	addBad := func(i int, kind Kind, msg string, page uint64, child *uint64, content bool) {
		if n := len(pending); n > 0 && !content && !pending[n-1].content && pending[n-1].kind == kind && pending[n-1].to == i-1 {
			pending[n-1].to = i
			return
		}
		pending = append(pending, badRun{kind: kind, msg: msg, from: i, to: i, page: page, child: child, content: content})
	}
	w.prefetch(elems)
	for i := range elems {
		e := &elems[i]
		if e.bad != 0 {
			addBad(i, KindElementBounds, w.c.errOf(e).Msg, pgid, nil, false)
			continue
		}
		key := w.c.key(e.key)
		if e.zero {
			addBad(i, KindChildIsMeta, "zeroed branch elements (child pgid 0): torn or wiped page", pgid, u64p(0), false)
			continue
		}
		// A bad separator key loses nothing by itself: the child's own keys
		// are what the records are filed under. Report it, then follow the
		// pointer if it is sound, bounded by the good separators around it.
		badKey := (prevKey != nil && bytes.Compare(key, prevKey) <= 0) ||
			(lo != nil && bytes.Compare(key, lo) < 0) || (hi != nil && bytes.Compare(key, hi) >= 0)
		if badKey {
			keyRuns = addKeyRun(keyRuns, i)
		}
		if kind, msg := w.pointerProblem(e.child); kind != "" {
			addBad(i, kind, msg, pgid, u64p(e.child), false)
			continue
		}
		if kind, msg := w.contentProblem(e.child); kind != "" {
			addBad(i, kind, msg, e.child, u64p(e.child), true)
			lostKids = append(lostKids, e.child)
			continue
		}
		if badKey {
			// Bound the child by the good keys around it.
			key = prevKey
			flush(nil)
		} else {
			flush(key)
			prevKey = key
		}
		// The child's keys end before the next good separator, or hi.
		// Only the next decodable element is looked at, so a page of bad
		// keys costs linear time, not quadratic.
		childHi := hi
		if j := nextGood[i]; j >= 0 {
			k := w.c.key(elems[j].key)
			if (key == nil || bytes.Compare(k, key) > 0) && (hi == nil || bytes.Compare(k, hi) < 0) {
				childHi = k
			}
		}
		childLo := key
		if i == 0 || key == nil {
			// bbolt does not always rewrite the first separator when the
			// smallest key goes; the parent's bound is the real limit.
			childLo = lo
		}
		maxDepth = max(maxDepth, w.walkNode(e.child, chain, depth+1, childLo, childHi, bdepth))
	}
	flush(hi)
	if maxDepth >= 2 {
		// A child that walked is a branch: so were the lost ones.
		for _, k := range lostKids {
			w.branchLevel[k] = true
		}
	}
	for _, kr := range keyRuns {
		f := Finding{Kind: KindKeyOrder, Page: u64p(pgid), Chain: chain, Element: intp(kr[0]),
			Offset:  i64p(int64(pgid)*int64(w.f.PageSize) + int64(PageHeaderSize+kr[0]*BranchElementSize)),
			Message: fmt.Sprintf("element %d: separator key out of order or outside its parent's range (children still followed)", kr[0])}
		if kr[1] > kr[0] {
			f.Elements = &[2]int{kr[0], kr[1]}
			f.Message = fmt.Sprintf("elements %d..%d: separator keys out of order or outside their parent's range (children still followed)", kr[0], kr[1])
		}
		w.add(f)
	}
	return maxDepth
}

// prefetch reads, for every child of a branch, what walking it reads
// first: its census entry, its marks, and a leaf's summary and keys. The
// walk goes from child to child in key order, and the children lie
// anywhere in the file, so each of these is a cache miss, taken one after
// another; here the loads are independent of each other, and the CPU has
// many in flight at once. On a 5 GiB db this took the walk from 0.7 s to
// 0.3 s of CPU. It changes nothing the walk decides: every index is
// checked as the walk checks it, and what is read only goes into w.sink.
func (w *walker) prefetch(elems []branchElem) {
	c := w.c
	var x uint32
	for i := range elems {
		if p := elems[i].child; p < uint64(len(c.sums)) {
			x += uint32(c.sums[p].info) + uint32(w.reach[p]) + uint32(w.owner[p])
		}
	}
	for i := range elems {
		p := elems[i].child
		if p >= uint64(len(c.sums)) {
			continue
		}
		s := &c.sums[p]
		if s.state == stateWellFormed && s.typ == TypeLeaf && s.info >= 0 && int(s.info) < len(c.leaves) {
			li := &c.leaves[s.info]
			if li.hasKeys && int(li.first.off) < len(c.arena) && int(li.last.off) < len(c.arena) {
				x += uint32(c.arena[li.first.off]) + uint32(c.arena[li.last.off])
			}
		}
	}
	w.sink += x
}

// addKeyRun extends the last run of bad separator keys or starts one.
func addKeyRun(runs [][2]int, i int) [][2]int {
	if n := len(runs); n > 0 && runs[n-1][1] == i-1 {
		runs[n-1][1] = i
		return runs
	}
	return append(runs, [2]int{i, i})
}

// lostRange builds the key range (after, before) and, in etcd's key
// bucket, the main revisions it can hold.
func (w *walker) lostRange(after, before []byte) *KeyRange {
	rev := w.cur != nil && w.cur.IsKeyBucket()
	r := &KeyRange{}
	if after != nil {
		r.After = MakeKey(after, rev)
	}
	if before != nil {
		r.Before = MakeKey(before, rev)
	}
	if rev {
		rr := &RevRange{From: 1}
		if a, ok := ParseRevision(after); ok {
			// More sub-revisions of the same main revision may follow.
			rr.From = a.Main
		}
		if b, ok := ParseRevision(before); ok {
			rr.To = b.Main
			if b.Sub == 0 && !b.Tombstone && b.Main > rr.From {
				rr.To = b.Main - 1
			}
		}
		r.Revisions = rr
	}
	return r
}
