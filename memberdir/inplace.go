package memberdir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/boltfix/boltfix/outfile"
	"google.golang.org/protobuf/proto"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.etcd.io/etcd/server/v3/config"
	"go.etcd.io/etcd/server/v3/etcdserver"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/etcdserver/cindex"
	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.etcd.io/etcd/server/v3/storage/schema"
	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/etcd/server/v3/verify"
	"go.etcd.io/raft/v3/raftpb"
)

// restoreInPlace does what etcdutl's snapshot restore (v3.7,
// etcdutl/snapshot/v3_snapshot.go: Restore) does, with etcd's own code for
// every write, on a db the caller gives away: the db is moved into
// outDir/member/snap/db, not copied.
//
// Why not Restore itself: it copies the db first (copyAndVerifyDB), and
// each of its four backend opens commits with an fsync; on a db of a few
// GiB the copy and its write-back cost as much as writing the db did.
// Repair's db is its own scratch file, so nothing needs the original.
// Also, Restore finds the newest revision for --bump-revision by reading
// every record; the key bucket is sorted by revision, so its last key is
// the newest.
//
// The steps and their order are Restore's: verify the bootstrap config,
// trim the db's membership, bump and mark compacted (if asked), persist
// the new cluster's members, write the WAL (one ConfChangeAddNode entry per
// member at term 1, the HardState) and the .snap (membership in v2 format),
// the WAL's snapshot record, then consistent_index and term. One backend
// open does all the db's writes. TestRestoreInPlaceIsRestore holds the
// result against Restore's, file by file.
//
// cfg is the RestoreConfig Write would give Restore: SnapshotPath is the
// db moved in, OutputDataDir the member dir; the hash check and the mmap
// size do not apply (a db boltfix wrote has no hash trailer).
func restoreInPlace(lg *zap.Logger, cfg snapshot.RestoreConfig) error {
	dbPath, outDir := cfg.SnapshotPath, cfg.OutputDataDir
	pURLs, err := types.NewURLs(cfg.PeerURLs)
	if err != nil {
		return err
	}
	ics, err := types.NewURLsMap(cfg.InitialCluster)
	if err != nil {
		return err
	}
	srv := config.ServerConfig{Logger: lg, Name: cfg.Name, PeerURLs: pURLs, InitialPeerURLsMap: ics, InitialClusterToken: cfg.InitialClusterToken}
	if err := srv.VerifyBootstrap(); err != nil {
		return err
	}
	cl, err := membership.NewClusterFromURLsMap(lg, cfg.InitialClusterToken, ics)
	if err != nil {
		return err
	}
	if fileutil.Exist(outDir) && !fileutil.DirEmpty(outDir) {
		return fmt.Errorf("data-dir %q not empty or could not be read", outDir)
	}
	var latest mvcc.Revision
	if cfg.MarkCompacted && cfg.RevisionBump > 0 {
		if latest, err = newestRevision(dbPath); err != nil {
			return err
		}
	}
	snapDir := filepath.Join(outDir, "member", "snap")
	walDir := filepath.Join(outDir, "member", "wal")
	if err := fileutil.CreateDirAll(lg, snapDir); err != nil {
		return err
	}
	outDB := filepath.Join(snapDir, "db")
	if err := moveFile(dbPath, outDB); err != nil {
		return err
	}

	be := backend.NewDefaultBackend(lg, outDB)
	closed := false
	defer func() {
		if !closed {
			be.Close()
		}
	}()
	mb := schema.NewMembershipBackend(lg, be)
	if err := mb.TrimMembershipFromBackend(); err != nil {
		return err
	}
	if cfg.MarkCompacted && cfg.RevisionBump > 0 {
		tx := be.BatchTx()
		tx.LockOutsideApply()
		latest.Main += int64(cfg.RevisionBump)
		latest.Sub = 0
		tx.UnsafePut(schema.Key, mvcc.RevToBytes(latest, mvcc.NewRevBytes()), []byte{})
		mvcc.UnsafeSetScheduledCompact(tx, latest.Main)
		tx.Unlock()
		lg.Info("bumped latest revision and marked it compacted", zap.Int64("revision", latest.Main))
	}

	cl.SetBackend(mb)
	for _, m := range cl.Members() {
		cl.AddMember(m, true)
	}
	m := cl.MemberByName(cfg.Name) //nolint:staticcheck // as Restore does: a new cluster has one member per name
	if m == nil {
		return fmt.Errorf("member %q not in the initial cluster", cfg.Name)
	}
	md, err := proto.Marshal(&etcdserverpb.Metadata{NodeID: proto.Uint64(uint64(m.ID)), ClusterID: proto.Uint64(uint64(cl.ID()))})
	if err != nil {
		return err
	}
	if err := fileutil.CreateDirAll(lg, walDir); err != nil {
		return err
	}
	w, err := etcdwal.Create(lg, walDir, md)
	if err != nil {
		return err
	}
	ids := cl.MemberIDs()
	ents := make([]*raftpb.Entry, len(ids))
	voters := make([]uint64, len(ids))
	for i, id := range ids {
		ctx, err := json.Marshal(cl.Member(id))
		if err != nil {
			w.Close()
			return err
		}
		cc, err := proto.Marshal(&raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(uint64(id)), Context: ctx})
		if err != nil {
			w.Close()
			return err
		}
		voters[i] = uint64(id)
		ents[i] = &raftpb.Entry{Type: raftpb.EntryConfChange.Enum(), Term: proto.Uint64(1), Index: proto.Uint64(uint64(i + 1)), Data: cc}
	}
	commit, term := uint64(len(ents)), uint64(1)
	hs := raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(voters[0]), Commit: proto.Uint64(commit)}
	if err := w.Save(&hs, ents); err != nil {
		w.Close()
		return err
	}
	cs := &raftpb.ConfState{Voters: voters}
	raftSnap := raftpb.Snapshot{
		Data:     etcdserver.GetMembershipInfoInV2Format(lg, cl),
		Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(commit), Term: proto.Uint64(term), ConfState: cs},
	}
	if err := snap.New(lg, snapDir).SaveSnap(&raftSnap); err != nil {
		w.Close()
		return err
	}
	if err := w.SaveSnapshot(&walpb.Snapshot{Index: proto.Uint64(commit), Term: proto.Uint64(term), ConfState: cs}); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	cindex.UpdateConsistentIndexForce(be.BatchTx(), commit, term)
	be.ForceCommit()
	closed = true
	be.Close()
	return verify.VerifyIfEnabled(verify.Config{ExactIndex: true, Logger: lg, DataDir: outDir})
}

// newestRevision is the key bucket's newest revision: its last key (keys
// are revisions, big-endian, so byte order is revision order).
func newestRevision(path string) (mvcc.Revision, error) {
	var latest mvcc.Revision
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return latest, err
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(schema.Key.Name()); b != nil {
			if k, _ := b.Cursor().Last(); len(k) >= 17 {
				latest = mvcc.BytesToRev(k)
			}
		}
		return nil
	})
	return latest, err
}

// moveFile renames src to dst; across file systems it copies (and syncs)
// and removes src.
func moveFile(src, dst string) error {
	err := os.Rename(src, dst)
	var le *os.LinkError
	if err == nil || !errors.As(err, &le) || !errors.Is(le.Err, syscall.EXDEV) {
		return err
	}
	if err := copySynced(src, dst); err != nil {
		return err
	}
	return os.Remove(src)
}

// copySynced copies src to a new file dst (outfile.CopyFile) and syncs it.
func copySynced(src, dst string) error {
	if err := outfile.CopyFile(src, dst); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
