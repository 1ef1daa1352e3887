package repair

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/salvage"
	"github.com/boltfix/boltfix/wal"
	bolt "go.etcd.io/bbolt"
)

// salvageStep salvages the scanned db into the work copy (base) and takes
// out what etcd's code would crash on. Without the cut-back step (the key
// bucket's top was damaged) every salvaged record stays: the base is then
// the newest salvaged revision, and what lies above it is uncertain.
func salvageStep(st *state, rep *Report) (bool, string, error) {
	p := st.p
	sopts := salvage.Options{Aggressive: st.opts.Aggressive, MaxListed: 100, PageSize: st.opts.PageSize,
		Progress: st.opts.Progress, Context: st.ctx,
		// check-output runs bbolt's check on the final db, which holds
		// every page the salvage wrote plus the restore's.
		SkipCheck: true}
	sopts.CompactHint, sopts.CompactHintSource = walCompaction(p.scan, st.log)
	srep, err := salvage.FromScan(p.scan, p.in.db, st.base, sopts)
	if err != nil {
		var ie *salvage.InterruptedError
		if errors.As(err, &ie) {
			return false, "", err
		}
		return false, "", fmt.Errorf("salvage: %w", err)
	}
	st.sv = srep
	rep.DB.Salvage = srep
	rep.Counts.Reached, rep.Counts.Carved = srep.Records.Reached, srep.Records.Carved
	st.compact = srep.CompactRevision
	if srep.ConsistentIndex != nil {
		st.index = *srep.ConsistentIndex
	}
	if srep.Term != nil {
		st.term = *srep.Term
	}
	rep.DB.BaseIndex = st.index
	leftOut, err := sanitizeStep(st, rep)
	if err != nil {
		return false, "", err
	}
	if !p.DB.TopIntact {
		st.topReason = "the db's newest records were damaged: revisions after the newest salvaged one may be lost"
		st.revision = srep.LastRevision
		rep.DB.BaseRevision = st.revision
		rep.DB.Strategy = fmt.Sprintf("the key bucket's newest records were damaged: start from every salvaged record (newest %d) at consistent_index %d", srep.LastRevision, st.index)
	}
	for i, r := range srep.LostRevisions {
		if r[1] == 0 {
			// An open top: the replay may close it (decide-lost decides).
			st.openTop = true
			if st.topReason == "" {
				st.topReason = srep.LostReasons[i]
			}
			continue
		}
		st.lost = append(st.lost, r)
		st.reasons = append(st.reasons, srep.LostReasons[i])
	}
	return true, fmt.Sprintf("%d records reached, %d carved, %d left out (etcd would crash on them), %d lost ranges",
		srep.Records.Reached, srep.Records.Carved, leftOut, len(srep.LostRevisions)), nil
}

// sanitizeStep takes out of the base what etcd's code would crash on: a
// lost revision each when the record had one, otherwise a reason the
// repair is not proven. It returns how many records it took out.
func sanitizeStep(st *state, rep *Report) (int, error) {
	bad, err := sanitizeDB(st.base)
	if err != nil {
		return 0, fmt.Errorf("validate the salvaged db: %w", err)
	}
	noRev, other := 0, 0
	for i, b := range bad {
		switch {
		case i < maxListedInvalid:
			rep.Notes = append(rep.Notes, fmt.Sprintf("left out %s record %x: %s (etcd's code would crash on it)", b.Bucket, b.Key, b.Why))
		case i == maxListedInvalid:
			rep.Notes = append(rep.Notes, fmt.Sprintf("left out %d more records etcd's code would crash on", len(bad)-maxListedInvalid))
		}
		switch {
		case b.Bucket == "key" && b.Rev > 0:
			st.lost = append(st.lost, [2]int64{b.Rev, b.Rev})
			st.reasons = append(st.reasons, fmt.Sprintf("the record at revision %d could not be given to etcd: %s", b.Rev, b.Why))
		case b.Bucket == "key":
			noRev++
		default:
			other++
		}
	}
	if noRev > 0 {
		rep.Unproven = append(rep.Unproven, fmt.Sprintf("%d key-bucket entries with no revision were left out (see notes): what they held is unknown", noRev))
	}
	if other > 0 {
		rep.Unproven = append(rep.Unproven, fmt.Sprintf("%d meta or lease records etcd would crash on were left out (see notes)", other))
	}
	return len(bad), nil
}

// cutBackStep: where the tree's key bucket is intact at its top, its
// newest record is the revision at consistent_index: carved records above
// it are later commits (or never committed) and the replay must recreate
// them, so they are taken out of the base.
func cutBackStep(st *state, rep *Report) (bool, string, error) {
	top := st.p.DB.NewestRevision
	if st.sv != nil && st.sv.LastRevision > 0 && top > st.sv.LastRevision {
		// The walked tree's newest key was not written: a record that
		// disagrees with its own revision (a flipped bit in the key),
		// left out by the salvage. The newest written one is the top.
		top = st.sv.LastRevision
	}
	st.revision = top
	rep.DB.BaseRevision = top
	if err := dropAbove(st.base, top, st.dropped); err != nil {
		return false, "", err
	}
	rep.Counts.Carved -= len(st.dropped)
	rep.DB.Strategy = fmt.Sprintf("the walked tree's key bucket is intact at the top: start from its newest revision %d at consistent_index %d", top, st.index)
	st.topIntact = true
	// Nothing above the base revision is claimed by the db any more: the
	// WAL decides.
	st.openTop = true
	st.topReason = "revisions after the db's state at its consistent_index come only from the WAL"
	return true, fmt.Sprintf("%d carved records above revision %d taken out", len(st.dropped), top), nil
}

// openKeyDamage reports damage in the key bucket whose lost range is open
// at the top. (A walked tree that predates the last commit is still intact
// at its own top: what came after it is cut back and replayed.)
func openKeyDamage(res *pagewalk.Result) bool {
	for _, f := range res.Report.Findings {
		if f.Lost != nil && f.Lost.Revisions != nil && f.Lost.Revisions.To == 0 && len(f.Bucket) == 1 && f.Bucket[0] == "key" {
			return true
		}
	}
	return false
}

// dropAbove deletes key-bucket records above main revision rev from the
// healthy db at path, keeping them in out for the cross-check.
func dropAbove(path string, rev int64, out map[string][]byte) error {
	db, err := bolt.Open(path, 0o600, keepFreelist)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("key"))
		if b == nil {
			return nil
		}
		start := pagewalk.RevisionKey(pagewalk.Revision{Main: rev + 1})
		c := b.Cursor()
		var keys [][]byte
		for k, v := c.Seek(start); k != nil; k, v = c.Next() {
			out[string(k)] = bytes.Clone(v)
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// walCompaction is the compaction revision to judge carved records
// against when the db's meta bucket, which holds it, was not reached: the
// WAL's newest compaction entry. kube-apiserver compacts every five
// minutes and a WAL covers hours, so it nearly always holds one. It is at
// or above the db's own (etcd applies entries in order, and the db's was
// one of them or older): a higher revision only holds more carved records
// to the evidence, so nothing compacted comes back. 0 when the meta bucket
// was reached or the WAL holds no compaction.
func walCompaction(res *pagewalk.Result, log *wal.Log) (int64, string) {
	if log == nil || res.Bucket("meta") != nil {
		return 0, ""
	}
	var rev int64
	var index uint64
	for _, e := range log.Entries {
		if e.Flag == wal.FlagCRCMismatch {
			continue
		}
		if d := wal.DecodeEntry(e); d.Request != nil && d.Request.Compaction != nil && d.Request.Compaction.Revision > rev {
			rev, index = d.Request.Compaction.Revision, e.GetIndex()
		}
	}
	if rev == 0 {
		return 0, ""
	}
	return rev, fmt.Sprintf("the WAL's newest compaction (entry %d): the db's meta bucket was not reached", index)
}
