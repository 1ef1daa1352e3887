package repair

import (
	"errors"
	"fmt"

	"github.com/boltfix/boltfix/wal"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// auditor holds one audit's state: the window of WAL entries, what they
// write and want from the store, and what was found.
type auditor struct {
	a                     *Audit
	log                   *wal.Log
	claimed, term, commit uint64
	// win is the window of entries, without their data: collect and
	// evaluate read each entry's again (each), so that the audit holds
	// one entry's data at a time however long the window is.
	win               []*wal.Entry
	compaction        *wal.Entry // the newest compaction at or below the limit, if the window starts after it
	compactionRev     int64      // the revision it compacted at
	err               error      // an entry of the window could not be read again
	ws                *writeSet
	grants, revokes   map[int64][]uint64
	wanted            map[tripleID]bool
	wantedKeys, watch map[string]bool
	aboves            []abovePut
	belowCount, used  map[tripleID]int
	sv                *storeView
	newestPresent     uint64
	missingIdx        []uint64
	termFailures      int
}

// abovePut is a put of an entry above the claimed index.
type abovePut struct {
	idx uint64
	id  tripleID
}

// auditClaims checks the db's claims in the salvaged store at base against
// the WAL. The window of entries is (newest compaction, min(claim, commit)].
func auditClaims(base string, log *wal.Log, claimed, term uint64) (*Audit, error) {
	au := &auditor{a: &Audit{ClaimedIndex: claimed, ClaimedTerm: term, Failures: []string{}},
		log: log, claimed: claimed, term: term, commit: log.CommitIndex(),
		ws: &writeSet{keys: map[string]uint64{}}, grants: map[int64][]uint64{}, revokes: map[int64][]uint64{},
		wanted: map[tripleID]bool{}, wantedKeys: map[string]bool{}, watch: map[string]bool{},
		belowCount: map[tripleID]int{}, used: map[tripleID]int{}}
	au.window()
	au.collect()
	au.collectAbove()
	if au.err != nil {
		return nil, au.err
	}
	sv, err := readStore(base, au.wanted, au.wantedKeys, au.watch)
	if err != nil {
		return nil, err
	}
	au.sv = sv
	au.checkTerm()
	au.checkCompaction()
	au.evaluate()
	if au.err != nil {
		return nil, au.err
	}
	au.checkAhead()
	au.conclude()
	return au.a, nil
}

// each calls fn with every window entry's index and decoded data, read
// again from the WAL one at a time. window decoded them all once: an
// entry that no longer loads changed under the audit, which stops it.
func (au *auditor) each(fn func(idx uint64, d wal.DecodedEntry)) {
	for _, e := range au.win {
		if au.err != nil {
			return
		}
		d := wal.DecodeEntry(e)
		var le *wal.LoadError
		if errors.As(d.Err, &le) {
			au.err = le
			return
		}
		fn(e.GetIndex(), d)
	}
}

// window picks the entries to check. It starts after the newest
// compaction, damaged entry or gap at or below the limit: before them
// records may be gone for good reasons, or the entries cannot be read.
func (au *auditor) window() {
	limit := min(au.claimed, au.commit)
	prev := uint64(0)
	for _, e := range au.log.Entries {
		i := e.GetIndex()
		if i > limit {
			break
		}
		d := wal.DecodeEntry(e)
		gap := prev != 0 && i != prev+1
		prev = i
		// Entries read after damage in their segment decode, but their
		// CRC chain cannot be checked: they still witness (garbage does not
		// decode into the puts a store holds). An entry that failed its
		// CRC or does not decode may have written anything: the window
		// starts after it.
		damaged := e.Flag == wal.FlagCRCMismatch || d.Err != nil
		if damaged || gap {
			au.win, au.compaction = nil, nil
			if damaged {
				continue
			}
		}
		if d.Request != nil && d.Request.Compaction != nil {
			au.win, au.compaction, au.compactionRev = nil, e, d.Request.Compaction.Revision
			continue
		}
		au.win = append(au.win, e)
	}
	if len(au.win) > 0 {
		au.a.Window = [2]uint64{au.win[0].GetIndex(), au.win[len(au.win)-1].GetIndex()}
	}
}

func (au *auditor) want(p *pb.PutRequest) {
	au.wantedKeys[string(p.Key)] = true
	au.wanted[triple(p.Key, p.Value, p.Lease)] = true
}

// collect records what the window writes and what it wants from the store.
func (au *auditor) collect() {
	au.each(func(idx uint64, d wal.DecodedEntry) {
		r := d.Request
		if r == nil {
			return
		}
		switch {
		case r.Put != nil:
			au.ws.add(idx, r.Put.Key, nil)
			au.want(r.Put)
		case r.DeleteRange != nil:
			au.ws.add(idx, r.DeleteRange.Key, r.DeleteRange.RangeEnd)
			if len(r.DeleteRange.RangeEnd) == 0 {
				au.watch[string(r.DeleteRange.Key)] = true
			}
		case r.Txn != nil:
			au.ws.addOps(idx, r.Txn.Success)
			au.ws.addOps(idx, r.Txn.Failure)
			for _, c := range r.Txn.Compare {
				au.watch[string(c.Key)] = true
			}
			for _, ops := range [][]*pb.RequestOp{r.Txn.Success, r.Txn.Failure} {
				for _, op := range ops {
					if p := op.GetRequestPut(); p != nil {
						au.want(p)
					} else if d := op.GetRequestDeleteRange(); d != nil && len(d.RangeEnd) == 0 {
						au.watch[string(d.Key)] = true
					}
				}
			}
		case r.LeaseGrant != nil:
			au.grants[r.LeaseGrant.ID] = append(au.grants[r.LeaseGrant.ID], idx)
		case r.LeaseRevoke != nil:
			au.revokes[r.LeaseRevoke.ID] = append(au.revokes[r.LeaseRevoke.ID], idx)
			au.ws.revokes = append(au.ws.revokes, idx)
		}
	})
}

// collectAbove counts every put the WAL holds at or below the claim, and
// lists those above it: a store holding their effect is ahead of its claim.
func (au *auditor) collectAbove() {
	for _, e := range au.log.Entries {
		i := e.GetIndex()
		if i > au.commit || e.Flag == wal.FlagCRCMismatch {
			continue
		}
		d := wal.DecodeEntry(e)
		if d.Request == nil {
			continue
		}
		var puts []*pb.PutRequest
		if d.Request.Put != nil {
			puts = append(puts, d.Request.Put)
		} else if d.Request.Txn != nil {
			for _, op := range append(d.Request.Txn.Success, d.Request.Txn.Failure...) {
				if p := op.GetRequestPut(); p != nil {
					puts = append(puts, p)
				}
			}
		}
		for _, p := range puts {
			id := triple(p.Key, p.Value, p.Lease)
			if i <= au.claimed {
				au.belowCount[id]++
			} else {
				au.aboves = append(au.aboves, abovePut{i, id})
				au.want(p)
			}
		}
	}
}

// checkTerm: the term the db claims must be the term of the entry (or
// snapshot) at its index, and no newer than the WAL's HardState.
func (au *auditor) checkTerm() {
	if au.term == 0 {
		return // etcd before 3.5 kept no term
	}
	for _, e := range au.log.Entries {
		if e.GetIndex() == au.claimed && e.Flag != wal.FlagCRCMismatch && e.GetTerm() != au.term {
			au.a.fail(au.claimed, "the db's term %d is not the term %d of the entry at its consistent_index", au.term, e.GetTerm())
		}
	}
	for _, s := range au.log.Snapshots {
		if s.Index == au.claimed && s.Flag == wal.FlagNone && s.Term != au.term {
			au.a.fail(au.claimed, "the db's term %d is not the term %d of the WAL's snapshot at its consistent_index", au.term, s.Term)
		}
	}
	// No entry the db applied can be of a term newer than the WAL's last
	// HardState.
	if hs := au.log.HardState; hs != nil && hs.Flag != wal.FlagCRCMismatch && hs.Term != 0 && au.term > hs.Term {
		au.a.fail(au.claimed, "the db's term %d is newer than the WAL's HardState term %d", au.term, hs.Term)
	}
	au.termFailures = au.a.Missing
}

// checkCompaction: the compaction the window starts after must show in
// the db's compaction revisions.
func (au *auditor) checkCompaction() {
	if au.compaction == nil {
		return
	}
	rev := au.compactionRev
	switch {
	case au.sv.finished >= rev || au.sv.sched >= rev:
		au.a.Checked++
		au.a.Present++
	case rev > au.sv.topMain:
		// A compaction at a future revision is rejected: undecided.
	default:
		au.a.Checked++
		au.a.fail(au.compaction.GetIndex(), "compaction at revision %d, but the db's finishedCompactRev is %d and scheduledCompactRev %d", rev, au.sv.finished, au.sv.sched)
	}
}

func (au *auditor) present(idx uint64) {
	au.a.Checked++
	au.a.Present++
	au.newestPresent = max(au.newestPresent, idx)
}

func (au *auditor) missing(idx uint64, format string, args ...any) {
	au.a.Checked++
	au.a.fail(idx, format, args...)
	au.missingIdx = append(au.missingIdx, idx)
}

// checkPut: a put leaves a record with its key, value and lease; n puts of
// one triple leave n records.
func (au *auditor) checkPut(idx uint64, p *pb.PutRequest) {
	if p.IgnoreValue || p.IgnoreLease {
		return
	}
	id := triple(p.Key, p.Value, p.Lease)
	au.used[id]++
	if au.sv.counts[id] >= au.used[id] {
		au.present(idx)
		return
	}
	au.missing(idx, "put of %q (%d bytes, lease %x): no record in the store holds it", printable(p.Key), len(p.Value), p.Lease)
}

// leaseAt says whether lease id existed when entry idx ran, when known: a
// put to a lease that does not exist is rejected and leaves nothing.
func (au *auditor) leaseAt(id int64, idx uint64) bool {
	if id == 0 {
		return true
	}
	grantedBefore, grantedAfter, revokedAfter := false, false, false
	for _, g := range au.grants[id] {
		grantedBefore = grantedBefore || g < idx
		grantedAfter = grantedAfter || g > idx
	}
	for _, r := range au.revokes[id] {
		revokedAfter = revokedAfter || r > idx
	}
	return au.sv.leases[id] && !grantedAfter || grantedBefore && revokedAfter
}

// checkDelete: a delete of a key no later entry writes leaves its newest
// record a tombstone, or no record.
func (au *auditor) checkDelete(idx uint64, key []byte) {
	t, ok := au.sv.top[string(key)]
	if !ok || au.ws.writtenAfter(key, idx, t.lease != 0 || t.tombstone) {
		return
	}
	switch {
	case t.main != 0 && !t.tombstone:
		au.missing(idx, "delete of %q: the store's newest record of it (revision %d) is a put", printable(key), t.main)
	case t.main != 0:
		au.present(idx)
	}
}

// evaluate checks the window's effects, oldest first.
func (au *auditor) evaluate() {
	au.each(func(idx uint64, d wal.DecodedEntry) {
		r := d.Request
		if r == nil {
			return
		}
		switch {
		case r.Put != nil:
			if au.leaseAt(r.Put.Lease, idx) {
				au.checkPut(idx, r.Put)
			}
		case r.DeleteRange != nil && len(r.DeleteRange.RangeEnd) == 0:
			au.checkDelete(idx, r.DeleteRange.Key)
		case r.Txn != nil:
			au.checkTxn(idx, r.Txn)
		case r.LeaseGrant != nil && r.LeaseGrant.ID != 0:
			id := r.LeaseGrant.ID
			if au.sv.leases[id] {
				au.present(idx)
			} else if !laterThan(au.revokes[id], idx) {
				au.missing(idx, "lease %x granted, but the store has no such lease", id)
			}
		case r.LeaseRevoke != nil:
			id := r.LeaseRevoke.ID
			if !au.sv.leases[id] {
				if len(au.grants[id]) > 0 && !laterThan(au.grants[id], idx) {
					au.present(idx)
				}
			} else if !laterThan(au.grants[id], idx) {
				au.missing(idx, "lease %x revoked, but the store still has it", id)
			}
		}
	})
}

// checkTxn checks the branch a txn is known to have taken. A txn whose
// puts name a lease not known to exist then may have been rejected whole.
func (au *auditor) checkTxn(idx uint64, t *pb.TxnRequest) {
	branch, ok := txnBranch(t, idx, au.sv, au.ws)
	if !ok {
		// Undecided: a record holding a success put's key, value and lease
		// still shows the txn ran (one-sided: its absence shows nothing).
		for _, op := range t.Success {
			if p := op.GetRequestPut(); p != nil && !p.IgnoreValue && !p.IgnoreLease {
				id := triple(p.Key, p.Value, p.Lease)
				if au.sv.counts[id] > au.used[id] {
					au.used[id]++
					au.present(idx)
				}
			}
		}
		return
	}
	for _, op := range branch {
		if p := op.GetRequestPut(); p != nil && !au.leaseAt(p.Lease, idx) || op.GetRequestTxn() != nil {
			return
		}
	}
	for _, op := range branch {
		if p := op.GetRequestPut(); p != nil {
			au.checkPut(idx, p)
		} else if dr := op.GetRequestDeleteRange(); dr != nil && len(dr.RangeEnd) == 0 {
			au.checkDelete(idx, dr.Key)
		}
	}
}

// checkAhead: the store holds a record that only a put above the claim
// can have written (one record of its key, value and lease, and no put at
// or below the claim that the WAL shows writing it).
func (au *auditor) checkAhead() {
	for _, ab := range au.aboves {
		if au.sv.counts[ab.id] == 1 && au.belowCount[ab.id] == 0 {
			au.a.Ahead = true
			au.a.fail(ab.idx, "the store holds this entry's put, above the db's consistent_index %d (revision %d): the db is newer than it claims", au.claimed, au.sv.minRev[ab.id])
			return
		}
	}
}

// conclude decides Holds, Behind and the verdict.
func (au *auditor) conclude() {
	a := au.a
	// Behind: an effect missing after the newest effect held.
	for _, i := range au.missingIdx {
		if i > au.newestPresent {
			a.Behind, a.FirstMissing = true, i
			break
		}
	}
	a.NewestHeld, a.missingIdx = au.newestPresent, au.missingIdx
	a.Holds = a.Missing == 0
	a.termOnly = au.termFailures > 0 && a.Missing == au.termFailures
	a.Vouched = a.Holds && a.Present > 0
	switch {
	case len(au.win) == 0 && au.compaction == nil:
		a.Verdict = fmt.Sprintf("the WAL holds no readable entry at or below the db's consistent_index %d: nothing can vouch for the db's claims", au.claimed)
	case a.Holds && a.Present == 0:
		a.Verdict = fmt.Sprintf("no effect of WAL entries %d..%d could be decided from the store: the db's claims are not proven", a.Window[0], a.Window[1])
	case a.Holds:
		a.Verdict = fmt.Sprintf("the store holds the effect of every decidable WAL entry %d..%d (%d checked): the db's consistent_index %d holds", a.Window[0], a.Window[1], a.Checked, au.claimed)
	case a.Ahead:
		a.Verdict = fmt.Sprintf("the store holds effects of WAL entries above its consistent_index %d: the db is newer than it claims", au.claimed)
	case a.Behind && au.newestPresent == 0:
		a.Verdict = fmt.Sprintf("the db claims consistent_index %d but holds the effect of none of the %d decidable WAL entries %d..%d: it is older than the WAL's reach", au.claimed, a.Checked, a.Window[0], a.Window[1])
	case a.Behind:
		a.Verdict = fmt.Sprintf("the db claims consistent_index %d but lacks the effects of WAL entries after %d (first missing: %d): it is older than it claims", au.claimed, au.newestPresent, a.FirstMissing)
	case a.Missing > au.termFailures:
		a.Verdict = fmt.Sprintf("the store lacks the effects of %d WAL entries at or below index %d while holding newer ones: records were lost to damage", a.Missing-au.termFailures, au.newestPresent)
	default:
		a.Verdict = "the db's term disagrees with the WAL"
	}
	if au.claimed > au.commit && a.Holds {
		a.Verdict += fmt.Sprintf("; entries %d..%d above the WAL's commit cannot be checked: the db claims them on its own", au.commit+1, au.claimed)
	}
	// What the WAL cannot vouch for: revisions below the lowest one a WAL
	// put at or below the claim is known to have produced.
	low := int64(0)
	for id, n := range au.sv.counts {
		if n == 1 && au.belowCount[id] > 0 {
			if r := au.sv.minRev[id]; low == 0 || r < low {
				low = r
			}
		}
	}
	if a.Holds && low > 1 {
		a.Unvouched = fmt.Sprintf("revisions 1..%d predate the WAL entries checked (%d..%d; the WAL does not reach back further, or a compaction ends what it can show): only the db's own structure vouches for them", low-1, a.Window[0], a.Window[1])
	}
}
