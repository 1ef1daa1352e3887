package pagewalk

import (
	"bytes"
	"testing"
)

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
