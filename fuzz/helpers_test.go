// Package fuzz holds the fuzz targets of boltfix's parsers. Each target runs
// its seeds (built bbolt dbs, single real pages, committed corpus files) as
// a regression test under plain `go test ./...`; `.ci/run` fuzzes each one
// for a few seconds.
//
// Every target caps its input (maxInput), fails on a call that allocates
// more than the input justifies (allocBudget), and panics out of a call that
// runs longer than hangAfter so that the fuzzer keeps the input.
package fuzz

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/boltfix/boltfix/bench/etcdgen"
	"github.com/boltfix/boltfix/pagewalk"
)

// maxInput bounds what a target looks at: the fuzzer is not testing the
// allocator (restic's rule).
const maxInput = 1 << 20

// hangAfter is how long one call may run before the watchdog kills the
// worker. A 1 MiB scan takes milliseconds.
const hangAfter = 20 * time.Second

// allocBudget is what one call on n input bytes may allocate in total.
func allocBudget(n int) uint64 { return 64*uint64(n) + 1<<20 }

// measureAlloc runs fn and returns the bytes it allocated (process-wide, so
// the fuzzer's own allocations while fn runs count too: the slack in
// allocBudget covers them).
func measureAlloc(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// checkAlloc fails t when fn allocates more than budget.
func checkAlloc(t *testing.T, in []byte, budget uint64, what string, fn func()) {
	t.Helper()
	if got := measureAlloc(fn); got > budget {
		t.Fatalf("%s allocated %d bytes (%.1f per input byte) on a %d-byte input; budget %d\ninput head: %x",
			what, got, float64(got)/float64(max(1, len(in))), len(in), budget, in[:min(len(in), 64)])
	}
}

// watchdog panics (which ends the fuzz worker, so the fuzzer saves the
// input) when the returned stop is not called within hangAfter.
func watchdog(what string, n int) (stop func() bool) {
	t := time.AfterFunc(hangAfter, func() {
		panic(fmt.Sprintf("%s hangs: still running after %v on a %d-byte input", what, hangAfter, n))
	})
	return t.Stop
}

// seedDB is one built db used as a seed.
type seedDB struct {
	name string
	data []byte
	ps   int
}

var (
	seedOnce sync.Once
	seedDBs  []seedDB
	seedErr  error
)

// seedConfigs are small etcd-shaped dbs: 1 KiB pages so they stay small,
// values past one page, an inline meta bucket, nested buckets, tombstones,
// multi-op revisions and a compaction that leaves free pages.
var seedConfigs = []struct {
	name string
	cfg  etcdgen.Config
}{
	{"etcd-1k", etcdgen.Config{PageSize: 1024, Records: 60, Batch: 20, ValueMin: 40, ValueMax: 300,
		BigEvery: 12, BigMin: 1200, BigMax: 2600, CompactEvery: 2, Nested: true, Seed: 1}},
	{"etcd-1k-freelist", etcdgen.Config{PageSize: 1024, Records: 40, Batch: 10, ValueMin: 40, ValueMax: 200,
		BigEvery: 10, BigMin: 1100, BigMax: 1500, CompactEvery: 2, Nested: true, Seed: 2, FreelistSync: true}},
	{"etcd-512", etcdgen.Config{PageSize: 512, Records: 30, Batch: 10, ValueMin: 20, ValueMax: 120,
		BigEvery: 8, BigMin: 600, BigMax: 900, CompactEvery: 2, Seed: 3}},
	{"etcd-4k-tiny", etcdgen.Config{PageSize: 4096, Records: 6, Batch: 3, ValueMin: 20, ValueMax: 60,
		BigEvery: -1, CompactEvery: -1, Seed: 4}},
}

// builtSeeds builds the seed dbs once per test binary.
func builtSeeds(tb testing.TB) []seedDB {
	tb.Helper()
	seedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "boltfix-fuzz-seeds")
		if err != nil {
			seedErr = err
			return
		}
		defer os.RemoveAll(dir)
		for _, sc := range seedConfigs {
			p := filepath.Join(dir, sc.name)
			if _, err := etcdgen.Generate(p, sc.cfg); err != nil {
				seedErr = fmt.Errorf("%s: %w", sc.name, err)
				return
			}
			b, err := os.ReadFile(p)
			if err != nil {
				seedErr = err
				return
			}
			seedDBs = append(seedDBs, seedDB{name: sc.name, data: b, ps: sc.cfg.PageSize})
		}
	})
	if seedErr != nil {
		tb.Fatal(seedErr)
	}
	if len(seedDBs) == 0 {
		tb.Fatal("no seed dbs")
	}
	return seedDBs
}

// pages returns copies of the pages (with their overflow) of a built db
// whose header flags match, at most n of them.
func pages(db seedDB, flags uint16, n int) [][]byte {
	var out [][]byte
	for off := 0; off+db.ps <= len(db.data) && len(out) < n; off += db.ps {
		h, _ := pagewalk.ParseHeader(db.data[off:])
		if h.Flags != flags || h.ID != uint64(off/db.ps) {
			continue
		}
		end := min(len(db.data), off+db.ps*(int(h.Overflow)+1))
		out = append(out, append([]byte(nil), db.data[off:end]...))
	}
	return out
}

// leafValues returns the bucket-element values (bucket headers, inline
// pages included) of the leaf pages of a built db.
func bucketValues(db seedDB) [][]byte {
	var out [][]byte
	for _, p := range pages(db, pagewalk.FlagLeaf, 1000) {
		n := &pagewalk.Node{Header: mustHeader(p), Data: p}
		for i := 0; i < int(n.Count); i++ {
			e, fe := n.Leaf(i)
			if fe == nil && e.IsBucket() {
				out = append(out, append([]byte(nil), e.Value...))
			}
		}
	}
	return out
}

func mustHeader(b []byte) pagewalk.Header {
	h, _ := pagewalk.ParseHeader(b)
	return h
}

// corruptions are hand-made damage applied to a built db for extra seeds:
// the shapes docs/recovery.md §13 names (torn branch, garbage page, both metas bad,
// truncation, a cycle).
func corruptions(db seedDB) map[string][]byte {
	out := map[string][]byte{}
	ps := db.ps
	cp := func() []byte { return append([]byte(nil), db.data...) }
	branches := pages(db, pagewalk.FlagBranch, 4)
	if len(branches) > 0 {
		id := mustHeader(branches[0]).ID
		b := cp()
		off := int(id)*ps + pagewalk.PageHeaderSize + pagewalk.BranchElementSize
		clear(b[off : int(id+1)*ps])
		out["half-zeroed-branch"] = b
		// A cycle: the branch's first child points back at the branch.
		b = cp()
		binary.LittleEndian.PutUint64(b[int(id)*ps+pagewalk.PageHeaderSize+8:], id)
		out["branch-cycle"] = b
		// A child past the end of the file.
		b = cp()
		binary.LittleEndian.PutUint64(b[int(id)*ps+pagewalk.PageHeaderSize+8:], uint64(len(b)/ps+100))
		out["child-past-eof"] = b
	}
	b := cp()
	clear(b[:2*ps])
	out["both-metas-zero"] = b
	b = cp()
	for i := 2 * ps; i < len(b); i += 7 * ps / 3 {
		b[i+9] ^= 0xFF // flags of a few pages
	}
	out["garbage-flags"] = b
	out["truncated"] = cp()[:len(db.data)*2/3]
	return out
}

// writeCorpusFile writes one `go test fuzz v1` corpus file for a []byte
// target.
func writeCorpusFile(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data), 0o644)
}
