// Package bench holds the benchmark harness: run.sh (boltfix against cat
// and the bbolt CLI on a 1 GiB db), the generator (gendb, etcdgen) and the
// Go benchmarks below. Nothing here runs under plain `go test`: the db is
// generated only when a benchmark runs (-bench).
package bench

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/bench/etcdgen"
	"github.com/boltfix/boltfix/pagewalk"
)

// benchDB returns a healthy etcd-shaped db of about size bytes, generated
// once into bench/work/ (git-ignored) and reused by later runs.
func benchDB(b *testing.B, size int64) string {
	b.Helper()
	path := filepath.Join("work", "scan-bench-"+itoa(size>>20)+"MiB.db")
	if st, err := os.Stat(path); err == nil && st.Size() >= size {
		return path
	}
	if err := os.MkdirAll("work", 0o755); err != nil {
		b.Fatal(err)
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	b.Logf("generating %s", path)
	if _, err := etcdgen.Generate(tmp, etcdgen.Config{Size: size, Batch: 5000, KeepTail: true}); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return path
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	var d []byte
	for ; v > 0; v /= 10 {
		d = append([]byte{byte('0' + v%10)}, d...)
	}
	return string(d)
}

// BOLTFIX_BENCH_DB=FILE benchmarks an existing db instead (for example
// the 1 GiB one run.sh writes), e.g. to profile:
//
//	BOLTFIX_BENCH_DB=$PWD/bench/work/etcd-1GiB.db go test ./bench -run '^$' -bench 'Scan$' -cpuprofile cpu.out
func benchScan(b *testing.B, opts pagewalk.Options) {
	path := os.Getenv("BOLTFIX_BENCH_DB")
	if path == "" {
		path = benchDB(b, 64<<20)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		f, err := pagewalk.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		r, err := f.Scan(opts)
		if err != nil {
			b.Fatal(err)
		}
		if !r.Report.Clean {
			b.Fatalf("generated db not clean: %d findings, first %+v", len(r.Report.Findings), r.Report.Findings[0])
		}
		f.Close()
	}
}

// BenchmarkScan is `boltfix scan` without the CLI: census, walk, report.
func BenchmarkScan(b *testing.B) { benchScan(b, pagewalk.Options{}) }

// BenchmarkScanDeep adds --deep: every key-bucket value decoded.
func BenchmarkScanDeep(b *testing.B) { benchScan(b, pagewalk.Options{Deep: true}) }
