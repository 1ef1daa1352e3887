package salvage

import (
	"bytes"
	"slices"

	"github.com/boltfix/boltfix/pagewalk"
)

// The pages no tree reaches, gathered into subtrees: a branch's children
// and a leaf's nested bucket roots belong to the page that points at them,
// so what damage cut off comes back as whole subtrees (a bucket's lost
// half, with every nested bucket below it), each with its own key range.

// pageStatus says what the file proves about an unreached page.
type pageStatus string

const (
	// statusOrphan: below the high-water mark, not on the synced freelist:
	// part of the last committed tree, cut off by damage. Current.
	statusOrphan pageStatus = "orphan"
	// statusFree: listed free by the synced freelist: an older version.
	statusFree pageStatus = "free"
	// statusUnproven: no synced freelist to tell; may be current or old.
	statusUnproven pageStatus = "unproven"
	// statusPastHWM: at or past the high-water mark: never committed, or
	// from before a shrink.
	statusPastHWM pageStatus = "past-hwm"
)

// orphanRecord is one key/value found on an unreached page.
type orphanRecord struct {
	rel   [][]byte // bucket path below the subtree's own bucket
	key   []byte
	value []byte
	page  uint64
}

// orphanBucket is a nested bucket found in a subtree.
type orphanBucket struct {
	rel [][]byte
	seq uint64
}

// subtree is a tree of unreached pages under one root page.
type subtree struct {
	root   uint64
	status pageStatus
	// first and last are the subtree's own-level keys (records and bucket
	// names directly in it): where it fits in its parent bucket.
	first, last []byte
	recs        []orphanRecord
	buckets     []orphanBucket
	pages       []uint64 // nodes and their overflow pages
	// broken counts pointers that lead out of the subtree's status (to a
	// reached, free or unreadable page) or into a cycle, and damaged
	// elements: the subtree is not whole.
	broken int
}

// maxSubtreeDepth bounds the descent (branches plus nested buckets): a real
// bbolt file is far shallower; a hostile one could be a chain.
const maxSubtreeDepth = 256

// forest gathers the unreached well-formed nodes into subtrees.
type forest struct {
	res     *pagewalk.Result
	free    map[uint64]bool // nil: no proof
	status  map[uint64]pageStatus
	visited map[uint64]bool
	trees   []*subtree
	// staleNames maps a page to the bucket names a non-current leaf gives
	// it as root: a guess at an orphaned bucket's name, never a proof.
	staleNames map[uint64][]byte
	// roots are pages that start a subtree of their own whatever points
	// at them: root candidates that may be a newer commit's root.
	roots map[uint64]bool
}

// newForest classifies every unreached well-formed node.
func newForest(res *pagewalk.Result, free map[uint64]bool) *forest {
	f := &forest{res: res, free: free, status: map[uint64]pageStatus{}, visited: map[uint64]bool{}, staleNames: map[uint64][]byte{}, roots: map[uint64]bool{}}
	var nodes []uint64
	for _, p := range res.CarveCandidates() {
		if res.WellformedLeaf(p) {
			nodes = append(nodes, p)
		}
	}
	nodes = append(nodes, res.UnreachedBranches()...)
	for _, p := range nodes {
		switch {
		case p >= res.HWM:
			f.status[p] = statusPastHWM
		case free == nil:
			f.status[p] = statusUnproven
		case free[p]:
			f.status[p] = statusFree
		default:
			f.status[p] = statusOrphan
		}
	}
	return f
}

// build finds the roots (nodes no other node of the same status points
// at) and collects each subtree; what a cycle leaves unvisited is collected
// from its smallest page.
func (f *forest) build() {
	pointed := map[uint64]bool{}
	order := make([]uint64, 0, len(f.status))
	for p := range f.status {
		order = append(order, p)
	}
	slices.Sort(order)
	for _, p := range order {
		n, err := f.res.File.ReadNode(p)
		if err != nil {
			continue
		}
		for _, c := range children(n, f.staleNames, f.status[p] != statusOrphan) {
			if f.status[c] == f.status[p] && !f.roots[c] {
				pointed[c] = true
			}
		}
	}
	// Forced roots first: what they reach is theirs.
	order = append(slices.DeleteFunc(slices.Clone(order), func(p uint64) bool { return !f.roots[p] }), order...)
	for _, pass := range []bool{false, true} {
		for _, p := range order {
			if f.visited[p] || (!pass && pointed[p]) {
				continue
			}
			st := &subtree{root: p, status: f.status[p]}
			f.collect(st, p, nil, 0)
			f.trees = append(f.trees, st)
		}
	}
}

// children lists the pages a node points at: a branch's children, a leaf's
// nested bucket roots. With names, a leaf's bucket elements are remembered
// as guesses at the names of the roots they point to.
func children(n *pagewalk.Node, names map[uint64][]byte, remember bool) []uint64 {
	var out []uint64
	for i := 0; i < n.Elements(); i++ {
		switch n.Flags {
		case pagewalk.FlagBranch:
			e, fe := n.Branch(i)
			if fe == nil {
				out = append(out, e.Child)
			}
		case pagewalk.FlagLeaf:
			e, fe := n.Leaf(i)
			if fe != nil || !e.IsBucket() {
				continue
			}
			h, _, fe := pagewalk.ParseBucket(e.Value, n.Pgid, n.Offset)
			if fe == nil && h.Root != 0 {
				out = append(out, h.Root)
				if remember && names[h.Root] == nil {
					names[h.Root] = bytes.Clone(e.Key)
				}
			}
		}
	}
	return out
}

// collect reads the node at pgid into st, below the bucket path rel.
func (f *forest) collect(st *subtree, pgid uint64, rel [][]byte, depth int) {
	if f.visited[pgid] || f.status[pgid] != st.status || depth > maxSubtreeDepth || (depth > 0 && f.roots[pgid]) {
		st.broken++
		return
	}
	f.visited[pgid] = true
	n, err := f.res.File.ReadNode(pgid)
	if err != nil {
		st.broken++
		return
	}
	for i := uint64(0); i <= uint64(n.Overflow) && i*uint64(f.res.File.PageSize) < uint64(len(n.Data)); i++ {
		st.pages = append(st.pages, pgid+i)
	}
	own := func(k []byte) {
		if len(rel) > 0 {
			return
		}
		if st.first == nil || bytes.Compare(k, st.first) < 0 {
			st.first = bytes.Clone(k)
		}
		if st.last == nil || bytes.Compare(k, st.last) > 0 {
			st.last = bytes.Clone(k)
		}
	}
	// Elements a whole zero block covers (pagewalk.Result.ZeroedElements):
	// a zeroed key names no record; a zeroed value is written, but the
	// subtree no longer proves its range.
	zeroedValues, zeroedKeys := f.res.ZeroedElements(pgid)
	if int(n.Count) > n.Elements() {
		st.broken++ // elements past the node: lost
	}
	for i := 0; i < n.Elements(); i++ {
		if n.Flags == pagewalk.FlagBranch {
			e, fe := n.Branch(i)
			if fe != nil {
				st.broken++
				continue
			}
			f.collect(st, e.Child, rel, depth+1)
			continue
		}
		e, fe := n.Leaf(i)
		if fe != nil || slices.Contains(zeroedKeys, i) {
			st.broken++
			continue
		}
		if slices.Contains(zeroedValues, i) {
			st.broken++
		}
		own(e.Key)
		if !e.IsBucket() {
			st.recs = append(st.recs, orphanRecord{rel: rel, key: bytes.Clone(e.Key), value: bytes.Clone(e.Value), page: pgid})
			continue
		}
		sub := append(append([][]byte{}, rel...), bytes.Clone(e.Key))
		h, inl, fe := pagewalk.ParseBucket(e.Value, n.Pgid, n.Offset)
		if fe != nil {
			st.broken++
			continue
		}
		st.buckets = append(st.buckets, orphanBucket{rel: sub, seq: h.Sequence})
		if h.Root != 0 {
			f.collect(st, h.Root, sub, depth+1)
			continue
		}
		for j := 0; j < int(inl.Count); j++ {
			ie, fe := inl.Leaf(j)
			if fe != nil || ie.IsBucket() {
				st.broken++ // bbolt never inlines a bucket that holds buckets
				continue
			}
			st.recs = append(st.recs, orphanRecord{rel: sub, key: bytes.Clone(ie.Key), value: bytes.Clone(ie.Value), page: pgid})
		}
	}
}
