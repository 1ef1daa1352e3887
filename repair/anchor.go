package repair

import (
	"context"
	"errors"
	"fmt"
	"github.com/boltfix/boltfix/outfile"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/salvage"
	"github.com/boltfix/boltfix/wal"
	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/server/v3/lease/leasepb"
	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// Anchoring: when the db alone leaves revisions uncertain (damaged ranges,
// the newest records) and the WAL does not reach back to index 1, the WAL
// may still reach back to just before the damage. Replay is deterministic,
// so if we find the entry Y that produced some revision R below the damage,
// the salvaged records up to R are the store at Y, and replaying the
// entries after Y rebuilds every later revision. The anchor is accepted only
// if that replay reproduces, byte for byte, every salvaged record above R:
// a wrong anchor (or state the db no longer holds, such as a lease revoked
// since) cannot pass that check.

// maxAnchorTries bounds the anchors tried below one limit;
// maxAnchorLimits the limits (uncertain ranges) tried.
const (
	maxAnchorTries  = 3
	maxAnchorLimits = 16
)

// anchor is a WAL entry known to have produced revision rev.
type anchor struct {
	index, term uint64
	rev         int64
}

// anchorStep tries anchors below the uncertain revisions, unless the
// audit already settled the base. An accepted anchor settles it.
func anchorStep(st *state, rep *Report) (bool, string, error) {
	if st.settled {
		return false, "the audit already settled the base", nil
	}
	limits := anchorLimits(st)
	if len(limits) == 0 {
		return false, "no revision above the compaction is uncertain", nil
	}
	if !tryAnchors(st, rep, limits) {
		return true, fmt.Sprintf("no anchor below revisions %v reproduced the salvaged records", limits), nil
	}
	st.settled = true
	// The replay from the anchor rebuilt everything above it, including
	// any effect the audit found missing after it.
	st.proven = st.audit == nil || st.audit.settledBy(st.index)
	return true, fmt.Sprintf("anchored at WAL index %d (revision %d)", st.index, st.revision), nil
}

// anchorLimits are the revisions below which an anchor would settle
// something: each uncertain range's start, lowest first, then the
// uncertain top; only those above the compaction (below it the salvaged
// records are not the store at any entry: compaction removed what the
// store then held).
func anchorLimits(st *state) []int64 {
	var limits []int64
	for _, r := range st.lost {
		limits = append(limits, r[0])
	}
	if !st.topIntact {
		limits = append(limits, st.revision+1)
	}
	sort.Slice(limits, func(i, j int) bool { return limits[i] < limits[j] })
	limits = slices.Compact(limits)
	if len(limits) > maxAnchorLimits {
		limits = append(limits[:maxAnchorLimits-1], limits[len(limits)-1])
	}
	var out []int64
	for _, l := range limits {
		if l > st.compact+1 {
			out = append(out, l)
		}
	}
	return out
}

// tryAnchors attempts replays from anchors below each limit in turn. On
// success st.base is the anchored, replayed db.
func tryAnchors(st *state, rep *Report, limits []int64) bool {
	for _, limit := range limits {
		if tryAnchorsBelow(st, rep, limit) {
			return true
		}
	}
	return false
}

// tryAnchorsBelow tries anchors that produced a revision below limit: the
// oldest first (they settle the most), then the newest.
func tryAnchorsBelow(st *state, rep *Report, limit int64) bool {
	cands, err := findAnchors(st.base, st.log, limit, st.compact, st.index)
	if err != nil {
		rep.Notes = append(rep.Notes, "anchor search: "+err.Error())
		return false
	}
	if len(cands) > maxAnchorTries {
		cands = append(cands[len(cands)-maxAnchorTries+1:], cands[0])
		for i, j := 0, len(cands)-2; i < j; i, j = i+1, j-1 {
			cands[i], cands[j] = cands[j], cands[i]
		}
	} else {
		for i, j := 0, len(cands)-1; i < j; i, j = i+1, j-1 {
			cands[i], cands[j] = cands[j], cands[i]
		}
	}
	return acceptAnchor(st, rep, cands, fmt.Sprint(limit), "below the damage")
}

// acceptAnchor tries the anchors in order and takes the first whose replay
// reproduces every salvaged record above it.
func acceptAnchor(st *state, rep *Report, cands []anchor, tag, where string) bool {
	for i, a := range cands {
		if salvage.Interrupted(st.ctx, "trying anchors") != nil {
			return false // Run reports the interrupt at its next check
		}
		path := filepath.Join(st.work, fmt.Sprintf("anchor-%s-%d.db", tag, i))
		rr, cc, ok, why := replayFromAnchor(st.base, path, st.log, a, st, st.lg)
		if !ok {
			rep.Notes = append(rep.Notes, fmt.Sprintf("anchor at WAL index %d (revision %d) rejected: %s", a.index, a.rev, why))
			os.Remove(path)
			continue
		}
		st.base = path
		st.replay, rep.Replay = rr, rr
		rep.Counts.Replayed = cc.Records
		regenerated := cc.Matched
		rep.Counts.Regenerated = regenerated
		st.index, st.revision = a.index, a.rev
		rep.DB.BaseIndex, rep.DB.BaseRevision = a.index, a.rev
		rep.DB.Strategy += fmt.Sprintf("; anchored at WAL index %d, which produced revision %d %s: replayed from there and reproduced all %d salvaged records above it byte for byte",
			a.index, a.rev, where, regenerated)
		// Everything above the anchor now comes from the replay.
		lost, kept := lostUpTo(st.lost, a.rev)
		reasons := make([]string, len(kept))
		for i, j := range kept {
			reasons[i] = st.reasons[j]
		}
		st.lost, st.reasons = lost, reasons
		if len(lost) > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("the anchor at revision %d leaves %d lost ranges below it: a key that also had a record there may carry a wrong version or create_revision in records the replay regenerated (their values and mod revisions come from the WAL and are exact)", a.rev, len(lost)))
		}
		st.topIntact, st.openTop = true, true
		st.replayed = rr.ConsistentIndex >= st.log.CommitIndex()
		st.topReason = "revisions after the anchor come only from the WAL"
		if u := st.replayStopped; u != nil {
			st.replayed = false
			st.topReason = stoppedReason(u)
			rep.Notes = append(rep.Notes, u.Error())
		}
		st.dropped = map[string][]byte{}
		return true
	}
	return false
}

// findAnchors lists WAL entries (newest first) that are plain puts whose
// key and value appear in exactly one salvaged record, a whole revision of
// its own, below low and above the compaction, applied to the db (index <=
// its consistent_index). A put whose key and value occur twice in the WAL is
// ambiguous and skipped.
func findAnchors(dbPath string, log *wal.Log, low, compact int64, dbIndex uint64) ([]anchor, error) {
	type rec struct {
		rev  int64
		subs int
	}
	byKV := map[string][]rec{}
	db, err := bolt.Open(dbPath, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	err = db.View(func(tx *bolt.Tx) error {
		kb := tx.Bucket([]byte("key"))
		if kb == nil {
			return nil
		}
		subs := map[int64]int{}
		c := kb.Cursor()
		for k, v := c.Seek(pagewalk.RevisionKey(pagewalk.Revision{Main: compact + 1})); k != nil; k, v = c.Next() {
			rv, ok := pagewalk.ParseRevision(k)
			if !ok || rv.Main >= low {
				break
			}
			subs[rv.Main]++
			var kv mvccpb.KeyValue
			if rv.Tombstone || proto.Unmarshal(v, &kv) != nil {
				continue
			}
			id := string(kv.Key) + "\x00" + string(kv.Value)
			byKV[id] = append(byKV[id], rec{rev: rv.Main})
		}
		for id, rs := range byKV {
			for i := range rs {
				rs[i].subs = subs[rs[i].rev]
			}
			byKV[id] = rs
		}
		return nil
	})
	db.Close()
	if err != nil {
		return nil, err
	}
	seen := map[string]int{}
	type put struct {
		e  *wal.Entry
		id string
	}
	var puts []put
	for _, e := range log.Entries {
		if e.GetIndex() > dbIndex || e.Flag == wal.FlagCRCMismatch {
			continue
		}
		p := anchorPut(wal.DecodeEntry(e))
		if p == nil {
			continue
		}
		id := string(p.Key) + "\x00" + string(p.Value)
		seen[id]++
		puts = append(puts, put{e, id})
	}
	var out []anchor
	for i := len(puts) - 1; i >= 0; i-- {
		p := puts[i]
		rs := byKV[p.id]
		if seen[p.id] != 1 || len(rs) != 1 || rs[0].subs != 1 {
			continue
		}
		out = append(out, anchor{index: p.e.GetIndex(), term: p.e.GetTerm(), rev: rs[0].rev})
	}
	return out, nil
}

// anchorPut returns the one put an entry can write: a plain put, or a txn
// (what Kubernetes writes with) whose branches hold exactly one write, a
// put. Whichever branch ran, the revision it produced is that put alone.
func anchorPut(d wal.DecodedEntry) *pb.PutRequest {
	switch r := d.Request; {
	case r == nil:
		return nil
	case r.Put != nil:
		return r.Put
	case r.Txn != nil:
		var put *pb.PutRequest
		for _, op := range append(slices.Clone(r.Txn.Success), r.Txn.Failure...) {
			switch {
			case op.GetRequestPut() != nil && put == nil:
				put = op.GetRequestPut()
			case op.GetRequestRange() != nil:
			default:
				return nil
			}
		}
		return put
	}
	return nil
}

// replayFromAnchor builds the store at anchor a from the salvaged records up
// to a.rev, replays the WAL after it, and checks the replay reproduced every
// salvaged record above a.rev. The cross-check says what the replay wrote.
func replayFromAnchor(salvaged, path string, log *wal.Log, a anchor, st *state, lg *zap.Logger) (*wal.ReplayResult, wal.CrossCheck, bool, string) {
	var cc wal.CrossCheck
	st.replayStopped = nil
	if err := outfile.CopyFile(salvaged, path); err != nil {
		return nil, cc, false, err.Error()
	}
	above, err := cutToAnchor(path, a, lg)
	if err != nil {
		return nil, cc, false, err.Error()
	}
	for k, v := range st.dropped {
		if rv, ok := pagewalk.ParseRevision([]byte(k)); ok && rv.Main > a.rev {
			above[k] = v
		}
	}
	// The ranges lost below the anchor: records the replay's store lacks.
	lost, _ := lostUpTo(st.lost, a.rev)
	rr, err := replayAfter(st.ctx, path, log, a.index, lost, lg)
	var gap *wal.GapError
	var unc *wal.UncertainError
	if err != nil && !errors.As(err, &gap) && !errors.As(err, &unc) {
		return nil, cc, false, err.Error()
	}
	if unc != nil {
		st.replayStopped = unc
	}
	cc, err = wal.CompareRecords(path, rr.RevisionBefore, func(k []byte) ([]byte, bool) {
		v, ok := above[string(k)]
		return v, ok
	})
	if err != nil {
		return nil, cc, false, err.Error()
	}
	if len(cc.Differ) > 0 || cc.Matched != len(above) {
		return nil, cc, false, fmt.Sprintf("the replay reproduced %d of the %d salvaged records above it (%d differ)", cc.Matched, len(above), len(cc.Differ))
	}
	return rr, cc, true, ""
}

// cutToAnchor turns a copy of the salvaged db into the store at the anchor:
// key records above a.rev are taken out (and returned, to be reproduced),
// consistent_index and term are set to the anchor's, and leases that keys
// at the anchor still name but the db no longer has (revoked since) are put
// back, so that replaying their revocation deletes what it deleted.
func cutToAnchor(path string, a anchor, lg *zap.Logger) (map[string][]byte, error) {
	above := map[string][]byte{}
	if err := dropAbove(path, a.rev, above); err != nil {
		return nil, err
	}
	be := backend.NewDefaultBackend(lg, path)
	defer be.Close()
	tx := be.BatchTx()
	tx.LockOutsideApply()
	have := map[int64]bool{}
	for _, l := range schema.MustUnsafeGetAllLeases(tx) {
		have[l.ID] = true
	}
	latest := map[string]*mvccpb.KeyValue{}
	keys, vals := tx.UnsafeRange(schema.Key, []byte{0}, []byte{0xff}, 0)
	for i, k := range keys {
		var kv mvccpb.KeyValue
		if proto.Unmarshal(vals[i], &kv) != nil {
			continue
		}
		if pagewalk.IsRevisionKey(k) && len(k) == 18 {
			delete(latest, string(kv.Key))
			continue
		}
		latest[string(kv.Key)] = &kv
	}
	for _, kv := range latest {
		if kv.Lease != 0 && !have[kv.Lease] {
			// The TTL only matters to a primary lessor; replay's never
			// expires a lease, so the WAL's revoke is what ends it.
			schema.MustUnsafePutLease(tx, &leasepb.Lease{ID: kv.Lease, TTL: 3600})
			have[kv.Lease] = true
		}
	}
	schema.UnsafeUpdateConsistentIndexForce(tx, a.index, a.term)
	tx.Unlock()
	be.ForceCommit()
	return above, nil
}

// replayAfter replays onto db every committed entry of log above index
// after (skipping entries whose CRC failed: a gap stops the replay there).
// The records it writes stay in db: callers read them back from there
// (wal.CompareRecords above the result's RevisionBefore).
func replayAfter(ctx context.Context, db string, log *wal.Log, after uint64, lost [][2]int64, lg *zap.Logger) (*wal.ReplayResult, error) {
	commit := log.CommitIndex()
	var entries []*wal.Entry
	for _, e := range log.Entries {
		if i := e.GetIndex(); i > after && i <= commit && e.Flag != wal.FlagCRCMismatch {
			entries = append(entries, e)
		}
	}
	var memberID uint64
	if log.Metadata != nil {
		memberID = log.Metadata.NodeID
	}
	return wal.Replay(db, entries, wal.ReplayOptions{Logger: lg, CommitIndex: commit, MemberID: memberID, Context: ctx, Lost: lost})
}

// lostUpTo cuts the closed lost ranges at rev: those that start at or
// below it, ending there at most. kept[i] is the index in lost of out[i].
func lostUpTo(lost [][2]int64, rev int64) (out [][2]int64, kept []int) {
	for j, r := range lost {
		if r[0] <= rev {
			out = append(out, [2]int64{r[0], min(r[1], rev)})
			kept = append(kept, j)
		}
	}
	return out, kept
}

// stoppedReason is the lost-range reason for a replay that stopped before
// an entry whose outcome the db's losses leave open.
func stoppedReason(u *wal.UncertainError) string {
	return fmt.Sprintf("the WAL replay stopped before entry %d: %s; what it did, and every revision after, may differ from etcd's", u.Index, u.Why)
}
