package history

import (
	"bytes"
	"context"
	"sort"

	"github.com/boltfix/boltfix/pagewalk"
	"google.golang.org/protobuf/encoding/protowire"
)

// Version is one revision record of a key.
type Version struct {
	Revision       pagewalk.Revision `json:"revision"`
	CreateRevision int64             `json:"create_revision"`
	ModRevision    int64             `json:"mod_revision"`
	Version        int64             `json:"version"`
	Lease          int64             `json:"lease,omitempty"`
	Tombstone      bool              `json:"tombstone,omitempty"`
	State          State             `json:"state"`
	// DeletedAt is the main revision of the tombstone that ended this
	// version, when it was found; 0 otherwise.
	DeletedAt int64 `json:"deleted_at,omitempty"`
	// Reached: the live tree holds this record. Pages lists pages holding
	// a copy (at most maxPages), reached or not.
	Reached bool     `json:"reached"`
	Pages   []uint64 `json:"pages"`
	// Value is the etcd value (the Kubernetes object's bytes).
	Value []byte `json:"-"`
	// Conflict: two copies of this revision differ; the first found (the
	// reached one when there is one) is kept.
	Conflict bool `json:"conflict,omitempty"`
}

// Key is every version of one etcd key found in the file, oldest first.
type Key struct {
	Key      string    `json:"key"`
	State    State     `json:"state"` // live, deleted or unknown
	Versions []Version `json:"versions"`
	// DeletedAt: the revision of the tombstone that deleted the key, when
	// found.
	DeletedAt int64 `json:"deleted_at,omitempty"`
	// NewerMayBeLost: the newest version found need not be the newest the
	// key had (its tombstone was compacted away, or damage lies above it).
	NewerMayBeLost bool `json:"newer_may_be_lost"`
}

// Options choose the keys to collect.
type Options struct {
	// Prefix selects keys starting with it; with Exact, only that key.
	Prefix []byte
	Exact  bool
	// Progress, if set, is told about every page read.
	Progress pagewalk.Counter
	// Context, if set, ends Collect early with its error when it is
	// cancelled (the CLI cancels it on SIGINT/SIGTERM).
	Context context.Context
}

// Result is every version found of every key selected.
type Result struct {
	Keys            []*Key `json:"keys"`
	CompactRevision int64  `json:"compact_revision"`
	// Records: versions found (distinct revisions); Reached of them in the
	// live tree; Copies: further identical copies on other pages.
	Records        int `json:"records"`
	Reached        int `json:"reached"`
	Copies         int `json:"copies"`
	Conflicts      int `json:"conflicts"`
	CandidatePages int `json:"candidate_pages"` // unreached leaf pages read
	CarvedPages    int `json:"carved_pages"`    // of them, key-bucket pages
	// RawRecords: records found in pages no node header describes (the
	// freed continuation pages of a node rewritten smaller).
	RawRecords int `json:"raw_records"`
	// KeyBucketDamaged: the scan found damage in the key bucket (or did
	// not reach it): versions there are unknown rather than judged.
	KeyBucketDamaged bool `json:"key_bucket_damaged"`
	FileChanged      bool `json:"file_changed"`
}

// maxNode bounds one node read: etcd requests are at most a few MiB.
const maxNode = 64 << 20

// maxPages bounds the pages listed per version.
const maxPages = 8

type collector struct {
	opts  Options
	pages int                 // pages read so far
	byRev map[string]*Version // revision key -> version
	keyOf map[*Version]string
	res   *Result
}

// Collect gathers the versions of the keys opts selects from the live tree
// and every unreached leaf page of res's file.
func Collect(res *pagewalk.Result, opts Options) (*Result, error) {
	c := &collector{opts: opts, byRev: map[string]*Version{}, keyOf: map[*Version]string{}, res: &Result{Keys: []*Key{}}}
	if e := res.Report.Etcd; e != nil && e.FinishedCompact != nil {
		c.res.CompactRevision = *e.FinishedCompact
	}
	kb := res.Bucket("key")
	var buf []byte
	if kb != nil {
		if kb.Inline {
			err := res.ForEach(kb, func(k, v []byte) error {
				c.add(k, v, kb.Holder, true)
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
		for _, pgid := range kb.Leaves {
			c.progress()
			if err := c.cancelled(); err != nil {
				return nil, err
			}
			n, nb, err := res.File.ReadNodeInto(pgid, buf, maxNode)
			buf = nb
			if err != nil {
				continue // the scan reported it
			}
			for i := 0; i < leafCount(n); i++ {
				e, fe := n.Leaf(i)
				if fe != nil || e.IsBucket() {
					continue
				}
				c.add(e.Key, e.Value, pgid, true)
			}
		}
	}
	covered := make([]bool, res.File.PageCount())
	for pgid := range covered {
		if _, ok := res.Reached(uint64(pgid)); ok {
			covered[pgid] = true
		}
	}
	for _, pgid := range res.UnreachedBranches() {
		covered[pgid] = true // written whole from a zeroed buffer
	}
	if err := c.carve(res, buf, covered); err != nil {
		return nil, err
	}
	if err := c.rawScan(res, covered); err != nil {
		return nil, err
	}
	u := uncertainRanges(res)
	c.res.KeyBucketDamaged = u.all || len(u.iv) > 0
	var last []byte
	if kb != nil {
		last = kb.Last
	}
	c.judge(u, last)
	c.res.FileChanged = res.File.Changed()
	return c.res, nil
}

func (c *collector) progress() {
	if c.opts.Progress != nil {
		c.opts.Progress.Add(1)
	}
	c.pages++
}

// cancelled reports the context's error, looked at on the first page read
// and every 1024 pages after it.
func (c *collector) cancelled() error {
	if c.opts.Context == nil || (c.pages-1)%1024 != 0 {
		return nil
	}
	return c.opts.Context.Err()
}

// carve reads every unreached leaf page. A page counts as a key-bucket
// page only when most of its readable elements are valid revision
// records, so the leaves of other buckets (whose keys may happen to be 17
// bytes long) are not mistaken for it.
func (c *collector) carve(res *pagewalk.Result, buf []byte, covered []bool) error {
	cands := res.CarveCandidates()
	c.res.CandidatePages = len(cands)
	type rec struct{ k, v []byte }
	var recs []rec
	for _, pgid := range cands {
		c.progress()
		if err := c.cancelled(); err != nil {
			return err
		}
		// A page whose header names another page is read as one page:
		// its overflow count is as suspect as its id.
		limit := int64(maxNode)
		if !res.WellformedLeaf(pgid) {
			limit = int64(res.File.PageSize)
		}
		n, nb, err := res.File.ReadNodeInto(pgid, buf, limit)
		buf = nb
		if err != nil {
			continue
		}
		// The node's pages are read through its elements: the raw scan
		// need not look at them again.
		for p := pgid; p < uint64(len(covered)) && p < pgid+uint64((len(n.Data)+res.File.PageSize-1)/res.File.PageSize); p++ {
			covered[p] = true
		}
		recs = recs[:0]
		readable := 0
		for i := 0; i < leafCount(n); i++ {
			e, fe := n.Leaf(i)
			if fe != nil {
				continue
			}
			readable++
			if e.IsBucket() || !pagewalk.IsRevisionKey(e.Key) {
				continue
			}
			if _, err := pagewalk.ParseKeyValue(e.Value); err != nil {
				continue
			}
			recs = append(recs, rec{e.Key, e.Value})
		}
		if len(recs) == 0 || 2*len(recs) < readable {
			continue
		}
		c.res.CarvedPages++
		for _, r := range recs {
			c.add(r.k, r.v, pgid, false)
		}
	}
	return nil
}

// leafCount is the number of leaf elements whose headers fit in the node:
// a count from disk past that would only yield an error per element.
func leafCount(n *pagewalk.Node) int {
	fit := (len(n.Data) - pagewalk.PageHeaderSize) / pagewalk.LeafElementSize
	return max(0, min(int(n.Count), fit))
}

// add records one copy of a key-bucket record if its key is selected.
func (c *collector) add(k, v []byte, pgid uint64, reached bool) {
	rev, ok := pagewalk.ParseRevision(k)
	if !ok {
		return
	}
	kv, err := pagewalk.ParseKeyValue(v)
	if err != nil {
		return
	}
	if c.opts.Exact && !bytes.Equal(kv.Key, c.opts.Prefix) || !bytes.HasPrefix(kv.Key, c.opts.Prefix) {
		return
	}
	value, lease := valueAndLease(v)
	if old := c.byRev[string(k)]; old != nil {
		if c.keyOf[old] != string(kv.Key) || !bytes.Equal(old.Value, value) || old.CreateRevision != kv.CreateRevision ||
			old.ModRevision != kv.ModRevision || old.Version != kv.Version {
			if !old.Conflict {
				c.res.Conflicts++
			}
			old.Conflict = true
		} else {
			c.res.Copies++
		}
		if reached && !old.Reached {
			old.Reached = true
			c.res.Reached++
		}
		if len(old.Pages) < maxPages {
			old.Pages = append(old.Pages, pgid)
		}
		return
	}
	ver := &Version{Revision: rev, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version,
		Lease: lease, Tombstone: rev.Tombstone, Reached: reached, Pages: []uint64{pgid}, Value: bytes.Clone(value)}
	c.byRev[string(k)] = ver
	c.keyOf[ver] = string(kv.Key)
	c.res.Records++
	if reached {
		c.res.Reached++
	}
}

// valueAndLease reads fields 5 (value) and 6 (lease) of an mvccpb.KeyValue
// that pagewalk.ParseKeyValue already accepted.
func valueAndLease(b []byte) (value []byte, lease int64) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		switch {
		case num == 5 && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return
			}
			value, n = v, m
		case num == 6 && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return
			}
			lease, n = int64(v), m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return
			}
		}
		b = b[n:]
	}
	return
}

// judge groups the versions by key, oldest first, and gives each its
// state. last is the live tree's newest revision key: a record above it
// comes from a transaction that never committed, or from a newer tree than
// the one walked.
func (c *collector) judge(u uncertain, last []byte) {
	byKey := map[string]*Key{}
	for _, v := range c.byRev {
		name := c.keyOf[v]
		k := byKey[name]
		if k == nil {
			k = &Key{Key: name}
			byKey[name] = k
			c.res.Keys = append(c.res.Keys, k)
		}
		k.Versions = append(k.Versions, *v)
	}
	sort.Slice(c.res.Keys, func(i, j int) bool { return c.res.Keys[i].Key < c.res.Keys[j].Key })
	for _, k := range c.res.Keys {
		sort.Slice(k.Versions, func(i, j int) bool { return revLess(k.Versions[i].Revision, k.Versions[j].Revision) })
		judgeKey(k, u, last)
	}
}

func judgeKey(k *Key, u uncertain, last []byte) {
	vs := k.Versions
	newest := &vs[len(vs)-1]
	newestKey := pagewalk.RevisionKey(newest.Revision)
	for i := range vs {
		v := &vs[i]
		switch {
		case v.Tombstone:
			v.State, v.DeletedAt = Deleted, v.Revision.Main
		case i+1 < len(vs) && vs[i+1].Tombstone:
			v.State, v.DeletedAt = Deleted, vs[i+1].Revision.Main
		case i+1 < len(vs) && v.Reached:
			v.State = Superseded
		case i+1 < len(vs):
			v.State = Compacted
		case v.Reached:
			v.State = Live
		case u.contains(newestKey) || last == nil || bytes.Compare(newestKey, last) > 0:
			v.State = Unknown
		default:
			// The newest record of its key, gone from an intact tree:
			// only compaction removes records, and it removes a key's
			// newest one only after a tombstone, itself compacted.
			v.State = Deleted
		}
	}
	switch {
	case newest.State == Live:
		k.State = Live
	case newest.Tombstone:
		k.State, k.DeletedAt = Deleted, newest.Revision.Main
		k.NewerMayBeLost = u.above(newestKey)
	case newest.State == Deleted && !u.above(newestKey):
		k.State, k.NewerMayBeLost = Deleted, true
	default:
		k.State, k.NewerMayBeLost = Unknown, true
	}
}

func revLess(a, b pagewalk.Revision) bool { return pagewalk.CompareRevisions(a, b) < 0 }

// Newest returns the key's newest put (nil if it has none).
func (k *Key) Newest() *Version {
	for i := len(k.Versions) - 1; i >= 0; i-- {
		if !k.Versions[i].Tombstone {
			return &k.Versions[i]
		}
	}
	return nil
}

// At returns the version in effect at revision rev (compact is the
// compaction revision): the newest record at or below rev, nil when that
// is a tombstone or there is none. lost says the key existed at rev (a
// newer record was created at or before it) but no record of that version
// was found. uncertain says the file cannot vouch for v at rev: it comes
// from a free page, where versions between it and rev may have been
// compacted away, or it is the newest version of a key whose tombstone was
// compacted (the key was deleted at some revision up to compact, perhaps
// before rev).
func (k *Key) At(rev, compact int64) (v *Version, lost, uncertain bool) {
	for i := len(k.Versions) - 1; i >= 0; i-- {
		w := &k.Versions[i]
		if w.Revision.Main > rev {
			if !w.Tombstone && w.CreateRevision > 0 && w.CreateRevision <= rev {
				lost = true
			}
			continue
		}
		if w.Tombstone {
			return nil, false, false
		}
		if i == len(k.Versions)-1 && k.State == Deleted {
			// Deleted, its tombstone compacted: the delete came at or
			// before compact.
			if rev >= compact {
				return nil, false, false
			}
			return w, false, true
		}
		// Under damage nothing is vouched for; else only a version from a
		// free page followed by another from a free page (or by nothing)
		// can hide a compacted version between them.
		free := !w.Reached && (i == len(k.Versions)-1 || !k.Versions[i+1].Reached)
		return w, false, free || k.State == Unknown
	}
	return nil, lost, false
}
