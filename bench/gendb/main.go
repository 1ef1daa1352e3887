// Command gendb writes a healthy etcd-shaped bbolt db for benchmarks:
//
//	go run ./bench/gendb -size 1GiB -out bench/work/etcd-1GiB.db
//
// See package etcdgen for what the file holds. It refuses to overwrite -out.
//
// More modes prepare the inputs bench/run.sh measures, from a db it made:
//
//	go run ./bench/gendb -from DB -damage-depth 0 -out DAMAGED.db   # a torn key-bucket branch
//	go run ./bench/gendb -from DB -datadir DIR                      # a data dir around DB
//	go run ./bench/gendb -from DB -datadir DIR -wal-bytes 320MB -expect DIR.expect.json
//
// and check what a replay made of the last (WAL=1 in bench/run.sh):
//
//	go run ./bench/gendb -expect DIR.expect.json -verify OUT/member/snap/db
//	go run ./bench/gendb -expect DIR.expect.json -verify-url http://127.0.0.1:2379
//
// -damage-depth 0 copies DB and half-zeroes the key bucket's root branch
// page (the torn write of fixtures.HalfZeroBranch, found without its
// whole-tree inspection, which is quadratic on a multi-GiB file): about
// half of the records are orphaned, the worst case for carving. -datadir
// writes DIR/member/snap/db (a copy of DB) and DIR/member/wal with etcd's
// own WAL code: a snapshot record and a HardState at the db's
// consistent_index and term, as a member whose older WAL files were purged
// after a snapshot has; with -wal-bytes, that many bytes of committed
// entries after it (etcdgen.DataDir: puts of new and existing keys, a few
// deletes; etcd cuts a segment every 64 MB, so 320MB is five), and -expect
// writes the final state of the keys the last entries wrote, for -verify
// (a db) and -verify-url (a serving etcd) to check.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/boltfix/boltfix/bench/etcdgen"
	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/pagewalk"
)

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
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
	from := flag.String("from", "", "with -damage-depth or -datadir: the db to start from")
	depth := flag.Int("damage-depth", -1, "with -from: copy it to -out and half-zero the key bucket's root branch page (only 0)")
	datadir := flag.String("datadir", "", "with -from: write a data dir (member/snap/db, member/wal) around a copy of it")
	walBytes := flag.String("wal-bytes", "0", "with -datadir: write about this many bytes of committed WAL entries after the db's index (MB, MiB... suffixes)")
	expect := flag.String("expect", "", "with -wal-bytes: write the expected final state here; with -verify or -verify-url: read it from here")
	verify := flag.String("verify", "", "check that the db at this path holds the -expect state")
	verifyURL := flag.String("verify-url", "", "check that the etcd serving at this URL holds the -expect state")
	flag.Parse()
	if *verify != "" || *verifyURL != "" {
		if err := check(*expect, *verify, *verifyURL); err != nil {
			fmt.Fprintln(os.Stderr, "gendb:", err)
			os.Exit(1)
		}
		return
	}
	if *from != "" {
		wb, err := parseSize(*walBytes)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gendb:", err)
			os.Exit(2)
		}
		if err := derive(*from, *out, *datadir, *depth, wb, *expect, *seed); err != nil {
			fmt.Fprintln(os.Stderr, "gendb:", err)
			os.Exit(1)
		}
		return
	}
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

// derive writes a damaged copy of from (depth >= 0, to out) or a data dir
// around it (datadir).
func derive(from, out, datadir string, depth int, walBytes int64, expect string, seed uint64) error {
	switch {
	case datadir != "":
		return dataDir(from, datadir, walBytes, expect, seed)
	case depth == 0 && out != "":
		if err := fixtures.CopyFile(from, out); err != nil {
			return err
		}
		if err := halfZeroKeyRoot(out); err != nil {
			os.Remove(out)
			return err
		}
		return nil
	}
	return fmt.Errorf("-from needs -datadir, or -damage-depth and -out")
}

// dataDir writes the data dir around db (etcdgen.DataDir) and, with a
// WAL, the expected state to expect.
func dataDir(db, dir string, walBytes int64, expect string, seed uint64) error {
	if walBytes > 0 && expect == "" {
		return fmt.Errorf("-wal-bytes needs -expect: a replay is checked against it")
	}
	start := time.Now()
	st, err := etcdgen.DataDir(db, dir, etcdgen.DataDirConfig{WALBytes: walBytes, Seed: seed})
	if err != nil {
		return err
	}
	if walBytes == 0 {
		fmt.Printf("%s: member %x, consistent_index %d, term %d, empty WAL\n", dir, st.MemberID, st.ConsistentIndex, st.Term)
		return nil
	}
	b, err := json.MarshalIndent(st.Expect, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(expect, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: member %x, consistent_index %d, term %d; WAL: %d entries %d..%d (%d puts: %d new keys, %d overwrites; %d deletes), %d bytes of records in %d segments; revision %d after replay; %.1fs\n",
		dir, st.MemberID, st.ConsistentIndex, st.Term, st.Entries, st.ConsistentIndex+1, st.LastIndex, st.Puts, st.NewKeys, st.Overwrites, st.Deletes,
		st.RecordBytes, st.Segments, st.Expect.Revision, time.Since(start).Seconds())
	return nil
}

// check verifies a db (verify) or a serving etcd (url) against the
// expected state in expect.
func check(expect, verify, url string) error {
	if expect == "" {
		return fmt.Errorf("-verify and -verify-url need -expect")
	}
	e, err := etcdgen.ReadExpect(expect)
	if err != nil {
		return err
	}
	if verify != "" {
		if err := e.CheckDB(verify); err != nil {
			return err
		}
		fmt.Printf("%s: revision %d and %d keys as expected\n", verify, e.Revision, len(e.Keys))
	}
	if url != "" {
		if err := e.CheckEtcd(url); err != nil {
			return err
		}
		fmt.Printf("%s: revision %d and %d keys as expected\n", url, e.Revision, len(e.Keys))
	}
	return nil
}

// halfZeroKeyRoot zeroes the key bucket's root branch page of db from its
// middle element to the page's end: the zeroed elements point at page 0
// and the subtrees under them are orphaned.
func halfZeroKeyRoot(db string) error {
	f, err := pagewalk.Open(db)
	if err != nil {
		return err
	}
	res, err := f.Scan(pagewalk.Options{})
	if err != nil {
		f.Close()
		return err
	}
	kb := res.Bucket("key")
	if kb == nil || kb.Root == 0 {
		f.Close()
		return fmt.Errorf("%s: no key bucket with a root page", db)
	}
	n, err := f.ReadNode(kb.Root)
	f.Close()
	if err != nil {
		return err
	}
	if n.Header.Type() != pagewalk.TypeBranch || n.Count < 2 {
		return fmt.Errorf("%s: the key bucket's root page %d is not a branch of 2 or more elements", db, kb.Root)
	}
	first := int64(n.Count / 2)
	start := n.Offset + pagewalk.PageHeaderSize + first*pagewalk.BranchElementSize
	end := n.Offset + int64(len(n.Data))
	w, err := os.OpenFile(db, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := w.WriteAt(make([]byte, end-start), start); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Printf("%s: key bucket root page %d: elements %d..%d of %d zeroed from byte %#x\n", db, kb.Root, first, n.Count-1, n.Count, start)
	return nil
}
