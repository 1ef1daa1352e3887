package salvage

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	bolt "go.etcd.io/bbolt"
)

func TestOutputPageSize(t *testing.T) {
	for _, c := range []struct{ input, asked, want int }{
		{4096, 0, DefaultPageSize},
		{16384, 0, 16384},
		{65536, 0, 65536}, // never smaller than the input's
		{4096, 4096, 4096},
		{65536, 4096, 4096}, // asked for: the user's choice
		{1 << 20, 0, MaxPageSize},
	} {
		if got := OutputPageSize(c.input, c.asked); got != c.want {
			t.Errorf("OutputPageSize(%d, %d) = %d, want %d", c.input, c.asked, got, c.want)
		}
	}
	for _, n := range []int{0, 4096, 8192, 16384, 32768, 65536} {
		if err := ValidPageSize(n); err != nil {
			t.Errorf("ValidPageSize(%d): %v", n, err)
		}
	}
	for _, n := range []int{-4096, 1, 512, 2048, 6000, 131072} {
		if ValidPageSize(n) == nil {
			t.Errorf("ValidPageSize(%d) accepted", n)
		}
	}
}

func filePageSize(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0400, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return db.Info().PageSize
}

// TestSalvagePageSizes salvages one etcd db at every page size: each
// output has the page size asked for (16 KiB by default), says so in its
// report, and holds every record of the ground truth.
func TestSalvagePageSizes(t *testing.T) {
	dir, truth := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	var first salvaged
	for i, ps := range []int{0, 4096, 65536} {
		out := filepath.Join(t.TempDir(), "new.db")
		rep, err := Run(fixtures.DBPath(dir), out, Options{PageSize: ps})
		if err != nil {
			t.Fatal(err)
		}
		want := OutputPageSize(4096, ps)
		if got := filePageSize(t, out); got != want || rep.PageSize != want {
			t.Errorf("--page-size %d: the file has %d-byte pages, the report says %d; want %d", ps, got, rep.PageSize, want)
		}
		s := readSalvaged(t, out)
		judge(t, truth, rep, s, true)
		if i == 0 {
			first = s
			continue
		}
		if !maps.EqualFunc(first.records, s.records, bytes.Equal) {
			t.Errorf("--page-size %d: the records differ from the default page size's", ps)
		}
	}
}

// TestSalvageKeepsLargerPages: a bbolt file made with 64 KiB pages (as on
// a kernel with 64 KiB pages) is salvaged into 64 KiB pages, every record
// back.
func TestSalvageKeepsLargerPages(t *testing.T) {
	in := filepath.Join(t.TempDir(), "big-pages.db")
	db, err := bolt.Open(in, 0600, &bolt.Options{PageSize: 65536})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	err = db.Update(func(tx *bolt.Tx) error {
		for b := 0; b < 3; b++ {
			bk, err := tx.CreateBucket([]byte(fmt.Sprintf("bucket-%d", b)))
			if err != nil {
				return err
			}
			for i := 0; i < 2000; i++ {
				k, v := fmt.Sprintf("key-%05d", i), bytes.Repeat([]byte{byte(i)}, 100+i%700)
				if err := bk.Put([]byte(k), v); err != nil {
					return err
				}
				want[recID([]string{fmt.Sprintf("%x", fmt.Sprintf("bucket-%d", b))}, fmt.Sprintf("%x", k))] = fmt.Sprintf("%x", v)
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	rep, got := salvageGeneric(t, in)
	out := rep.Output
	if ps := filePageSize(t, out); ps != 65536 || rep.PageSize != 65536 {
		t.Errorf("a 64 KiB-page input came out with %d-byte pages (report %d)", ps, rep.PageSize)
	}
	if !maps.Equal(got.recs, want) || got.lostFound != 0 {
		t.Errorf("records: %d back of %d, %d in lost+found", len(got.recs), len(want), got.lostFound)
	}
}

// TestSalvageRefusesPageSize: the library refuses a page size it must not
// write before any work, as the CLI does, and writes nothing.
func TestSalvageRefusesPageSize(t *testing.T) {
	dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	for _, ps := range []int{1000, 2048, 1 << 17} {
		out := filepath.Join(t.TempDir(), "new.db")
		if _, err := Run(fixtures.DBPath(dir), out, Options{PageSize: ps}); err == nil {
			t.Errorf("page size %d accepted", ps)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("page size %d: %s written", ps, out)
		}
	}
}
