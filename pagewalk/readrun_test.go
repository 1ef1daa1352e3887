package pagewalk

import (
	"bytes"
	"testing"
)

// ForEachOwned reads leaves laid out back to back in one call (readRun);
// what it yields is exactly what the page-by-page ForEach yields, and the
// coalesced path is really taken on a db bbolt wrote in key order.
func TestForEachOwnedCoalescedReadsAgree(t *testing.T) {
	path := buildDB(t, 5000, false)
	res := scanPath(t, path, Options{})
	runs := 0
	for _, b := range res.Buckets {
		if b.Inline || len(b.Leaves) < 2 {
			continue
		}
		if _, _, used := res.readRun(b.Leaves, nil); used >= 2 {
			runs++
		}
		var want, got [][2][]byte
		if err := res.ForEach(b, func(k, v []byte) error {
			want = append(want, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := res.ForEachOwned(b, func(k, v []byte) error {
			got = append(got, [2][]byte{k, v})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("bucket %q: %d records owned, %d page by page", b.Path, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i][0], want[i][0]) || !bytes.Equal(got[i][1], want[i][1]) {
				t.Fatalf("bucket %q: record %d differs", b.Path, i)
			}
		}
	}
	if runs == 0 {
		t.Fatal("no bucket's leaves were read as a run: the coalesced path went untested")
	}
}
