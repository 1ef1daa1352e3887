package pagewalk

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// buildDB writes a bbolt file shaped like etcd's: a key bucket of revision
// keys (some values past one page), a small inline meta bucket, a nested
// bucket, and an empty one.
func buildDB(t testing.TB, records int, noFreelistSync bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db")
	db, err := bolt.Open(path, 0600, &bolt.Options{NoFreelistSync: noFreelistSync, FreelistType: bolt.FreelistMapType})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rnd := rand.New(rand.NewSource(1))
	for start := 0; start < records; start += 500 {
		err = db.Update(func(tx *bolt.Tx) error {
			kb, err := tx.CreateBucketIfNotExists([]byte("key"))
			if err != nil {
				return err
			}
			for i := start; i < min(records, start+500); i++ {
				size := 100 + rnd.Intn(400)
				if i%97 == 0 {
					size = 9000
				}
				val := make([]byte, size)
				rnd.Read(val)
				v, err := proto.Marshal(&mvccpb.KeyValue{Key: []byte(fmt.Sprintf("/registry/pods/default/p%d", i%700)),
					CreateRevision: int64(i + 2), ModRevision: int64(i + 2), Version: 1, Value: val})
				if err != nil {
					return err
				}
				if err := kb.Put(RevisionKey(Revision{Main: int64(i + 2)}), v); err != nil {
					return err
				}
			}
			mb, err := tx.CreateBucketIfNotExists([]byte("meta"))
			if err != nil {
				return err
			}
			ci := make([]byte, 8)
			binary.BigEndian.PutUint64(ci, uint64(start+1000))
			if err := mb.Put([]byte("consistent_index"), ci); err != nil {
				return err
			}
			nb, err := tx.CreateBucketIfNotExists([]byte("nested"))
			if err != nil {
				return err
			}
			inner, err := nb.CreateBucketIfNotExists([]byte("inner"))
			if err != nil {
				return err
			}
			for i := 0; i < 300; i++ {
				if err := inner.Put([]byte(fmt.Sprintf("k%05d", i)), make([]byte, 50)); err != nil {
					return err
				}
			}
			_, err = tx.CreateBucketIfNotExists([]byte("empty"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func scanPath(t testing.TB, path string, opts Options) *Result {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r, err := f.Scan(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pageSizeOf reads the page size from meta 0 of a healthy file.
func pageSizeOf(t testing.TB, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(binary.LittleEndian.Uint32(b[PageHeaderSize+8:]))
}

func patch(t testing.TB, path string, off int64, data []byte) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}
