package repair

import (
	"strings"
	"testing"
	"time"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/pagewalk"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// craft puts into the key and meta buckets of the healthy db at path what
// etcd's store restore panics on: a nested bucket with a 5-byte name
// ("invalid revision length: 5"), a 5-byte record key, a revision whose
// value is no KeyValue, a tombstone at the revision of an existing put
// ('put' with an unexpected smaller revision) and a finishedCompactRev of
// 5 bytes. It returns the revision whose put got a twin tombstone.
func craft(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var twin int64
	err = db.Update(func(tx *bolt.Tx) error {
		kb := tx.Bucket([]byte("key"))
		nb, err := kb.CreateBucket([]byte("xxxxx"))
		if err != nil {
			return err
		}
		if err := nb.Put([]byte("k"), []byte("v")); err != nil {
			return err
		}
		if err := kb.Put([]byte("abcde"), []byte("v")); err != nil {
			return err
		}
		// The middle of the history: a put with a sub revision 0 only.
		c := kb.Cursor()
		k, _ := c.Last()
		last, _ := pagewalk.ParseRevision(k)
		for k, v := c.Seek(pagewalk.RevisionKey(pagewalk.Revision{Main: last.Main / 2})); k != nil; k, v = c.Next() {
			r, _ := pagewalk.ParseRevision(k)
			var kv mvccpb.KeyValue
			if r.Tombstone || r.Sub != 0 || proto.Unmarshal(v, &kv) != nil {
				continue
			}
			if n, _ := c.Next(); n != nil {
				if nr, _ := pagewalk.ParseRevision(n); nr.Main == r.Main {
					continue
				}
			}
			tomb, _ := proto.Marshal(&mvccpb.KeyValue{Key: kv.Key})
			twin = r.Main
			if err := kb.Put(pagewalk.RevisionKey(pagewalk.Revision{Main: r.Main, Tombstone: true}), tomb); err != nil {
				return err
			}
			if err := kb.Put(pagewalk.RevisionKey(pagewalk.Revision{Main: r.Main, Sub: 1}), []byte{0xff, 0xff, 0xff}); err != nil {
				return err
			}
			break
		}
		return tx.Bucket([]byte("meta")).Put([]byte("finishedCompactRev"), []byte("short"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if twin == 0 {
		t.Fatal("no put to twin")
	}
	return twin
}

// sanitizeDB takes out every crafted record, and nothing else.
func TestSanitizeDB(t *testing.T) {
	dir, _ := fixtures.Cached(t, "purged", fixtures.PurgedWALWorkload())
	db := fixtures.DBPath(dir)
	before := countKeyRecords(t, db)
	twin := craft(t, db)
	bad, err := sanitizeDB(db)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"nested bucket", "abcde", "not an mvccpb.KeyValue", "share revision", "share revision", "finishedCompactRev"}
	var got []string
	for _, b := range bad {
		got = append(got, b.Bucket+" "+string(b.Key)+" "+b.Why)
	}
	all := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("%q not taken out:\n%s", w, all)
		}
	}
	if len(bad) != len(want) {
		t.Errorf("took out %d records, want %d:\n%s", len(bad), len(want), all)
	}
	// The put and its twin tombstone both go: which one etcd wrote is
	// unknown.
	if after := countKeyRecords(t, db); after != before-1 {
		t.Errorf("%d key records left of %d, want all but the put at %d", after, before, twin)
	}
	// A second pass finds nothing: what is left is safe.
	if bad, err := sanitizeDB(db); err != nil || len(bad) != 0 {
		t.Errorf("second pass: %v %v", bad, err)
	}
	// Its commits keep bbolt's freelist page, so that etcd's open in the
	// member dir write does not walk the whole tree to find free pages.
	if !hasFreelistPage(t, db) {
		t.Error("sanitizeDB's commit dropped the freelist page")
	}
}

// hasFreelistPage says whether the db's newest meta page points at a
// freelist page (NoFreelistSync commits leave none).
func hasFreelistPage(t *testing.T, path string) bool {
	t.Helper()
	f, err := pagewalk.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := f.Metas[0].Meta
	if f.Metas[1].Meta.Txid > m.Txid {
		m = f.Metas[1].Meta
	}
	return m.Freelist != ^uint64(0)
}

func countKeyRecords(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	_ = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("key")).ForEach(func(_, _ []byte) error { n++; return nil })
	})
	return n
}

// Records etcd's restore panics on, in the db of a data dir whose WAL is
// purged (so the salvaged store is what etcd restores): repair takes them
// out, reports the revision whose record it had to drop, and etcd starts.
// Before the check, this run panicked in etcd's code.
func TestRepairInvalidRecordsNeverReachEtcd(t *testing.T) {
	dir, truth := fixtures.Cached(t, "purged", fixtures.PurgedWALWorkload())
	twin := craft(t, fixtures.DBPath(dir))
	rep := run(t, dir)
	if rep.Complete {
		t.Error("complete with records left out")
	}
	if !inLost(rep, twin) {
		t.Errorf("revision %d (a put with a twin tombstone) not reported lost: %v", twin, rep.LostRevisions)
	}
	judgeKeys(t, truth, rep, false)
}
