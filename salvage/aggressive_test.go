package salvage

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/pagewalk"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// compactedDB writes an etcd-shaped db in which key "/gone" was put at
// revision 2 and deleted at 3, and a compaction at 10 removed both records,
// leaving an older copy of their leaf on a free page; then it damages the
// live leaf that covered them, so salvage carves that range. Returns the db
// and the damaged page.
func compactedDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		t.Fatal(err)
	}
	put := func(kb *bolt.Bucket, rev pagewalk.Revision, key string, ver int64) {
		kv := &mvccpb.KeyValue{Key: []byte(key)}
		if !rev.Tombstone {
			kv = &mvccpb.KeyValue{Key: []byte(key), CreateRevision: rev.Main, ModRevision: rev.Main, Version: ver, Value: make([]byte, 400)}
		}
		b, _ := proto.Marshal(kv)
		if err := kb.Put(pagewalk.RevisionKey(rev), b); err != nil {
			t.Fatal(err)
		}
	}
	meta := func(tx *bolt.Tx, compact int64) {
		mb, _ := tx.CreateBucketIfNotExists([]byte("meta"))
		ci := make([]byte, 8)
		binary.BigEndian.PutUint64(ci, 100)
		mb.Put([]byte("consistent_index"), ci)
		if compact > 0 {
			mb.Put([]byte("finishedCompactRev"), pagewalk.RevisionKey(pagewalk.Revision{Main: compact}))
		}
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.Update(func(tx *bolt.Tx) error {
		kb, _ := tx.CreateBucketIfNotExists([]byte("key"))
		put(kb, pagewalk.Revision{Main: 2}, "/gone", 1)
		put(kb, pagewalk.Revision{Main: 3, Tombstone: true}, "/gone", 0)
		for r := int64(4); r <= 12; r++ {
			put(kb, pagewalk.Revision{Main: r}, fmt.Sprintf("/k%d", r), 1)
		}
		meta(tx, 0)
		return nil
	}))
	// Compaction at 10: the put and the tombstone of /gone go; the leaf is
	// rewritten elsewhere and its old copy stays on a free page.
	must(db.Update(func(tx *bolt.Tx) error {
		kb := tx.Bucket([]byte("key"))
		kb.Delete(pagewalk.RevisionKey(pagewalk.Revision{Main: 2}))
		kb.Delete(pagewalk.RevisionKey(pagewalk.Revision{Main: 3, Tombstone: true}))
		meta(tx, 10)
		return nil
	}))
	var leaf uint64
	must(db.View(func(tx *bolt.Tx) error {
		leaf = uint64(tx.Bucket([]byte("key")).Root())
		return nil
	}))
	db.Close()
	// Damage the live leaf's first element so the range below its first
	// good key is lost and carved.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, 16)
	rand.New(rand.NewSource(1)).Read(junk)
	ps := int64(os.Getpagesize())
	if _, err := f.WriteAt(junk, int64(leaf)*ps+pagewalk.PageHeaderSize); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSalvageConservativeAndAggressive(t *testing.T) {
	in := compactedDB(t)
	for _, aggressive := range []bool{false, true} {
		out := filepath.Join(t.TempDir(), "out.db")
		rep, err := Run(in, out, Options{Aggressive: aggressive})
		if err != nil {
			t.Fatal(err)
		}
		s := readSalvaged(t, out)
		_, gone := s.latest["/gone"]
		if rep.Records.Uncertain+rep.Records.Compacted == 0 {
			t.Fatalf("aggressive=%v: the compacted copy was not judged: %+v", aggressive, rep.Records)
		}
		if !aggressive && gone {
			t.Fatalf("conservative salvage brought /gone back: %+v", rep.Records)
		}
		if aggressive {
			for _, u := range rep.Uncertain {
				if !u.Kept {
					t.Fatalf("aggressive left %+v out", u)
				}
			}
		}
		if rep.Complete {
			t.Fatalf("aggressive=%v: complete despite damage", aggressive)
		}
		t.Logf("aggressive=%v: records %+v uncertain %+v gone back: %v", aggressive, rep.Records, rep.Uncertain, gone)
	}
}
