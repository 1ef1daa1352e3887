package wal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/coreos/go-semver/semver"
	"go.uber.org/zap"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/version"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/auth"
	"go.etcd.io/etcd/server/v3/etcdserver/api"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3alarm"
	"go.etcd.io/etcd/server/v3/etcdserver/apply"
	"go.etcd.io/etcd/server/v3/etcdserver/cindex"
	"go.etcd.io/etcd/server/v3/lease"
	"go.etcd.io/etcd/server/v3/storage"
	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.etcd.io/raft/v3/confchange"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// ReplayOptions configures Replay.
type ReplayOptions struct {
	// Logger receives etcd's own log lines; nil discards them.
	Logger *zap.Logger
	// CommitIndex is the WAL's HardState.commit (Log.CommitIndex). Entries
	// above it were never known to be committed and are not applied. It is
	// required: a zero CommitIndex is an error, so nothing is applied by
	// accident.
	CommitIndex uint64
	// MemberID is this member's id (WAL metadata); it only appears in
	// response headers and alarm bookkeeping.
	MemberID uint64
	// QuotaBackendBytes is etcd's --quota-backend-bytes. 0 (the default here)
	// disables the quota: the rebuilt db is compacter than the original, so
	// etcd's own size check would not decide the same way anyway, and a
	// NOSPACE alarm that was raised is itself an entry in the WAL.
	QuotaBackendBytes int64
	// MinLeaseTTL is the floor etcd applies to granted TTLs (seconds); 0
	// means etcd's default for a 100ms heartbeat and 10-tick election: 2.
	MinLeaseTTL int64
	// Context, if set, stops the apply loop when it is cancelled; Replay
	// then returns the context's error (the db holds a partial replay).
	Context context.Context
	// Lost are main-revision ranges (inclusive; an upper bound of 0 is
	// open) whose records the db may lack. With any, the replay stops
	// before the first entry whose effect depends on them
	// (UncertainError, replay_uncertain.go).
	Lost [][2]int64
	// BackendBatchLimit is etcd's --backend-batch-limit: the writes its
	// backend buffers (and bbolt keeps in its open transaction) before a
	// commit, which also comes every 100 ms. It is what a replay holds of
	// the writes it applies. 0: etcd's default, 10,000.
	BackendBatchLimit int
}

// ReplayResult says what Replay did.
type ReplayResult struct {
	ConsistentIndexBefore uint64 `json:"consistent_index_before"`
	ConsistentIndex       uint64 `json:"consistent_index"` // after
	Term                  uint64 `json:"term"`             // consistent index term after
	RevisionBefore        int64  `json:"revision_before"`
	Revision              int64  `json:"revision"`
	FirstApplied          uint64 `json:"first_applied"`
	LastApplied           uint64 `json:"last_applied"`
	// Applied counts applied entries by kind (Kind* constants).
	Applied map[string]int `json:"applied"`
	// Skipped counts entries not applied by reason: "already-applied"
	// (index ≤ the db's consistent_index), "uncommitted" (above CommitIndex),
	// "no-effect" (reads and authenticate, which etcd does not apply without
	// a waiting client), "v2-only" (v2 store writes, not in the bbolt db).
	Skipped map[string]int `json:"skipped"`
	// Rejected lists entries etcd's apply code returned an error for (a
	// txn on a compacted revision, a put to a revoked lease...): etcd
	// returned the same error to the client, and the state is unchanged,
	// exactly as it was in etcd.
	Rejected []EntryError `json:"rejected"`
	// Errors lists entries boltfix could not apply at all (undecodable,
	// unknown to this etcd version, or a request etcd itself would have
	// crashed on). The consistent index still moves past them.
	Errors []EntryError `json:"errors"`
}

// EntryError is one entry Replay did not apply cleanly.
type EntryError struct {
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
	Kind  string `json:"kind"`
	Err   string `json:"error"`
}

// GapError means the entries handed to Replay skip indexes: applying past a
// gap would give every later revision a different number.
type GapError struct {
	After uint64 // last index applied (or the db's consistent_index)
	Next  uint64 // next index offered
}

func (e *GapError) Error() string {
	return fmt.Sprintf("wal replay: entries %d..%d missing after index %d; stopped there", e.After+1, e.Next-1, e.After)
}

// ErrNoCommitIndex is returned when ReplayOptions.CommitIndex is zero.
var ErrNoCommitIndex = errors.New("wal replay: CommitIndex not set")

// raftStatus answers the apply code's questions about raft progress.
type raftStatus struct {
	id     types.ID
	term   uint64
	commit uint64
	apply  uint64
}

func (r *raftStatus) MemberID() types.ID     { return r.id }
func (r *raftStatus) Leader() types.ID       { return r.id }
func (r *raftStatus) CommittedIndex() uint64 { return r.commit }
func (r *raftStatus) AppliedIndex() uint64   { return r.apply }
func (r *raftStatus) Term() uint64           { return r.term }

// noSnapshot stands in for the server's forced snapshot after a cluster
// version downgrade: a replay has no raft snapshot to take.
type noSnapshot struct{}

func (noSnapshot) ForceSnapshot() {}

// replayer is the slice of an EtcdServer that applying entries needs, built
// the way etcd's NewServer builds it.
type replayer struct {
	ctx     context.Context // nil: never cancelled
	lg      *zap.Logger
	be      backend.Backend
	ci      cindex.ConsistentIndexer
	hooks   *storage.BackendHooks
	lessor  lease.Lessor
	kv      mvcc.KV
	closeKV func()
	lost    [][2]int64
	auth    auth.AuthStore
	cluster *membership.RaftCluster
	uber    apply.UberApplier
	status  *raftStatus
	conf    *raftpb.ConfState
}

// Replay applies the committed entries above the db's consistent_index to
// the healthy bbolt db at dbPath, in place, with etcd's own apply code
// (apply.NewUberApplier over mvcc.NewStore, lease.NewLessor and the auth
// store), exactly as etcd's apply loop would on startup: same revisions,
// same lease and compaction effects, consistent_index and term advanced per
// entry. dbPath must be a db boltfix wrote (or a copy): bbolt and etcd trust
// it completely. A missing file is created as an empty etcd db.
//
// entries must be sorted by index (Log.ReplayEntries). Each entry's data is
// read from its segment as it is applied and dropped after (Entry.Load):
// what a replay holds of the WAL is one entry, and what etcd's backend
// holds of the writes not yet committed (a batch: 10,000 writes or 100 ms).
// Replay stops with a *GapError at the first missing index, and with a
// *LoadError at an entry whose record changed since it was read; the
// result then covers what was applied before it. The records a replay
// wrote are read back from the db, not kept (ForEachRecord,
// CompareRecords).
func Replay(dbPath string, entries []*Entry, opts ReplayOptions) (*ReplayResult, error) {
	if opts.CommitIndex == 0 {
		return nil, ErrNoCommitIndex
	}
	if err := checkOpenable(dbPath); err != nil {
		return nil, err
	}
	defer RelaxMemoryLimit()() // etcd's index of every key is live from here
	r, err := newReplayer(dbPath, opts)
	if err != nil {
		return nil, err
	}
	res := &ReplayResult{Applied: map[string]int{}, Skipped: map[string]int{}}
	res.ConsistentIndexBefore = r.ci.ConsistentIndex()
	res.RevisionBefore = r.kv.Rev()
	err = r.run(entries, opts.CommitIndex, res)
	res.ConsistentIndex, res.Term = r.ci.ConsistentIndex(), r.status.term
	res.Revision = r.kv.Rev()
	r.be.ForceCommit()
	r.close()
	res.ConsistentIndex, res.Term = readConsistentIndex(dbPath, res.ConsistentIndex, res.Term)
	return res, err
}

// checkOpenable opens dbPath with bbolt read-only first, so a missing lock or
// a non-bbolt file is an error here rather than a panic inside etcd's backend.
func checkOpenable(path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("wal replay: open %s: %w", path, err)
	}
	return db.Close()
}

func newReplayer(dbPath string, opts ReplayOptions) (*replayer, error) {
	lg := opts.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	r := &replayer{ctx: opts.Context, lg: lg, lost: opts.Lost, status: &raftStatus{id: types.ID(opts.MemberID), commit: opts.CommitIndex}}
	// The consistent index is saved by the backend's pre-commit hook, as
	// in etcd (storage.NewBackendHooks), so it lands in the same bbolt
	// transaction as the writes of the entry it covers.
	r.ci = cindex.NewConsistentIndex(nil)
	r.hooks = storage.NewBackendHooks(lg, r.ci)
	r.be = backend.NewDefaultBackend(lg, dbPath, func(c *backend.BackendConfig) {
		c.Hooks = r.hooks
		if opts.BackendBatchLimit > 0 {
			c.BatchLimit = opts.BackendBatchLimit
		}
	})
	r.ci.SetBackend(r.be)
	schema.CreateMetaBucket(r.be.BatchTx())

	r.cluster = membership.NewCluster(lg)
	r.cluster.SetBackend(schema.NewMembershipBackend(lg, r.be))
	// UnsafeLoad, not Recover: Recover also checks the server version against
	// the cluster version and exits the process on a mismatch.
	r.cluster.UnsafeLoad()

	minTTL := opts.MinLeaseTTL
	if minTTL == 0 {
		minTTL = int64(math.Ceil((time.Duration(3*10/2) * 100 * time.Millisecond).Seconds()))
	}
	// Never promoted: a lessor that is not primary never expires a lease, so
	// only the revokes recorded in the WAL remove leases.
	r.lessor = lease.NewLessor(lg, r.be, r.cluster, lease.LessorConfig{MinLeaseTTL: minTTL})
	store := mvcc.NewStore(lg, r.be, r.lessor, mvcc.StoreConfig{})
	r.kv, r.closeKV = store, func() { store.Close() }

	tp, err := auth.NewTokenProvider(lg, "", nil, 0)
	if err != nil {
		r.close()
		return nil, err
	}
	r.auth = auth.NewAuthStore(lg, schema.NewAuthBackend(lg, r.be), tp, 10)
	alarms, err := v3alarm.NewAlarmStore(lg, schema.NewAlarmBackend(lg, r.be))
	if err != nil {
		r.close()
		return nil, err
	}
	quota := opts.QuotaBackendBytes
	if quota == 0 {
		quota = -1
	}
	r.uber = apply.NewUberApplier(apply.ApplierOptions{
		Logger:                       lg,
		KV:                           r.kv,
		AlarmStore:                   alarms,
		AuthStore:                    r.auth,
		Lessor:                       r.lessor,
		Cluster:                      r.cluster,
		RaftStatus:                   r.status,
		SnapshotServer:               noSnapshot{},
		ConsistentIndex:              r.ci,
		TxnModeWriteWithSharedBuffer: true,
		Backend:                      r.be,
		QuotaBackendBytesCfg:         quota,
		WarningApplyDuration:         time.Hour,
	})

	tx := r.be.ReadTx()
	tx.RLock()
	r.conf = schema.UnsafeConfStateFromBackend(lg, tx)
	tx.RUnlock()
	if r.conf == nil {
		r.conf = &raftpb.ConfState{}
		for _, m := range r.cluster.Members() {
			if m.IsLearner {
				r.conf.Learners = append(r.conf.Learners, uint64(m.ID))
			} else {
				r.conf.Voters = append(r.conf.Voters, uint64(m.ID))
			}
		}
	}
	// etcd's getTxPostLockInsideApplyHook: the first write transaction of an
	// entry moves the consistent index to it.
	r.be.SetTxPostLockInsideApplyHook(func() {
		idx, term := r.ci.ConsistentApplyingIndex()
		if idx > r.ci.UnsafeConsistentIndex() {
			r.ci.SetConsistentIndex(idx, term)
		}
	})
	return r, nil
}

func (r *replayer) close() {
	if r.closeKV != nil {
		r.closeKV()
	}
	if r.lessor != nil {
		r.lessor.Stop()
	}
	if r.auth != nil {
		r.auth.Close()
	}
	if r.be != nil {
		r.be.Close()
	}
}

// run is etcd's EtcdServer.apply loop for entries above the consistent index.
func (r *replayer) run(entries []*Entry, commit uint64, res *ReplayResult) error {
	last := r.ci.ConsistentIndex()
	r.status.apply = last
	for i, we := range entries {
		if r.ctx != nil && i%256 == 0 && r.ctx.Err() != nil {
			return r.ctx.Err()
		}
		idx := we.GetIndex()
		switch {
		case idx <= r.ci.ConsistentIndex():
			res.Skipped["already-applied"]++
			continue
		case idx > commit:
			res.Skipped["uncommitted"]++
			continue
		case idx != last+1:
			return &GapError{After: last, Next: idx}
		}
		// Only now is the entry's data read: it is applied and dropped
		// before the next one is read.
		e, err := we.Load()
		if err != nil {
			return err
		}
		d := Decode(e)
		if len(r.lost) > 0 && d.Err == nil && d.Request != nil {
			if why := r.outcomeUncertain(d.Request); why != "" {
				return &UncertainError{Index: idx, Term: e.GetTerm(), Revision: r.kv.Rev(), Why: why}
			}
		}
		r.status.term = e.GetTerm()
		r.ci.SetConsistentApplyingIndex(idx, e.GetTerm())
		kind, rejected, err := r.applyEntry(e, d)
		switch {
		case err != nil:
			res.Errors = append(res.Errors, EntryError{Index: idx, Term: e.GetTerm(), Kind: kind, Err: err.Error()})
		case rejected != nil:
			res.Rejected = append(res.Rejected, EntryError{Index: idx, Term: e.GetTerm(), Kind: kind, Err: rejected.Error()})
		}
		if kind != "" {
			res.Applied[kind]++
		}
		// As applyEntryNormal's deferred check: entries that wrote nothing
		// still move the consistent index.
		if r.ci.ConsistentIndex() < idx {
			r.ci.SetConsistentIndex(idx, e.GetTerm())
		}
		if res.FirstApplied == 0 {
			res.FirstApplied = idx
		}
		res.LastApplied = idx
		last = idx
		r.status.apply = idx
	}
	return nil
}

// applyEntry applies one entry. It returns the kind to count as applied
// ("" when skipped), the error etcd's apply code returned, or err when the
// entry could not be applied at all.
func (r *replayer) applyEntry(e *raftpb.Entry, d DecodedEntry) (kind string, rejected, err error) {
	if d.Err != nil {
		return d.Kind, nil, d.Err
	}
	switch {
	case d.ConfV2 != nil:
		// etcd's apply loop only knows EntryNormal and EntryConfChange.
		return d.Kind, nil, errors.New("ConfChangeV2 entries are not used by etcd")
	case d.ConfChange != nil:
		rej, err := r.applyConfChange(e, d.ConfChange)
		return d.Kind, rej, err
	case d.Kind == KindNoop:
		return d.Kind, nil, nil
	case d.V2 != nil:
		return r.applyV2(d.V2)
	}
	req := d.Request
	switch d.Kind {
	case KindUnknown:
		return d.Kind, nil, errors.New("request sets no field this etcd version applies")
	case KindRange, KindDowngradeVersionTest:
		return "", nil, nil
	}
	if req.Authenticate != nil || req.AuthUserGet != nil || req.AuthRoleGet != nil || req.AuthStatus != nil {
		// No persistent effect (apply.noSideEffect, and authenticate only
		// issues an in-memory token).
		return "", nil, nil
	}
	if err := r.precheck(req); err != nil {
		return d.Kind, nil, err
	}
	w := &apply.InternalRaftRequestWrapper{InternalRaftRequest: req, SkipRangeExecution: req.Txn != nil}
	ar := r.uber.Apply(w, membership.ApplyBoth)
	if ar == nil {
		return d.Kind, nil, nil
	}
	if ar.Physc != nil {
		// Let the physical compaction finish before the next entry, so the
		// result does not depend on scheduling.
		<-ar.Physc
	}
	return d.Kind, ar.Err, nil
}

// precheck refuses requests that make etcd's apply code panic or exit
// (zap's Panic/Fatal, semver.Must, nil attributes) instead of returning an
// error: etcd would have crashed on them too, so they cannot be in a WAL
// etcd wrote and applied, but a damaged WAL may hold anything.
func (r *replayer) precheck(req *pb.InternalRaftRequest) error {
	switch {
	case req.ClusterVersionSet != nil:
		return checkClusterVersion(req.ClusterVersionSet.Ver)
	case req.ClusterMemberAttrSet != nil:
		if req.ClusterMemberAttrSet.MemberAttributes == nil {
			return errors.New("member attributes missing")
		}
		return r.checkMemberKnown(types.ID(req.ClusterMemberAttrSet.Member_ID))
	}
	return nil
}

func checkClusterVersion(ver string) error {
	v, err := semver.NewVersion(ver)
	if err != nil {
		return fmt.Errorf("cluster version %q: %w", ver, err)
	}
	sv := semver.Must(semver.NewVersion(version.Version))
	if v.Major > sv.Major || (v.Major == sv.Major && v.Minor > sv.Minor) {
		return fmt.Errorf("cluster version %s is newer than this etcd (%s)", ver, version.Version)
	}
	return nil
}

// checkMemberKnown: RaftCluster.UpdateAttributes panics on a member it has
// never seen.
func (r *replayer) checkMemberKnown(id types.ID) error {
	if r.cluster.Member(id) == nil && !r.cluster.IsIDRemoved(id) {
		return fmt.Errorf("member %s unknown to the db's membership", id)
	}
	return nil
}

// applyConfChange is EtcdServer.applyConfChange without the transport: the
// members bucket and the confState in meta change as they did in etcd.
func (r *replayer) applyConfChange(e *raftpb.Entry, cc *raftpb.ConfChange) (rejected, err error) {
	// Everything etcd would panic on, first.
	var ctx membership.ConfigChangeContext
	var upd membership.Member
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		if err := json.Unmarshal(cc.GetContext(), &ctx); err != nil {
			return nil, fmt.Errorf("conf change context: %w", err)
		}
		if uint64(ctx.Member.ID) != cc.GetNodeId() {
			return nil, fmt.Errorf("conf change for %x carries member %s", cc.GetNodeId(), ctx.Member.ID)
		}
	case raftpb.ConfChangeUpdateNode:
		if err := json.Unmarshal(cc.GetContext(), &upd); err != nil {
			return nil, fmt.Errorf("conf change context: %w", err)
		}
		if uint64(upd.ID) != cc.GetNodeId() {
			return nil, fmt.Errorf("conf change for %x carries member %s", cc.GetNodeId(), upd.ID)
		}
	case raftpb.ConfChangeRemoveNode:
	default:
		return nil, fmt.Errorf("unknown conf change type %d", cc.GetType())
	}
	if err := r.cluster.ValidateConfigurationChange(cc, membership.ApplyBoth); err != nil {
		// etcd applies a no-op conf change to raft and moves on.
		return err, nil
	}
	cs, err := nextConfState(r.conf, e.GetIndex(), cc)
	if err != nil {
		return nil, err
	}
	r.conf = cs
	r.hooks.SetConfState(cs)
	id := types.ID(cc.GetNodeId())
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		if ctx.IsPromote {
			r.cluster.PromoteMember(ctx.Member.ID, membership.ApplyBoth)
		} else {
			r.cluster.AddMember(&ctx.Member, membership.ApplyBoth)
		}
	case raftpb.ConfChangeRemoveNode:
		r.cluster.RemoveMember(id, membership.ApplyBoth)
	case raftpb.ConfChangeUpdateNode:
		r.cluster.UpdateRaftAttributes(upd.ID, upd.RaftAttributes, membership.ApplyBoth)
	}
	return nil, nil
}

// nextConfState is raft's own conf change arithmetic (confchange.Changer),
// as raft.applyConfChange runs it.
func nextConfState(cs *raftpb.ConfState, index uint64, cc *raftpb.ConfChange) (*raftpb.ConfState, error) {
	trk := tracker.MakeProgressTracker(1, 0)
	chg := confchange.Changer{Tracker: trk, LastIndex: index}
	cfg, prs, err := confchange.Restore(chg, cs)
	if err != nil {
		return nil, fmt.Errorf("conf state %v: %w", cs, err)
	}
	trk.Config, trk.Progress = cfg, prs
	chg.Tracker = trk
	cfg, prs, err = chg.Simple(cc.AsV2().GetChanges()...)
	if err != nil {
		return nil, fmt.Errorf("conf change: %w", err)
	}
	trk.Config, trk.Progress = cfg, prs
	return trk.ConfState(), nil
}

var v2MemberAttrPath = regexp.MustCompile(`^/0/members/([[:xdigit:]]{1,16})/attributes$`)

// applyV2 applies the two v2 requests of etcd <= 3.5 that reach the v3 db:
// etcd 3.5's applierV2store wrote member attributes and the cluster version
// through RaftCluster to the backend too. Everything else lived only in the
// v2 store, which etcd 3.6+ no longer has.
func (r *replayer) applyV2(req *V2Request) (string, error, error) {
	if req.Method != "PUT" {
		return "", nil, nil
	}
	if m := v2MemberAttrPath.FindStringSubmatch(req.Path); m != nil {
		id, err := strconv.ParseUint(m[1], 16, 64)
		if err != nil {
			return KindV2, nil, err
		}
		var attr membership.Attributes
		if err := json.Unmarshal([]byte(req.Val), &attr); err != nil {
			return KindV2, nil, fmt.Errorf("v2 member attributes: %w", err)
		}
		if err := r.checkMemberKnown(types.ID(id)); err != nil {
			return KindV2, nil, err
		}
		r.cluster.UpdateAttributes(types.ID(id), attr, membership.ApplyBoth)
		return KindV2, nil, nil
	}
	if req.Path == "/0/version" {
		if err := checkClusterVersion(req.Val); err != nil {
			return KindV2, nil, err
		}
		r.cluster.SetVersion(semver.Must(semver.NewVersion(req.Val)), api.UpdateCapability, membership.ApplyBoth)
		return KindV2, nil, nil
	}
	return "", nil, nil
}

// readConsistentIndex re-reads what was committed, so the result reports the
// db as it is on disk, not as the replayer believed it to be.
// ReadConsistentIndex reads consistent_index and term from the meta bucket
// of a healthy db (one boltfix or etcd wrote; never a suspect file), 0 when
// absent.
func ReadConsistentIndex(path string) (uint64, uint64) { return readConsistentIndex(path, 0, 0) }

func readConsistentIndex(path string, ci, term uint64) (uint64, uint64) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return ci, term
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("meta"))
		if b == nil {
			return nil
		}
		if v := b.Get([]byte("consistent_index")); len(v) == 8 {
			ci = beUint64(v)
		}
		if v := b.Get([]byte("term")); len(v) == 8 {
			term = beUint64(v)
		}
		return nil
	})
	return ci, term
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}
