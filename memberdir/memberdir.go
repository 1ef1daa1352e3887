// Package memberdir writes an etcd member dir (member/{snap/db, snap/*.snap,
// wal}) around a healthy db, with etcdutl's snapshot restore (or its steps,
// on a db given away, in place: inplace.go), keeping the original member's
// name and peer URLs (docs/recovery.md §8).
package memberdir

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/boltfix/boltfix/wal"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.etcd.io/raft/v3/raftpb"
)

// Config configures Write. Every field is optional.
type Config struct {
	Logger *zap.Logger
	// Name and PeerURLs of the single member of the new cluster. By default
	// they are taken from the original membership: the db's members bucket
	// (the member the WAL metadata names, or the only one), then the WAL's
	// conf changes, then etcd's defaults ("default", http://localhost:2380).
	Name     string
	PeerURLs []string
	// InitialClusterToken defaults to etcd's "etcd-cluster". The new member
	// id is derived from it, the name's peer URLs and nothing else.
	InitialClusterToken string
	// WAL is the original log, if read: its metadata and conf changes supply
	// defaults for Name and PeerURLs.
	WAL *wal.Log
	// RevisionBump and MarkCompacted are etcdutl's --bump-revision and
	// --mark-compacted: raise the revision by RevisionBump and mark it
	// compacted, so that watchers (Kubernetes' watch cache) relist instead of
	// trusting revisions that may have gone backwards. MarkCompacted needs
	// RevisionBump > 0.
	RevisionBump  uint64
	MarkCompacted bool
	// TakeDB: the db at dbPath is the caller's to give away (a scratch
	// file on the output's file system). It is moved into the member dir
	// and changed there, with etcd's own code, instead of copied first as
	// etcdutl's restore does (restoreInPlace): on a db of a few GiB the
	// copy cost as much as writing the db.
	TakeDB bool
}

// Result describes the member dir written.
type Result struct {
	DataDir  string   `json:"data_dir"`
	Name     string   `json:"name"`
	PeerURLs []string `json:"peer_urls"`
	// From says where Name and PeerURLs came from: "config",
	// "members-bucket", "wal-conf-change" or "default".
	From      string `json:"from"`
	MemberID  uint64 `json:"member_id"`
	ClusterID uint64 `json:"cluster_id"`
	// ConsistentIndex of the new db and CommitIndex of the new WAL: etcd
	// only starts serving when the first is not above the second.
	ConsistentIndex uint64 `json:"consistent_index"`
	CommitIndex     uint64 `json:"commit_index"`
}

// ErrIndexAboveCommit: the written db's consistent_index is above the new
// WAL's commit index; etcd would start and never serve (docs/recovery.md §7).
var ErrIndexAboveCommit = errors.New("memberdir: consistent_index above the WAL commit index")

// Write writes a data dir etcd starts from (outDir/member/{snap,wal})
// around the healthy db at dbPath, with etcdutl's snapshot restore: a copy of
// the db, a new single-member membership, a fresh WAL and .snap, and
// consistent_index set to the new WAL's commit index. dbPath is not changed
// (Restore copies it before opening the copy with bbolt, copyAndVerifyDB)
// unless cfg.TakeDB gives it away.
// outDir must not exist or be empty.
func Write(dbPath, outDir string, cfg Config) (*Result, error) {
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	if _, err := os.Stat(dbPath); err != nil {
		return nil, err
	}
	res := &Result{DataDir: outDir}
	res.Name, res.PeerURLs, res.From = originalMember(dbPath, cfg)
	if cfg.Name != "" {
		res.Name, res.From = cfg.Name, "config"
	}
	if len(cfg.PeerURLs) > 0 {
		res.PeerURLs, res.From = cfg.PeerURLs, "config"
	}
	token := cfg.InitialClusterToken
	if token == "" {
		token = "etcd-cluster"
	}
	var ic []string
	for _, u := range res.PeerURLs {
		ic = append(ic, res.Name+"="+u)
	}
	rc := snapshot.RestoreConfig{
		SnapshotPath:        dbPath,
		Name:                res.Name,
		OutputDataDir:       outDir,
		PeerURLs:            res.PeerURLs,
		InitialCluster:      strings.Join(ic, ","),
		InitialClusterToken: token,
		// A db boltfix wrote has no sha256 trailer.
		SkipHashCheck: true,
		RevisionBump:  cfg.RevisionBump,
		MarkCompacted: cfg.MarkCompacted,
	}
	var err error
	if cfg.TakeDB {
		err = restoreInPlace(lg, rc)
	} else {
		err = snapshot.NewV3(lg).Restore(rc)
	}
	if err != nil {
		return nil, fmt.Errorf("restore member dir: %w", err)
	}
	l, err := wal.Read(outDir)
	if err != nil {
		return nil, fmt.Errorf("read back the new WAL: %w", err)
	}
	l.Close() // only its records are needed, not its entries' data
	if l.Metadata != nil {
		res.MemberID, res.ClusterID = l.Metadata.NodeID, l.Metadata.ClusterID
	}
	res.CommitIndex = l.CommitIndex()
	res.ConsistentIndex, _ = wal.ReadConsistentIndex(filepath.Join(outDir, "member", "snap", "db"))
	if !l.Clean() {
		return res, fmt.Errorf("the new WAL does not read cleanly: %v", l.Stops())
	}
	if res.ConsistentIndex > res.CommitIndex {
		return res, fmt.Errorf("%w: %d > %d", ErrIndexAboveCommit, res.ConsistentIndex, res.CommitIndex)
	}
	return res, nil
}

// memberJSON is a members-bucket value (membership.Member in JSON).
type memberJSON struct {
	ID        uint64   `json:"id"`
	PeerURLs  []string `json:"peerURLs"`
	Name      string   `json:"name"`
	IsLearner bool     `json:"isLearner"`
}

// originalMember finds the name and peer URLs of the member whose data this
// is, as Write's defaults.
func originalMember(dbPath string, cfg Config) (string, []string, string) {
	var self uint64
	if cfg.WAL != nil && cfg.WAL.Metadata != nil {
		self = cfg.WAL.Metadata.NodeID
	}
	members := readMembers(dbPath)
	if len(members) == 0 && cfg.WAL != nil {
		for _, m := range walMembers(cfg.WAL) {
			members = append(members, m)
		}
		if m := pickMember(members, self); m != nil && m.Name != "" && len(m.PeerURLs) > 0 {
			return m.Name, m.PeerURLs, "wal-conf-change"
		}
	} else if m := pickMember(members, self); m != nil && m.Name != "" && len(m.PeerURLs) > 0 {
		return m.Name, m.PeerURLs, "members-bucket"
	}
	return "default", []string{"http://localhost:2380"}, "default"
}

func pickMember(ms []memberJSON, self uint64) *memberJSON {
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	for i := range ms {
		if ms[i].ID == self && self != 0 {
			return &ms[i]
		}
	}
	var voters []*memberJSON
	for i := range ms {
		if !ms[i].IsLearner {
			voters = append(voters, &ms[i])
		}
	}
	if len(voters) == 1 {
		return voters[0]
	}
	return nil
}

// readMembers reads the members bucket of a healthy db; nil on any problem.
func readMembers(path string) []memberJSON {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil
	}
	defer db.Close()
	var out []memberJSON
	_ = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("members"))
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var m memberJSON
			if json.Unmarshal(v, &m) == nil && m.ID != 0 {
				out = append(out, m)
			}
			return nil
		})
	})
	return out
}

// walMembers replays the membership the WAL's conf changes and attribute
// updates describe (names come from member-attr-set entries).
func walMembers(l *wal.Log) map[uint64]memberJSON {
	ms := map[uint64]memberJSON{}
	for _, me := range l.MembershipEntries() {
		d := me.Decoded
		switch {
		case d.ConfChange != nil:
			var c wal.ConfMember
			_ = json.Unmarshal(d.ConfChange.GetContext(), &c)
			id := d.ConfChange.GetNodeId()
			switch d.ConfChange.GetType() {
			case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode, raftpb.ConfChangeUpdateNode:
				m := ms[id]
				m.ID = id
				if len(c.PeerURLs) > 0 {
					m.PeerURLs = c.PeerURLs
				}
				if c.Name != "" {
					m.Name = c.Name
				}
				m.IsLearner = c.IsLearner && !c.IsPromote
				ms[id] = m
			case raftpb.ConfChangeRemoveNode:
				delete(ms, id)
			}
		case d.Request != nil && d.Request.ClusterMemberAttrSet != nil:
			a := d.Request.ClusterMemberAttrSet
			if m, ok := ms[a.Member_ID]; ok && a.MemberAttributes != nil {
				m.Name = a.MemberAttributes.Name
				ms[a.Member_ID] = m
			}
		}
	}
	return ms
}
