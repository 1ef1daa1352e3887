package salvage

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/pagewalk"
	bolt "go.etcd.io/bbolt"
)

// Every test of the package runs with the key bucket's read buffers
// poisoned when they are given back (pagewalk/lend.go), and with small
// transactions, so that buffers are given back many times even on small
// fixtures: one given back while its record is still queued for bbolt
// would write 0xA5 bytes, which the comparisons with the truth catch.
// TestLentBuffersPoisoned shows that they would.
func init() {
	poisonLentBuffers = true
	txBytes = 64 << 10
}

func TestLentBuffersPoisoned(t *testing.T) {
	dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	in := fixtures.DBPath(dir)
	want := keyBucketRecords(t, in)
	for _, slack := range []uint64{0, 1 << 40} {
		lentReturnSlack, queuePuts = pagewalk.Lease(slack), slack == 0
		out := filepath.Join(t.TempDir(), "new.db")
		_, err := Run(in, out, Options{})
		lentReturnSlack, queuePuts = 0, true
		if err != nil {
			t.Fatal(err)
		}
		got := keyBucketRecords(t, out)
		changed := 0
		for k, v := range want {
			if !bytes.Equal(got[k], v) {
				changed++
			}
		}
		t.Logf("buffers given back %d leases early: %d of %d records changed", slack, changed, len(want))
		if slack == 0 && changed != 0 {
			t.Fatalf("%d records changed with buffers given back after their commit", changed)
		}
		if slack != 0 && changed == 0 {
			t.Fatal("buffers given back before their records were written changed nothing: the poisoning does not work, and the other tests would miss a buffer given back early")
		}
	}
}

// keyBucketRecords reads a healthy db's key bucket with bbolt.
func keyBucketRecords(t *testing.T, path string) map[string][]byte {
	t.Helper()
	db, err := bolt.Open(path, 0400, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string][]byte{}
	if err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("key")).ForEach(func(k, v []byte) error {
			out[string(k)] = bytes.Clone(v)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
