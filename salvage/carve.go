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
}

// carve reads every unreached leaf page and keeps the etcd key-bucket
// records on it. A page counts as a key-bucket page only when most of its
// readable elements are valid revision records, so the leaves of other
// buckets (whose keys may happen to be 17 bytes) are not mistaken for it.
func carve(res *pagewalk.Result, progress Counter) *carveResult {
	cr := &carveResult{}
	byRev := map[string]int{}
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
	return cr
}
