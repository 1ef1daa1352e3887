// Command gendb writes a healthy etcd-shaped bbolt db for benchmarks:
//
//	go run ./bench/gendb -size 1GiB -out bench/work/etcd-1GiB.db
//
// See package etcdgen for what the file holds. It refuses to overwrite -out.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/boltfix/boltfix/bench/etcdgen"
)

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func main() {
	size := flag.String("size", "1GiB", "stop once the db's high-water mark reaches this size (KiB, MiB, GiB suffixes)")
	out := flag.String("out", "", "output file (must not exist)")
	seed := flag.Uint64("seed", 1, "random seed")
	pageSize := flag.Int("page-size", 4096, "bbolt page size")
	batch := flag.Int("batch", 10000, "key-bucket puts per write transaction")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gendb: -out is required")
		os.Exit(2)
	}
	n, err := parseSize(*size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendb:", err)
		os.Exit(2)
	}
	start := time.Now()
	st, err := etcdgen.Generate(*out, etcdgen.Config{Size: n, Seed: *seed, PageSize: *pageSize, Batch: *batch, KeepTail: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendb:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %d bytes (hwm %d), %d records (%d tombstones, %d compacted away, compact rev %d), last revision %d, %d live keys, %d txns, %.1fs\n",
		*out, st.FileBytes, st.HWMBytes, st.Records, st.Tombstones, st.Compacted, st.CompactRev, st.Revision, st.LiveObjects, st.Txns,
		time.Since(start).Seconds())
}
