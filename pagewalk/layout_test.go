package pagewalk

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// buildBuckets writes a bbolt file with the given top-level buckets, one
// record each, in two commits (so a freelist page lists the first commit's
// pages).
func buildBuckets(t *testing.T, names []string, noFreelistSync bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: noFreelistSync})
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, n := range names {
				b, err := tx.CreateBucketIfNotExists([]byte(n))
				if err != nil {
					return err
				}
				if err := b.Put([]byte("k"), []byte{byte(round)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLayout(t *testing.T) {
	for _, c := range []struct {
		buckets   []string
		kind, app string
	}{
		{[]string{"key", "meta", "lease"}, KindEtcdFile, "etcd"},
		{[]string{"meta", "members"}, KindEtcdFile, "etcd"}, // key bucket not reached: still etcd's names only
		{[]string{"v1"}, KindBboltFile, "containerd-metadata"},
		{[]string{"logs", "conf"}, KindBboltFile, "raft-boltdb"},
		{[]string{"data", "config"}, KindBboltFile, "vault-fsm"},
		{[]string{"endpoints", "settings", "users"}, KindBboltFile, "portainer"},
		{[]string{"endpoints", "settings"}, KindBboltFile, ""},
		{[]string{"organizationsv1", "bucketsv1"}, KindBboltFile, "influxdb2"},
		{[]string{"key", "things"}, KindBboltFile, ""},
	} {
		l := scanPath(t, buildBuckets(t, c.buckets, false), Options{}).Report.Layout
		if l.Kind != c.kind || l.Application != c.app || len(l.TopLevel) != len(c.buckets) {
			t.Errorf("%v: layout %+v, want %s %q", c.buckets, l, c.kind, c.app)
		}
	}
}

func TestFreelistProof(t *testing.T) {
	free, why := scanPath(t, buildBuckets(t, []string{"a", "b"}, false), Options{}).FreelistProof()
	if free == nil || len(free) == 0 || why != "" {
		t.Errorf("synced freelist: free %v why %q", free, why)
	}
	free, why = scanPath(t, buildBuckets(t, []string{"a", "b"}, true), Options{}).FreelistProof()
	if free != nil || why == "" {
		t.Errorf("NoFreelistSync: free %v why %q", free, why)
	}
}
