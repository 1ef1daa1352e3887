package pagewalk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// censusView is a census's tables with every index and key reference
// resolved: two censuses of one file agree when their views are equal.
type censusView struct {
	Sums     []pageSum
	Branches [][]string
	Leaves   []string
	Problems map[uint64][]localProblem
	ArenaCut bool
}

func viewOf(c *census) censusView {
	v := censusView{Sums: c.sums, Problems: c.problems, ArenaCut: c.arenaCut}
	for _, b := range c.branches {
		var es []string
		for _, e := range c.belems[b.first : b.first+b.n] {
			msg := ""
			if fe := c.errOf(&e); fe != nil {
				msg = fe.Error()
			}
			es = append(es, fmt.Sprintf("%d %x %q %v", e.child, c.key(e.key), msg, e.zero))
		}
		v.Branches = append(v.Branches, es)
	}
	for _, l := range c.leaves {
		s := fmt.Sprintf("%d %x %x %v |", l.records, c.key(l.first), c.key(l.last), l.hasKeys)
		for _, b := range c.lbuckets[l.bfirst : l.bfirst+l.bn] {
			s += fmt.Sprintf(" %d %x %+v %v %d %x %x %v", b.elem, c.key(b.name), b.hdr, b.inline, b.records, c.key(b.first), c.key(b.last), b.hasFirst)
		}
		v.Leaves = append(v.Leaves, s)
	}
	return v
}

// TestCensusHalvesAgree: the census reads the two halves of a file on
// two goroutines and merges their tables (census.go). On healthy and
// damaged files, read through the mapping and with pread, the merged
// tables and the report must be exactly what one census in file order
// gives.
func TestCensusHalvesAgree(t *testing.T) {
	orig, err := os.ReadFile(buildDB(t, 3000, false))
	if err != nil {
		t.Fatal(err)
	}
	defer func(v uint64) { minCensusHalf = v }(minCensusHalf)
	rnd := rand.New(rand.NewSource(7))
	dir := t.TempDir()
	for i := 0; i < 40; i++ {
		b := bytes.Clone(orig)
		if i > 0 {
			for j := 0; j < 1+rnd.Intn(40); j++ {
				b[rnd.Intn(len(b))] ^= 1 << rnd.Intn(8)
			}
		}
		if i%5 == 4 {
			b = b[:rnd.Intn(len(b))]
		}
		if i%7 == 3 {
			// A zeroed stretch: whole pages of zeros in the middle.
			at := rnd.Intn(len(b))
			clear(b[at:min(len(b), at+rnd.Intn(64<<10))])
		}
		path := filepath.Join(dir, fmt.Sprintf("db%d", i))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, mapped := range []bool{true, false} {
			scan := func(half uint64) (censusView, string) {
				minCensusHalf = half
				var f *File
				var err error
				if mapped {
					f, err = Open(path)
				} else {
					f, err = NewFile(bytes.NewReader(b), int64(len(b)))
				}
				if err != nil {
					return censusView{}, "no file: " + err.Error()
				}
				defer f.Close()
				r, err := f.Scan(Options{Deep: true})
				if err != nil {
					t.Fatalf("variant %d: %v", i, err)
				}
				rep, _ := json.Marshal(r.Report)
				return viewOf(r.c), string(rep)
			}
			oneV, oneR := scan(1 << 62)
			splitV, splitR := scan(3)
			if oneR != splitR {
				t.Fatalf("variant %d (mapped %v): the report differs when the census is split", i, mapped)
			}
			if !reflect.DeepEqual(oneV, splitV) {
				t.Fatalf("variant %d (mapped %v): the census tables differ when the census is split", i, mapped)
			}
		}
	}
}

// TestCensusFileCutWhileMapped: a file cut shorter after it was opened
// faults when the census reads its mapping past the new end (SIGBUS).
// The census must not crash: it reads the file again with pread, and the
// report says the file changed.
func TestCensusFileCutWhileMapped(t *testing.T) {
	path := buildDB(t, 3000, false)
	for _, half := range []uint64{1 << 62, 3} {
		defer func(v uint64) { minCensusHalf = v }(minCensusHalf)
		minCensusHalf = half
		cut := filepath.Join(t.TempDir(), "db")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cut, b, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := Open(cut)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(cut, int64(len(b)/3)); err != nil {
			t.Fatal(err)
		}
		c := &census{f: f}
		if err := c.run(nil); err != errMappingFault {
			t.Fatalf("census over a mapping cut short: %v, want errMappingFault", err)
		}
		r, err := f.Scan(Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(findingsOf(r, KindFileChanged)) == 0 {
			t.Fatalf("no %s finding for a file cut while it was read", KindFileChanged)
		}
		f.Close()
	}
}
