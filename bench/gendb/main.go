// Command gendb writes a healthy etcd-shaped bbolt db for benchmarks:
//
//	go run ./bench/gendb -size 1GiB -out bench/work/etcd-1GiB.db
//
// See package etcdgen for what the file holds. It refuses to overwrite -out.
//
// Two more modes prepare the inputs bench/run.sh measures, from a db it made:
//
//	go run ./bench/gendb -from DB -damage-depth 0 -out DAMAGED.db   # a torn key-bucket branch
//	go run ./bench/gendb -from DB -datadir DIR                      # a data dir around DB
//
// -damage-depth 0 copies DB and half-zeroes the key bucket's root branch
// page (the torn write of fixtures.HalfZeroBranch, found without its
// whole-tree inspection, which is quadratic on a multi-GiB file): about
// half of the records are orphaned, the worst case for carving. -datadir
// writes DIR/member/snap/db (a copy of DB) and DIR/member/wal, an empty WAL
// written with etcd's own WAL code: a snapshot record and a HardState at
// the db's consistent_index and term, as a member whose older WAL files
// were purged after a snapshot has, with nothing committed since.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/boltfix/boltfix/bench/etcdgen"
	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/pagewalk"
	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
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
	from := flag.String("from", "", "with -damage-depth or -datadir: the db to start from")
	depth := flag.Int("damage-depth", -1, "with -from: copy it to -out and half-zero the key bucket's root branch page (only 0)")
	datadir := flag.String("datadir", "", "with -from: write a data dir (member/snap/db, member/wal) around a copy of it")
	flag.Parse()
	if *from != "" {
		if err := derive(*from, *out, *datadir, *depth); err != nil {
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
func derive(from, out, datadir string, depth int) error {
	switch {
	case datadir != "":
		if _, err := os.Stat(datadir); err == nil {
			return fmt.Errorf("%s exists", datadir)
		}
		return dataDir(from, datadir)
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

// dataDir writes dir/member/snap/db (a copy of db) and an empty WAL at the
// db's consistent_index and term, for the one member etcdgen's db names.
func dataDir(db, dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("%s exists", dir)
	}
	var ci, term uint64
	bdb, err := bolt.Open(db, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	err = bdb.View(func(tx *bolt.Tx) error {
		mb := tx.Bucket([]byte("meta"))
		if mb == nil {
			return fmt.Errorf("%s: no meta bucket", db)
		}
		if v := mb.Get([]byte("consistent_index")); len(v) == 8 {
			ci = binary.BigEndian.Uint64(v)
		}
		if v := mb.Get([]byte("term")); len(v) == 8 {
			term = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	bdb.Close()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "member", "snap"), 0o700); err != nil {
		return err
	}
	if err := fixtures.CopyFile(db, filepath.Join(dir, "member", "snap", "db")); err != nil {
		return err
	}
	id := etcdgen.MemberID
	md, _ := proto.Marshal(&pb.Metadata{NodeID: &id, ClusterID: new(uint64(0x1c2f3e4d5a6b7c8d))})
	w, err := etcdwal.Create(zap.NewNop(), filepath.Join(dir, "member", "wal"), md)
	if err != nil {
		return err
	}
	cs := &raftpb.ConfState{Voters: []uint64{id}}
	if err := w.SaveSnapshot(&walpb.Snapshot{Index: &ci, Term: &term, ConfState: cs}); err != nil {
		return err
	}
	if err := w.Save(&raftpb.HardState{Term: &term, Vote: &id, Commit: &ci}, nil); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Printf("%s: member %x, consistent_index %d, term %d, empty WAL\n", dir, id, ci, term)
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
