package repair

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/boltfix/boltfix/wal"
	bolt "go.etcd.io/bbolt"
)

// replayStep replays the committed WAL entries above the base's index,
// unless the audit or an anchor already settled the base.
func replayStep(st *state, rep *Report) (bool, string, error) {
	if st.settled {
		return false, "the base was already settled by an anchor or the audit", nil
	}
	if err := replay(st, rep); err != nil {
		return false, "", err
	}
	return true, replaySummary(st), nil
}

// replayFullStep replays the whole WAL from an empty store.
func replayFullStep(st *state, rep *Report) (bool, string, error) {
	if err := replayFull(st, rep); err != nil {
		return false, "", err
	}
	return true, replaySummary(st), nil
}

func replaySummary(st *state) string {
	if st.replay == nil {
		return "nothing replayed"
	}
	r := st.replay
	return fmt.Sprintf("index %d -> %d, revision %d -> %d", r.ConsistentIndexBefore, r.ConsistentIndex, r.RevisionBefore, r.Revision)
}

// replay applies the committed WAL entries above the base's index.
func replay(st *state, rep *Report) error {
	commit := st.log.CommitIndex()
	if commit == 0 {
		rep.Notes = append(rep.Notes, "the WAL holds no HardState: no entry is known to be committed, nothing replayed")
		return nil
	}
	if commit <= st.index {
		st.replayed = true
		rep.Notes = append(rep.Notes, fmt.Sprintf("the db already holds every committed entry (consistent_index %d, WAL commit %d)", st.index, commit))
		return nil
	}
	// The replay's store lacks the lost ranges' records and, when the
	// key bucket's newest records were damaged, whatever lay above the
	// newest salvaged one (finishLost reports that range): entries whose
	// outcome depends on them stop it. With the top intact, the cut-back
	// left the store exactly the state at the db's consistent_index.
	lost := st.lost
	if !st.topIntact {
		lost = append(slices.Clip(lost), [2]int64{st.revision + 1, 0})
	}
	rr, err := replayAfter(st.ctx, st.base, st.log, st.index, lost, st.lg)
	var gap *wal.GapError
	var unc *wal.UncertainError
	switch {
	case errors.As(err, &gap):
		rep.Notes = append(rep.Notes, gap.Error())
	case errors.As(err, &unc):
		rep.Notes = append(rep.Notes, unc.Error())
		st.openTop, st.topReason, st.replayStopped = true, stoppedReason(unc), unc
	case err != nil:
		return fmt.Errorf("replay: %w", err)
	default:
		st.replayed = rr.LastApplied >= commit || rr.ConsistentIndex >= commit
	}
	st.replay, rep.Replay = rr, rr
	// The replayed records are read back from the db, one at a time, and
	// checked against the carved records the cut-back took out.
	produced := map[string]bool{} // the carved ones among them
	cc, err := wal.CompareRecords(st.base, rr.RevisionBefore, func(k []byte) ([]byte, bool) {
		v, ok := st.dropped[string(k)]
		if ok {
			produced[string(k)] = true
		}
		return v, ok
	})
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	rep.Counts.Replayed = cc.Records
	rep.Counts.Regenerated = cc.Matched
	rep.Disagreements = append(rep.Disagreements, cc.Differ...)
	// Carved records above the base that the replay did not produce: the
	// WAL did not reach them (or they were never committed).
	if missed := len(st.dropped) - len(produced); missed > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d carved records above the base revision were not produced by the replay (never committed, or past the WAL's reach)", missed))
	}
	return nil
}

// replayFull replays the whole WAL from an empty store into a new db and
// cross-checks every record it produces against the salvaged db. A damaged
// entry in the middle falls back to the replay above the db's index.
func replayFull(st *state, rep *Report) error {
	commit := st.log.CommitIndex()
	full := filepath.Join(st.work, "full.db")
	rr, err := replayAfter(st.ctx, full, st.log, 0, nil, st.lg)
	var gap *wal.GapError
	switch {
	case errors.As(err, &gap):
		rep.Notes = append(rep.Notes, "full replay stopped: "+gap.Error())
		os.Remove(full)
		return replay(st, rep)
	case err != nil:
		return fmt.Errorf("replay: %w", err)
	}
	salvaged := st.base
	if st.sv != nil && st.sv.LastRevision > rr.Revision {
		// The WAL starts at index 1 but is not the whole history: the db
		// holds revisions no entry wrote (a member restored from a
		// snapshot starts its WAL with conf changes only, and a .snap at
		// their end stands for the data). Replaying it from nothing would
		// drop them.
		rep.Notes = append(rep.Notes, fmt.Sprintf("the WAL starts at index 1 but the db holds revisions up to %d and replaying the WAL from nothing reaches only %d (a snapshot stands for the rest): not the whole history, replayed above the db's consistent_index instead", st.sv.LastRevision, rr.Revision))
		os.Remove(full)
		return replay(st, rep)
	}
	st.base = full
	st.replay, rep.Replay = rr, rr
	rep.DB.Strategy = fmt.Sprintf("the WAL holds every entry from index 1 to its commit %d: replayed the whole history from an empty store", commit)
	st.index, st.revision = 0, 1
	rep.DB.BaseIndex, rep.DB.BaseRevision = st.index, st.revision
	st.replayed = rr.ConsistentIndex >= commit
	st.lost, st.reasons, st.openTop, st.fullReplay = nil, nil, false, true
	// Every replayed record (read back from the new db one at a time) is
	// checked against the salvaged db's record at its revision, if any.
	compare := func(kb *bolt.Bucket) error {
		cc, err := wal.CompareRecords(full, rr.RevisionBefore, func(k []byte) ([]byte, bool) {
			if kb == nil {
				return nil, false
			}
			v := kb.Get(k)
			return v, v != nil
		})
		if err != nil {
			return err
		}
		rep.Counts.Replayed, rep.Counts.Regenerated = cc.Records, cc.Matched
		rep.Disagreements = append(rep.Disagreements, cc.Differ...)
		return nil
	}
	if _, err := os.Stat(salvaged); err != nil {
		return compare(nil)
	}
	db, err := bolt.Open(salvaged, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error { return compare(tx.Bucket([]byte("key"))) })
}
