package pagewalk

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"go.etcd.io/etcd/server/v3/storage/mvcc"
)

// ParseRevision decodes exactly what etcd's mvcc decoders decode, for every
// key of revision shape (and refuses what would make them panic).
func TestParseRevisionMatchesMVCC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		r := Revision{Main: rng.Int64N(1 << 40), Sub: rng.Int64N(1 << 20), Tombstone: rng.IntN(2) == 0}
		if i%100 == 0 {
			r.Main, r.Sub = rng.Int64(), rng.Int64() // the full range
		}
		k := RevisionKey(r)
		got, ok := ParseRevision(k)
		bk := mvcc.BytesToBucketKey(k)
		if !ok || got.Main != bk.Main || got.Sub != bk.Sub || got.Tombstone != mvcc.IsTombstone(k) || got != r {
			t.Fatalf("%x: got %+v ok %v, mvcc %+v tombstone %v", k, got, ok, bk, mvcc.IsTombstone(k))
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 16), append(make([]byte, 17), 'x'), []byte("0000000000000000000"),
		{0x80, 0, 0, 0, 0, 0, 0, 1, '_', 0, 0, 0, 0, 0, 0, 0, 1}} {
		if _, ok := ParseRevision(bad); ok {
			t.Errorf("%x accepted", bad)
		}
	}
}

// CompareRevisions orders revisions exactly as their encoded keys' bytes
// (salvage and history sort and search by it instead of by key copies).
func TestCompareRevisionsIsKeyOrder(t *testing.T) {
	var revs []Revision
	for _, m := range []int64{0, 1, 2, 255, 256, 1 << 40, 1<<63 - 1} {
		for _, s := range []int64{0, 1, 255, 256, 1<<63 - 1} {
			revs = append(revs, Revision{Main: m, Sub: s}, Revision{Main: m, Sub: s, Tombstone: true})
		}
	}
	for _, a := range revs {
		for _, b := range revs {
			want := bytes.Compare(RevisionKey(a), RevisionKey(b))
			if got := CompareRevisions(a, b); got != want {
				t.Fatalf("CompareRevisions(%s, %s) = %d, keys compare %d", a, b, got, want)
			}
		}
	}
}
