package wal

import (
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// bucketLookup returns a lookup over a db's key bucket.
func bucketLookup(t testing.TB, path string) func([]byte) ([]byte, bool) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("key")).ForEach(func(k, v []byte) error {
			m[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	return func(k []byte) ([]byte, bool) { v, ok := m[string(k)]; return v, ok }
}

func TestReplayMatchesLiveEtcd(t *testing.T) {
	dir := t.TempDir()
	work := t.TempDir()
	le := startEtcd(t, dir, nil)
	le.workload(20)
	early := filepath.Join(work, "early.db")
	le.snapshot(early)
	le.workload(40)
	truth := le.all()
	le.stop()

	l, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Clean() {
		t.Fatalf("stops in a clean WAL: %v", l.Stops())
	}

	t.Run("from-snapshot", func(t *testing.T) {
		ci := consistentIndex(t, early)
		if ci == 0 {
			t.Fatal("early snapshot has no consistent_index")
		}
		db := filepath.Join(work, "from-snap.db")
		copyFile(t, early, db)
		res, err := Replay(db, l.ReplayEntries(ci, false), ReplayOptions{CommitIndex: l.CommitIndex()})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("replay: %+v", res)
		if res.ConsistentIndex != l.CommitIndex() {
			t.Errorf("consistent_index %d, want commit %d", res.ConsistentIndex, l.CommitIndex())
		}
		if len(res.Errors) != 0 {
			t.Errorf("errors: %v", res.Errors)
		}
		diffKVs(t, truth, latestKVs(t, db))
	})

	t.Run("from-empty", func(t *testing.T) {
		db := filepath.Join(work, "empty.db")
		res, err := Replay(db, l.ReplayEntries(0, false), ReplayOptions{CommitIndex: l.CommitIndex()})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("replay: applied %v skipped %v rejected %v rev %d->%d", res.Applied, res.Skipped, res.Rejected, res.RevisionBefore, res.Revision)
		diffKVs(t, truth, latestKVs(t, db))
		// Revision records are immutable and replay deterministic: every
		// record the live db still has must be byte-identical.
		cc, err := CompareRecords(db, res.RevisionBefore, bucketLookup(t, filepath.Join(dir, "member", "snap", "db")))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("cross-check: %+v", cc)
		if len(cc.Differ) != 0 || cc.Matched == 0 {
			t.Errorf("cross-check: %+v", cc)
		}
		// Same entries on the same state: same records.
		db2 := filepath.Join(work, "empty2.db")
		res2, err := Replay(db2, l.ReplayEntries(0, false), ReplayOptions{CommitIndex: l.CommitIndex()})
		if err != nil {
			t.Fatal(err)
		}
		cc2, err := CompareRecords(db2, res2.RevisionBefore, bucketLookup(t, db))
		if err != nil {
			t.Fatal(err)
		}
		if len(cc2.Differ) != 0 || cc2.OnlyReplayed != 0 || cc2.Matched != cc.Records {
			t.Errorf("replay not deterministic: %+v", cc2)
		}
	})
}
