// Package etcdgen writes healthy, etcd-shaped bbolt databases directly with
// go.etcd.io/bbolt, without an etcd server: the ten top-level buckets etcd
// creates, a key bucket of revision records holding mvccpb.KeyValue values
// that look like Kubernetes objects (creates, updates, deletes as
// tombstones, multi-op transactions, leases), a meta bucket with
// consistent_index, term, confState, storageVersion and compaction
// revisions, and compactions that free pages, as a long-running member has.
//
// The output is deterministic for a given Config (same seed, same bytes
// modulo bbolt's own layout decisions, which are deterministic too).
//
// It is test and benchmark infrastructure: the benchmark harness writes a
// 1 GiB file with it (bench/gendb), BenchmarkScan a 64 MiB one, and the
// fuzz targets a few tiny ones with 1 KiB pages as seeds. DataDir
// (datadir.go, wal.go) puts a data dir around such a db, with an empty WAL
// or with committed entries after the db's index that etcd applies when it
// starts, and Expect (expect.go) says what a store holds once they are.
package etcdgen

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/server/v3/lease/leasepb"
	"google.golang.org/protobuf/proto"
)

// Buckets are etcd's top-level buckets, in the order etcd creates them.
var Buckets = []string{"key", "meta", "lease", "alarm", "cluster", "members", "members_removed", "auth", "authUsers", "authRoles"}

// Config says what to write. Zero fields take the defaults in brackets.
type Config struct {
	// Size stops the generator once the db's high-water mark
	// (pgid x page size) reaches this many bytes. 0: only Records counts.
	Size int64
	// Records stops it after this many key-bucket records. 0: only Size.
	Records  int
	PageSize int    // bbolt page size [4096]
	Seed     uint64 // [1]
	// Batch is the number of key-bucket puts per write transaction [10000].
	Batch int
	// Value sizes of the Kubernetes object in each KeyValue: uniform in
	// [ValueMin, ValueMax] [200, 3072], except 1 in BigEvery [100] that is
	// uniform in [BigMin, BigMax] [10 KiB, 30 KiB].
	ValueMin, ValueMax int
	BigEvery           int
	BigMin, BigMax     int
	// CompactEvery runs an etcd-style compaction every so many
	// transactions [5]; negative: never.
	CompactEvery int
	// Nested adds a non-etcd bucket holding nested buckets (one inline, one
	// with its own pages): etcd never nests buckets, bbolt does.
	Nested bool
	// FreelistSync writes a freelist page (bbolt's default); etcd never
	// does (NoFreelistSync).
	FreelistSync bool
	// Keep the file's tail as bbolt grew it (zeros past the high-water mark).
	// When false, the file is cut at the high-water mark, which keeps fuzz
	// seeds small.
	KeepTail bool
}

func (c *Config) defaults() {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.PageSize, 4096)
	def(&c.Batch, 10000)
	def(&c.ValueMin, 200)
	def(&c.ValueMax, 3072)
	def(&c.BigEvery, 100)
	def(&c.BigMin, 10<<10)
	def(&c.BigMax, 30<<10)
	def(&c.CompactEvery, 5)
	if c.Seed == 0 {
		c.Seed = 1
	}
}

// Stats says what was written.
type Stats struct {
	Records     int   // key-bucket records put
	Tombstones  int   // of which tombstones
	Compacted   int   // records deleted by compactions
	Revision    int64 // last main revision
	Txns        int   // bbolt write transactions
	HWMBytes    int64 // high-water mark x page size
	FileBytes   int64
	CompactRev  int64 // finishedCompactRev, 0 if never compacted
	ValueBytes  int64 // total KeyValue bytes put
	LiveObjects int   // keys whose latest record is not a tombstone
}

type object struct {
	key     string
	create  int64
	version int64
	lease   int64
	revs    []revKey // every record of this key still in the db, oldest first
	deleted bool
}

type revKey struct {
	main, sub int64
	tomb      bool
}

// RevisionKey encodes an etcd key-bucket key (17 bytes, 18 with the
// tombstone mark).
func RevisionKey(main, sub int64, tomb bool) []byte {
	b := make([]byte, 17, 18)
	binary.BigEndian.PutUint64(b, uint64(main))
	b[8] = '_'
	binary.BigEndian.PutUint64(b[9:], uint64(sub))
	if tomb {
		b = append(b, 't')
	}
	return b
}

func u64be(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

var resources = []string{"pods", "events", "configmaps", "secrets", "services/specs", "services/endpoints",
	"deployments", "replicasets", "leases", "serviceaccounts", "endpointslices", "nodes"}

// Generate writes a new db at path, which must not exist.
func Generate(path string, cfg Config) (Stats, error) {
	cfg.defaults()
	var st Stats
	if _, err := os.Stat(path); err == nil {
		return st, fmt.Errorf("%s exists", path)
	}
	db, err := bolt.Open(path, 0600, &bolt.Options{
		PageSize: cfg.PageSize, NoFreelistSync: !cfg.FreelistSync, FreelistType: bolt.FreelistMapType,
		NoSync: true, // fast; the bytes are the same. Not NoGrowSync: the file grows in chunks past the high-water mark, as etcd's does.

	})
	if err != nil {
		return st, err
	}
	g := &gen{cfg: cfg, rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), rev: 1, byKey: map[string]*object{}}
	if err := db.Update(g.setup); err != nil {
		db.Close()
		return st, err
	}
	g.st.Txns++
	for {
		if err := db.Update(g.batch); err != nil {
			db.Close()
			return st, err
		}
		g.st.Txns++
		if cfg.CompactEvery > 0 && g.st.Txns%cfg.CompactEvery == 0 {
			if err := db.Update(g.compact); err != nil {
				db.Close()
				return st, err
			}
			g.st.Txns++
		}
		var hwm int64
		_ = db.View(func(tx *bolt.Tx) error { hwm = tx.Size(); return nil })
		g.st.HWMBytes = hwm
		if (cfg.Size > 0 && hwm >= cfg.Size) || (cfg.Records > 0 && g.st.Records >= cfg.Records) {
			break
		}
		if cfg.Size == 0 && cfg.Records == 0 {
			break
		}
	}
	// A last small transaction that rewrites meta, as every etcd apply does.
	if err := db.Update(g.updateMeta); err != nil {
		db.Close()
		return st, err
	}
	g.st.Txns++
	_ = db.View(func(tx *bolt.Tx) error { g.st.HWMBytes = tx.Size(); return nil })
	if err := db.Sync(); err != nil {
		db.Close()
		return st, err
	}
	if err := db.Close(); err != nil {
		return st, err
	}
	if !cfg.KeepTail {
		if err := os.Truncate(path, g.st.HWMBytes); err != nil {
			return st, err
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return st, err
	}
	g.st.FileBytes = fi.Size()
	g.st.Revision = g.rev
	for _, o := range g.objs {
		if !o.deleted {
			g.st.LiveObjects++
		}
	}
	return g.st, nil
}

type gen struct {
	cfg        Config
	rnd        *rand.Rand
	rev        int64 // last main revision written
	objs       []*object
	byKey      map[string]*object
	leases     []int64
	st         Stats
	ci         uint64 // consistent_index
	compactRev int64
	valBuf     []byte
}

const memberID = 0x8e9e05c52164694d

// MemberID is the one member the generated db's members bucket and
// confState name (etcd's id for its default name and peer URL).
const MemberID uint64 = memberID

func (g *gen) setup(tx *bolt.Tx) error {
	for _, name := range Buckets {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return err
		}
	}
	id := fmt.Sprintf("%x", uint64(memberID))
	m, _ := json.Marshal(map[string]any{
		"id": uint64(memberID), "peerURLs": []string{"https://10.0.0.11:2380"}, "name": "master-0",
		"clientURLs": []string{"https://10.0.0.11:2379"}, "isLearner": false,
	})
	if err := tx.Bucket([]byte("members")).Put([]byte(id), m); err != nil {
		return err
	}
	if err := tx.Bucket([]byte("cluster")).Put([]byte("clusterVersion"), []byte("3.7.0")); err != nil {
		return err
	}
	auth := tx.Bucket([]byte("auth"))
	if err := auth.Put([]byte("authEnabled"), []byte{0}); err != nil {
		return err
	}
	if err := auth.Put([]byte("authRevision"), u64be(1)); err != nil {
		return err
	}
	for i := 0; i < 20; i++ {
		id := int64(0x694d7a3b00000000) + int64(i)
		g.leases = append(g.leases, id)
		v, err := proto.Marshal(&leasepb.Lease{ID: id, TTL: 3600})
		if err != nil {
			return err
		}
		if err := tx.Bucket([]byte("lease")).Put(u64be(uint64(id)), v); err != nil {
			return err
		}
	}
	if g.cfg.Nested {
		nb, err := tx.CreateBucketIfNotExists([]byte("nested"))
		if err != nil {
			return err
		}
		small, err := nb.CreateBucketIfNotExists([]byte("inline"))
		if err != nil {
			return err
		}
		if err := small.Put([]byte("a"), []byte("1")); err != nil {
			return err
		}
		big, err := nb.CreateBucketIfNotExists([]byte("paged"))
		if err != nil {
			return err
		}
		for i := 0; i < 3*g.cfg.PageSize/64; i++ {
			if err := big.Put(fmt.Appendf(nil, "k%05d", i), make([]byte, 40)); err != nil {
				return err
			}
		}
	}
	return g.updateMeta(tx)
}

func (g *gen) updateMeta(tx *bolt.Tx) error {
	mb := tx.Bucket([]byte("meta"))
	g.ci += uint64(1 + g.rnd.IntN(50))
	if err := mb.Put([]byte("consistent_index"), u64be(g.ci)); err != nil {
		return err
	}
	if err := mb.Put([]byte("term"), u64be(3)); err != nil {
		return err
	}
	cs := fmt.Sprintf(`{"voters":[%d],"auto_leave":false}`, uint64(memberID))
	if err := mb.Put([]byte("confState"), []byte(cs)); err != nil {
		return err
	}
	if err := mb.Put([]byte("storageVersion"), []byte("3.7.0")); err != nil {
		return err
	}
	if g.compactRev > 0 {
		rk := RevisionKey(g.compactRev, 0, false)
		if err := mb.Put([]byte("scheduledCompactRev"), rk); err != nil {
			return err
		}
		if err := mb.Put([]byte("finishedCompactRev"), rk); err != nil {
			return err
		}
	}
	return nil
}

func (g *gen) newName() string {
	r := resources[g.rnd.IntN(len(resources))]
	ns := "default"
	switch n := g.rnd.IntN(10); {
	case n < 3:
		ns = "kube-system"
	case n < 8:
		ns = fmt.Sprintf("team-%02d", g.rnd.IntN(40))
	}
	return fmt.Sprintf("/registry/%s/%s/%s-%08x", r, ns, r[:min(len(r), 6)], g.rnd.Uint32())
}

// value returns a Kubernetes-protobuf-looking object body.
func (g *gen) value() []byte {
	n := g.cfg.ValueMin + g.rnd.IntN(g.cfg.ValueMax-g.cfg.ValueMin+1)
	if g.cfg.BigEvery > 0 && g.rnd.IntN(g.cfg.BigEvery) == 0 {
		n = g.cfg.BigMin + g.rnd.IntN(g.cfg.BigMax-g.cfg.BigMin+1)
	}
	if cap(g.valBuf) < n {
		g.valBuf = make([]byte, n)
	}
	v := g.valBuf[:n]
	copy(v, "k8s\x00")
	for i := 4; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], g.rnd.Uint64())
		copy(v[i:], w[:])
	}
	return v
}

// batch writes one write transaction's worth of revisions.
func (g *gen) batch(tx *bolt.Tx) error {
	kb := tx.Bucket([]byte("key"))
	kb.FillPercent = 0.9
	puts := 0
	for puts < g.cfg.Batch && (g.cfg.Records == 0 || g.st.Records < g.cfg.Records) {
		g.rev++
		ops := 1
		if g.rnd.IntN(10) == 0 {
			ops = 2 + g.rnd.IntN(2) // a txn: sub revisions 0..2
		}
		for sub := int64(0); sub < int64(ops); sub++ {
			if err := g.op(kb, sub); err != nil {
				return err
			}
			puts++
		}
	}
	return g.updateMeta(tx)
}

// op writes one record at (g.rev, sub): a create, an update or a delete.
func (g *gen) op(kb *bolt.Bucket, sub int64) error {
	var o *object
	p := g.rnd.IntN(100)
	switch {
	case len(g.objs) < 50 || p < 35:
		name := g.newName()
		if prev := g.byKey[name]; prev != nil && !prev.deleted {
			o = prev
			o.version++
		} else {
			if prev != nil {
				o = prev
			} else {
				o = &object{key: name}
				g.byKey[name] = o
				g.objs = append(g.objs, o)
			}
			o.deleted, o.create, o.version, o.lease = false, g.rev, 1, 0
			if g.rnd.IntN(8) == 0 {
				o.lease = g.leases[g.rnd.IntN(len(g.leases))]
			}
		}
	default:
		o = g.objs[g.rnd.IntN(len(g.objs))]
		if o.deleted {
			o.deleted, o.create, o.version = false, g.rev, 1
		} else if p >= 92 {
			// Delete: a tombstone holding only the key.
			rk := revKey{main: g.rev, sub: sub, tomb: true}
			v, err := proto.Marshal(&mvccpb.KeyValue{Key: []byte(o.key)})
			if err != nil {
				return err
			}
			if err := kb.Put(RevisionKey(rk.main, rk.sub, true), v); err != nil {
				return err
			}
			o.revs = append(o.revs, rk)
			o.deleted = true
			g.st.Records++
			g.st.Tombstones++
			g.st.ValueBytes += int64(len(v))
			return nil
		} else {
			o.version++
		}
	}
	kv := &mvccpb.KeyValue{Key: []byte(o.key), CreateRevision: o.create, ModRevision: g.rev, Version: o.version,
		Value: g.value(), Lease: o.lease}
	v, err := proto.Marshal(kv)
	if err != nil {
		return err
	}
	if err := kb.Put(RevisionKey(g.rev, sub, false), v); err != nil {
		return err
	}
	o.revs = append(o.revs, revKey{main: g.rev, sub: sub})
	g.st.Records++
	g.st.ValueBytes += int64(len(v))
	return nil
}

// compact does what etcd's compaction does at a revision a third of the
// way back: for each key, delete every record below it except the latest,
// and that one too if it is a tombstone. The deleted records leave free
// pages behind.
func (g *gen) compact(tx *bolt.Tx) error {
	at := g.compactRev + (g.rev-g.compactRev)/3
	if at <= g.compactRev {
		return nil
	}
	kb := tx.Bucket([]byte("key"))
	var del []revKey
	for _, o := range g.objs {
		// Records at or below the compaction revision.
		n := sort.Search(len(o.revs), func(i int) bool { return o.revs[i].main > at })
		if n == 0 {
			continue
		}
		keep := n - 1
		if o.revs[keep].tomb {
			keep = n
		}
		del = append(del, o.revs[:keep]...)
		o.revs = o.revs[keep:]
	}
	sort.Slice(del, func(i, j int) bool {
		if del[i].main != del[j].main {
			return del[i].main < del[j].main
		}
		return del[i].sub < del[j].sub
	})
	for _, r := range del {
		if err := kb.Delete(RevisionKey(r.main, r.sub, r.tomb)); err != nil {
			return err
		}
	}
	g.st.Compacted += len(del)
	g.compactRev = at
	g.st.CompactRev = at
	return g.updateMeta(tx)
}
