package memberdir

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/wal"
)

// The member dir TakeDB writes in place is the one etcdutl's Restore writes
// from a copy: the same files byte for byte (WAL, .snap), the same records
// in every bucket of the db; with and without a revision bump. It moves the
// db it was given and leaves nothing else behind.
func TestRestoreInPlaceIsRestore(t *testing.T) {
	dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	l, err := wal.Read(filepath.Join(dir, "member", "wal"))
	if err != nil {
		t.Fatal(err)
	}
	for _, bump := range []uint64{0, 1000} {
		t.Run(fmt.Sprintf("bump%d", bump), func(t *testing.T) {
			tmp := t.TempDir()
			var outs [2]string
			for i, take := range []bool{false, true} {
				db := filepath.Join(tmp, fmt.Sprintf("db%d", i))
				if err := fixtures.CopyFile(fixtures.DBPath(dir), db); err != nil {
					t.Fatal(err)
				}
				outs[i] = filepath.Join(tmp, fmt.Sprintf("out%d", i))
				if _, err := Write(db, outs[i], Config{WAL: l, RevisionBump: bump, MarkCompacted: bump > 0, TakeDB: take}); err != nil {
					t.Fatalf("TakeDB %v: %v", take, err)
				}
				if _, err := os.Stat(db); take != os.IsNotExist(err) {
					t.Errorf("TakeDB %v: the given db exists afterwards: %v", take, err == nil)
				}
			}
			want, got := treeFiles(t, outs[0]), treeFiles(t, outs[1])
			if len(want) != len(got) {
				t.Fatalf("files: Restore wrote %v, in place %v", keys(want), keys(got))
			}
			for name, w := range want {
				g, ok := got[name]
				switch {
				case !ok:
					t.Errorf("in place did not write %s", name)
				case filepath.Base(name) == "db":
					if d := dbDiff(t, filepath.Join(outs[0], name), filepath.Join(outs[1], name)); d != "" {
						t.Errorf("%s: %s", name, d)
					}
				case !bytes.Equal(w, g):
					t.Errorf("%s differs (%d bytes from Restore, %d in place)", name, len(w), len(g))
				}
			}
		})
	}
}

func treeFiles(t *testing.T, root string) map[string][]byte {
	out := map[string][]byte{}
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, err := os.ReadFile(p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// dbDiff compares every bucket's records of two bbolt files.
func dbDiff(t *testing.T, a, b string) string {
	read := func(p string) map[string]string {
		db, err := bolt.Open(p, 0o400, &bolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		m := map[string]string{}
		_ = db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
				return bk.ForEach(func(k, v []byte) error {
					m[string(name)+"/"+string(k)] = string(v)
					return nil
				})
			})
		})
		return m
	}
	x, y := read(a), read(b)
	if len(x) != len(y) {
		return fmt.Sprintf("%d records from Restore, %d in place", len(x), len(y))
	}
	for k, v := range x {
		if y[k] != v {
			return fmt.Sprintf("record %q differs", k)
		}
	}
	return ""
}
