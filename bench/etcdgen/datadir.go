package etcdgen

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/boltfix/boltfix/outfile"
	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// ClusterID is the cluster the WAL metadata of DataDir names.
const ClusterID uint64 = 0x1c2f3e4d5a6b7c8d

// DataDirConfig says what DataDir writes around a db.
type DataDirConfig struct {
	// WALBytes: entries of about this many bytes of WAL records after the
	// snapshot record; 0 writes the WAL of a member that committed nothing
	// since its snapshot. etcd's WAL code cuts a segment every
	// 64,000,000 bytes (wal.SegmentSizeBytes), so 320 MB is five full
	// segments.
	WALBytes int64
	Seed     uint64 // [1]
}

// DataDirStats says what DataDir wrote.
type DataDirStats struct {
	MemberID        uint64
	ConsistentIndex uint64 // the db's, and the WAL's snapshot record
	Term            uint64
	// The WAL's entries, all committed (the last HardState's commit is
	// LastIndex), all of Term.
	Entries, Puts, NewKeys, Overwrites, Deletes int
	LastIndex                                   uint64
	RecordBytes                                 int64 // bytes of the entries' WAL records (frames included)
	Segments                                    int   // WAL files written
	// Expect is the final state of the keys the last entries wrote.
	Expect *Expect
}

// DataDir writes dir/member/snap/db (a copy of db, which Generate wrote)
// and dir/member/wal, with etcd's own WAL code, for the one member the db
// names: metadata, a snapshot record and a HardState at the db's
// consistent_index and term, as a member whose older WAL files were
// purged after a snapshot has; then, with cfg.WALBytes, committed entries
// after it (see writeEntries). etcd 3.6+ needs no .snap file to start from
// it: it rebuilds the snapshot from the WAL's snapshot record.
func DataDir(db, dir string, cfg DataDirConfig) (DataDirStats, error) {
	st := DataDirStats{MemberID: MemberID}
	if _, err := os.Stat(dir); err == nil {
		return st, fmt.Errorf("%s exists", dir)
	}
	state, err := readState(db, cfg.WALBytes > 0)
	if err != nil {
		return st, err
	}
	st.ConsistentIndex, st.Term = state.ci, state.term
	if err := os.MkdirAll(filepath.Join(dir, "member", "snap"), 0o700); err != nil {
		return st, err
	}
	if err := outfile.CopyFile(db, filepath.Join(dir, "member", "snap", "db")); err != nil {
		return st, err
	}
	id := MemberID
	md, _ := proto.Marshal(&pb.Metadata{NodeID: &id, ClusterID: new(ClusterID)})
	walDir := filepath.Join(dir, "member", "wal")
	w, err := etcdwal.Create(zap.NewNop(), walDir, md)
	if err != nil {
		return st, err
	}
	ci, term := state.ci, state.term
	cs := &raftpb.ConfState{Voters: []uint64{id}}
	if err := w.SaveSnapshot(&walpb.Snapshot{Index: &ci, Term: &term, ConfState: cs}); err != nil {
		w.Close()
		return st, err
	}
	if err := w.Save(&raftpb.HardState{Term: &term, Vote: &id, Commit: &ci}, nil); err != nil {
		w.Close()
		return st, err
	}
	if cfg.WALBytes > 0 {
		if err := writeEntries(w, state, cfg, &st); err != nil {
			w.Close()
			return st, err
		}
	}
	if err := w.Close(); err != nil {
		return st, err
	}
	segs, err := filepath.Glob(filepath.Join(walDir, "*.wal"))
	if err != nil {
		return st, err
	}
	st.Segments = len(segs)
	return st, nil
}

// dbState is what the WAL after the db must agree with.
type dbState struct {
	ci, term uint64
	rev      int64     // the newest main revision in the key bucket
	leases   []int64   // leases the lease bucket holds
	live     []liveKey // a sample of live keys, newest first
}

type liveKey struct {
	key   string
	lease int64
}

// sampleKeys is how many of the db's newest live keys the WAL overwrites
// and deletes: enough for overwrites to spread, few enough to read fast
// from the end of a multi-GiB key bucket.
const sampleKeys = 50000

// readState reads the db's consistent_index and term, and with keys its
// newest revision, leases and a sample of its live keys.
func readState(path string, keys bool) (*dbState, error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	s := &dbState{}
	err = db.View(func(tx *bolt.Tx) error {
		mb := tx.Bucket([]byte("meta"))
		if mb == nil {
			return fmt.Errorf("%s: no meta bucket", path)
		}
		if v := mb.Get([]byte("consistent_index")); len(v) == 8 {
			s.ci = binary.BigEndian.Uint64(v)
		}
		if v := mb.Get([]byte("term")); len(v) == 8 {
			s.term = binary.BigEndian.Uint64(v)
		}
		if !keys {
			return nil
		}
		if lb := tx.Bucket([]byte("lease")); lb != nil {
			if err := lb.ForEach(func(k, _ []byte) error {
				if len(k) == 8 {
					s.leases = append(s.leases, int64(binary.BigEndian.Uint64(k)))
				}
				return nil
			}); err != nil {
				return err
			}
		}
		kb := tx.Bucket([]byte("key"))
		if kb == nil {
			return fmt.Errorf("%s: no key bucket", path)
		}
		// Newest first: the first record of a key is its current state.
		seen := map[string]bool{}
		c := kb.Cursor()
		for k, v := c.Last(); k != nil && len(s.live) < sampleKeys; k, v = c.Prev() {
			if len(k) < 17 {
				continue
			}
			if s.rev == 0 {
				s.rev = int64(binary.BigEndian.Uint64(k))
			}
			var kv mvccpb.KeyValue
			if err := proto.Unmarshal(v, &kv); err != nil {
				return fmt.Errorf("%s: record %x: %w", path, k, err)
			}
			if seen[string(kv.Key)] {
				continue
			}
			seen[string(kv.Key)] = true
			if len(k) == 18 && k[17] == 't' {
				continue // deleted
			}
			s.live = append(s.live, liveKey{key: string(kv.Key), lease: kv.Lease})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if keys && s.term == 0 {
		return nil, fmt.Errorf("%s: no term in meta: the WAL's entries need the db's", path)
	}
	return s, nil
}
