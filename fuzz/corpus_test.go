package fuzz

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/pagewalk"
)

// TestWriteCorpus regenerates the committed seed corpus under
// testdata/fuzz (a few small files per target) from the built seed dbs:
//
//	BOLTFIX_WRITE_CORPUS=1 go test ./fuzz -run TestWriteCorpus
//
// Crashers the fuzzer writes there are kept by hand, not by this test.
func TestWriteCorpus(t *testing.T) {
	if os.Getenv("BOLTFIX_WRITE_CORPUS") == "" {
		t.Skip("set BOLTFIX_WRITE_CORPUS=1 to rewrite the seed corpus")
	}
	dbs := map[string]seedDB{}
	for _, db := range builtSeeds(t) {
		dbs[db.name] = db
	}
	write := func(target, name string, b []byte) {
		t.Helper()
		sum := sha256.Sum256(b)
		file := fmt.Sprintf("seed-%s-%x", name, sum[:4])
		if err := writeCorpusFile(filepath.Join("testdata", "fuzz", target), file, b); err != nil {
			t.Fatal(err)
		}
	}
	small, fl := dbs["etcd-512"], dbs["etcd-1k-freelist"]
	write("FuzzScan", "etcd-512", small.data)
	for _, name := range []string{"branch-cycle", "half-zeroed-branch", "both-metas-zero"} {
		write("FuzzScan", "etcd-512-"+name, corruptions(small)[name])
	}
	write("FuzzMeta", "metas-512", small.data[:2*small.ps])
	torn := append([]byte(nil), small.data[:2*small.ps]...)
	clear(torn[16:80])
	write("FuzzMeta", "meta0-torn-512", torn)
	write("FuzzNode", "branch", pages(small, pagewalk.FlagBranch, 1)[0])
	root := small.data[0:0]
	for _, p := range pages(small, pagewalk.FlagLeaf, 1000) {
		if n := (&pagewalk.Node{Header: mustHeader(p), Data: p}); n.Count > 0 {
			if e, fe := n.Leaf(0); fe == nil && e.IsBucket() {
				root = p // the root bucket page: inline buckets
			}
		}
	}
	write("FuzzNode", "root-leaf", root)
	write("FuzzPageHeader", "meta", small.data[:small.ps])
	for i, v := range bucketValues(small) {
		if i < 2 || (len(v) == 16 && i < 12) {
			write("FuzzBucketValue", fmt.Sprintf("value%d", i), v)
		}
	}
	write("FuzzFreelist", "freelist", pages(fl, pagewalk.FlagFreelist, 1)[0])
	big := make([]byte, 64)
	binary.LittleEndian.PutUint16(big[8:], pagewalk.FlagFreelist)
	binary.LittleEndian.PutUint16(big[10:], 0xFFFF)
	binary.LittleEndian.PutUint64(big[16:], 1<<60)
	write("FuzzFreelist", "huge-count", big)
}
