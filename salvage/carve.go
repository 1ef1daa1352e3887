package salvage

import (
	"bytes"
	"sort"

	"github.com/boltfix/boltfix/pagewalk"
)

// carved is a key-bucket record found on a page the tree does not reach.
type carved struct {
	rev     pagewalk.Revision
	revKey  []byte
	value   []byte
	etcdKey []byte
	page    uint64
}

// carveResult holds carved records, sorted by revision key, one per
// revision, and the conflicts between copies.
type carveResult struct {
	recs      []carved
	pages     int
	cands     int
	rejected  int
	dups      int
	conflicts []Conflict
	// edges are the first and last revision on each page that gave
	// records: where a page ends, a transaction's later sub-revisions may
	// have been on a page that is gone.
	edges [][2]pagewalk.Revision
	// pairs are consecutive records on one carved page with different main
	// revisions: proof that the first one's transaction ended there.
	pairs [][2]pagewalk.Revision
}

// carve reads every unreached leaf page and keeps the etcd key-bucket
// records on it. A page counts as a key-bucket page only when most of its
// readable elements are valid revision records, so the leaves of other
// buckets (whose keys may happen to be 17 bytes) are not mistaken for it.
func carve(res *pagewalk.Result, progress Counter) *carveResult {
	cr := &carveResult{}
	byRev := map[string]int{}
	pageEdges := map[uint64][2]pagewalk.Revision{}
	cands := res.CarveCandidates()
	cr.cands = len(cands)
	for _, pgid := range cands {
		if progress != nil {
			progress.Add(1)
		}
		n, err := res.File.ReadNode(pgid)
		if err != nil {
			continue
		}
		var good []carved
		readable := 0
		for i := 0; i < int(n.Count); i++ {
			e, fe := n.Leaf(i)
			if fe != nil {
				continue
			}
			readable++
			if e.IsBucket() {
				continue
			}
			rev, ok := pagewalk.ParseRevision(e.Key)
			if !ok {
				continue
			}
			kv, err := decodeRecord(rev, e.Value)
			if err != nil {
				cr.rejected++
				continue
			}
			good = append(good, carved{rev: rev, revKey: bytes.Clone(e.Key), value: bytes.Clone(e.Value), etcdKey: kv.Key, page: pgid})
		}
		if len(good) == 0 || 2*len(good) < readable {
			continue
		}
		cr.pages++
		cr.edges = append(cr.edges, [2]pagewalk.Revision{good[0].rev, good[len(good)-1].rev})
		pageEdges[pgid] = [2]pagewalk.Revision{good[0].rev, good[len(good)-1].rev}
		for i := 1; i < len(good); i++ {
			if good[i-1].rev.Main != good[i].rev.Main {
				cr.pairs = append(cr.pairs, [2]pagewalk.Revision{good[i-1].rev, good[i].rev})
			}
		}
		for _, c := range good {
			if j, ok := byRev[string(c.revKey)]; ok {
				prev := &cr.recs[j]
				if bytes.Equal(prev.value, c.value) {
					cr.dups++
				} else {
					cr.conflicts = append(cr.conflicts, Conflict{Revision: c.rev, Pages: []uint64{prev.page, c.page},
						KeptPage: prev.page, KeptFrom: "carved", Different: "two carved copies differ; kept the first found"})
				}
				continue
			}
			byRev[string(c.revKey)] = len(cr.recs)
			cr.recs = append(cr.recs, c)
		}
	}
	sort.Slice(cr.recs, func(i, j int) bool { return bytes.Compare(cr.recs[i].revKey, cr.recs[j].revKey) < 0 })
	cr.branchPairs(res, pageEdges)
	return cr
}

// branchPairs proves neighbours across carved leaves: an unreached branch
// page whose consecutive children are carved leaves with keys that fit its
// separators shows that nothing lay between the last record of one and the
// first of the next.
func (cr *carveResult) branchPairs(res *pagewalk.Result, edges map[uint64][2]pagewalk.Revision) {
	for _, pgid := range res.UnreachedBranches() {
		n, err := res.File.ReadNode(pgid)
		if err != nil {
			continue
		}
		var prev *pagewalk.BranchElement
		for i := 0; i < int(n.Count); i++ {
			e, fe := n.Branch(i)
			if fe != nil {
				prev = nil
				continue
			}
			if prev != nil {
				l, lok := edges[prev.Child]
				r, rok := edges[e.Child]
				sep, sok := pagewalk.ParseRevision(e.Key)
				if lok && rok && sok && !revLess(sep, l[1]) && !revLess(r[0], sep) && revLess(l[1], r[0]) {
					cr.pairs = append(cr.pairs, [2]pagewalk.Revision{l[1], r[0]})
				}
			}
			ec := e
			prev = &ec
		}
	}
}
