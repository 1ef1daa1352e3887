package salvage

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/boltfix/boltfix/kube"
	"github.com/boltfix/boltfix/pagewalk"
)

// A carved key-bucket record below the compaction point is either live
// (compaction kept it: the newest record of its key at or below the
// compaction, not a tombstone) or compaction garbage left in a free page.
// Keeping garbage can bring a deleted object back; leaving a live record out
// loses an object that exists only in the db (the WAL no longer reaches
// back that far). Each record is decided by what the file proves, and the
// proof is counted in the report (docs/recovery.md §3, "Evidence about a
// carved record").

// verdict is the decision on one carved record below the compaction.
type verdict int

const (
	noEvidence verdict = iota
	// Compaction removed it:
	deadTombstone  // a tombstone below the compaction
	deadSuperseded // its key has a newer record at or below the compaction
	deadSpanned    // a valid leaf that spans its revision lacks it
	deadLeaseGone  // its lease is gone: its key was deleted with it
	deadNotTiled   // the live leaves under the damage are known; it is on none
	// Compaction kept it:
	liveTiled // it lies on a leaf of the proven live tiling
	liveAbove // its key has a record above the compaction and it is the newest at or below
)

func (v verdict) dead() bool { return v >= deadTombstone && v <= deadNotTiled }
func (v verdict) live() bool { return v == liveTiled || v == liveAbove }

// count adds v to the report's evidence counts.
func (v verdict) count(e *EvidenceCounts) {
	switch v {
	case deadTombstone:
		e.Tombstone++
	case deadSuperseded:
		e.SupersededNewer++
	case deadSpanned:
		e.SpannedLacking++
	case deadLeaseGone:
		e.LeaseGone++
	case deadNotTiled:
		e.NotInLiveTiling++
	case liveTiled:
		e.LiveTiling++
	case liveAbove:
		e.NewerAboveCompaction++
	default:
		e.NoEvidence++
	}
}

// leaseSet returns the lease ids in the walked tree's lease bucket, and
// whether that bucket can be trusted to list every lease (it was reached
// without damage).
func leaseSet(res *pagewalk.Result) (map[int64]bool, bool) {
	b := res.Bucket("lease")
	if b == nil || b.Damaged {
		return nil, false
	}
	ids := map[int64]bool{}
	err := res.ForEach(b, func(k, _ []byte) error {
		if len(k) == 8 {
			ids[int64(binary.BigEndian.Uint64(k))] = true
		}
		return nil
	})
	return ids, err == nil
}

// firstEvidence decides what the file proves about each held record
// without the tiling: a tombstone, a newer record of its key anywhere, a
// valid leaf that spans it and lacks it, a lease that is gone. held is in
// revision-key order.
func firstEvidence(held []carved, ks *keySpace, cr *carveResult, leases map[int64]bool, leasesKnown bool) []verdict {
	out := make([]verdict, len(held))
	for i, c := range held {
		switch {
		case c.rev.Tombstone:
			out[i] = deadTombstone
		case supersededAtOrBelow(c, cr.etcdKey(&c), ks, &cr.witness):
			out[i] = deadSuperseded
		case c.lease != 0 && leasesKnown && !leases[c.lease] && !hasAbove(ks, cr.etcdKey(&c)):
			// The lease went, and its keys with it. Had that happened
			// above the compaction, the tombstone would be there (and
			// this record the one compaction kept).
			out[i] = deadLeaseGone
		}
	}
	// A valid leaf written after r was compacted spans r and lacks it:
	// records are only appended at the top and only removed by
	// compaction, so any leaf whose keys run past r held r when written,
	// unless compaction had removed it.
	for _, lp := range cr.leaves {
		first, last := lp.first(), lp.last()
		i := sort.Search(len(held), func(i int) bool { return cmpRev(held[i].rev, first) > 0 })
		for ; i < len(held) && cmpRev(held[i].rev, last) < 0; i++ {
			if out[i] == noEvidence && !lp.has(held[i].rev) {
				out[i] = deadSpanned
			}
		}
	}
	return out
}

func hasAbove(ks *keySpace, etcdKey []byte) bool {
	s := ks.keys.get(etcdKey)
	return s != nil && s.hasAbove
}

// has reports whether the leaf holds revision key k.
func (l *leafPage) has(k pagewalk.Revision) bool {
	i := sort.Search(len(l.revs), func(i int) bool { return cmpRev(l.revs[i], k) >= 0 })
	return i < len(l.revs) && l.revs[i] == k
}

// supersededAtOrBelow reports whether c's key has a newer record at or below
// the compaction anywhere in the file (reached, carved, or a copy inside
// the intact tree's range): compaction keeps only the newest.
func supersededAtOrBelow(c carved, etcdKey []byte, ks *keySpace, witness *keyTable) bool {
	if s := ks.keys.get(etcdKey); s != nil && s.hasLE && revLess(c.rev, s.maxLE) {
		return true
	}
	// The witnesses kept are the newest at or below the compaction the
	// carve judged against, ks.compact (compactRevision).
	s := witness.get(etcdKey)
	return s != nil && s.hasLE && s.maxLE.Main <= ks.compact && revLess(c.rev, s.maxLE)
}

// uncertainReason says, for a record with no evidence, why none applied.
func uncertainReason(c carved, compact int64) string {
	if compact == unknownCompact {
		return "carved, with the compaction point unknown (the meta bucket was not reached): no newer record of its key, no leaf written later that spans it, and the live leaves over its range are not known: it may have been deleted and compacted"
	}
	return fmt.Sprintf("carved below the compaction revision %d: no newer record of its key, no leaf written later that spans it, its lease (if any) still exists, and the live leaves over its range are not known: it may have been deleted and compacted", compact)
}

// ambiguousReason is the reason given for a record that some answers of
// its range's live tiling take and others not.
const ambiguousReason = "two copies of its key range disagree on it and nothing in the file tells which copy is newer: it may be live (appended after the copy that lacks it was written), or deleted and compacted (removed from a newer copy); its revision is reported lost"

// judgeHeld decides every carved record below the compaction point, writes
// the live ones (and, with --aggressive, the undecided ones, flagged), and
// counts the evidence.
func judgeHeld(res *pagewalk.Result, cr *carveResult, ks *keySpace, held []carved, w *dbWriter, rep *Report, bc *BucketCount, opts Options) error {
	leases, leasesKnown := leaseSet(res)
	verdicts := firstEvidence(held, ks, cr, leases, leasesKnown)
	dead := map[pagewalk.Revision]bool{}
	for i, v := range verdicts {
		if v.dead() {
			dead[held[i].rev] = true
		}
	}
	var tilings []*tiling
	if !truncated(res.Report) {
		// A truncation destroys the pages it cuts: stale copies could
		// stand in for a live page that is gone.
		tilings = liveTilings(res, cr, dead, ks.compact)
	}
	ks.tiled = map[int]bool{}
	for _, t := range tilings {
		for _, f := range t.findings {
			ks.tiled[f] = true
		}
		ks.closeTiling(t)
	}
	open := unresolvedBelow(res, ks)
	defer ks.settleDecided()
	for i, c := range held {
		etcdKey := cr.etcdKey(&c)
		v := verdicts[i]
		ambiguous := false
		if v == noEvidence {
			n := len(ks.ambiguous)
			v = decideByTilingOrAbove(c, etcdKey, ks, tilings, open)
			ambiguous = len(ks.ambiguous) > n
		}
		v.count(&rep.Evidence)
		if v != noEvidence {
			ks.decide(c.rev)
		}
		if verdictHook != nil {
			verdictHook(c.rev, string(etcdKey), v)
		}
		switch {
		case v.dead():
			rep.Records.Compacted++
			bc.LeftOut++
			continue
		case v == noEvidence:
			rep.Records.Uncertain++
			if len(rep.Uncertain) < opts.MaxListed {
				reason := uncertainReason(c, ks.compact)
				if ambiguous {
					reason = ambiguousReason
				}
				rep.Uncertain = append(rep.Uncertain, UncertainRecord{Revision: c.rev, Key: string(etcdKey), Page: c.page, Kept: opts.Aggressive, Reason: reason})
			}
			if !opts.Aggressive {
				s := ks.keys.get(etcdKey)
				s.uncertain = true
				val, err := cr.value(&c)
				if err != nil {
					return err
				}
				if o, err := kube.Describe(val); err == nil {
					ks.keys.setObject(s, o.String())
				}
				bc.LeftOut++
				continue
			}
		}
		rep.Records.Carved++
		bc.Carved++
		rep.Records.Written++
		ks.wrote(etcdKey, c.rev)
		revKey := c.revKey()
		val, err := cr.value(&c)
		if err != nil {
			return err
		}
		witnessCarved(rep, cr, &c, etcdKey, revKey, val)
		if err := w.put(keyPath, revKey, val, 1.0); err != nil {
			return err
		}
	}
	return nil
}

// decideByTilingOrAbove decides a record the first evidence left open: by
// the live tiling of its range, else by a record of its key above the
// compaction (compaction kept the newest at or below it: this one, unless
// a newer one lies in a range that may be lost).
func decideByTilingOrAbove(c carved, etcdKey []byte, ks *keySpace, tilings []*tiling, open [][2]int64) verdict {
	for _, t := range tilings {
		if t.contains(c.rev) {
			switch {
			case t.isLive(c.rev):
				return liveTiled
			case t.maybe[c.rev]:
				ks.ambiguous = append(ks.ambiguous, c.rev.Main)
				return noEvidence
			}
			return deadNotTiled
		}
	}
	s := ks.keys.get(etcdKey)
	if s == nil || !s.hasAbove {
		return noEvidence
	}
	for _, r := range open {
		if r[1] == 0 || r[1] > c.rev.Main {
			if r[0] <= ks.compact {
				return noEvidence
			}
		}
	}
	return liveAbove
}

// unresolvedBelow lists the main-revision ranges at or below the compaction
// that damage no tiling resolved may have lost records in.
func unresolvedBelow(res *pagewalk.Result, ks *keySpace) [][2]int64 {
	var out [][2]int64
	if res.Bucket("key") == nil || olderTree(res.Report) != "" || ks.distrust != "" {
		out = append(out, [2]int64{1, 0})
	}
	for i, f := range res.Report.Findings {
		if f.Lost == nil || f.Lost.Revisions == nil || ks.tiled[i] {
			continue
		}
		if f.Lost.Revisions.From <= ks.compact {
			out = append(out, [2]int64{f.Lost.Revisions.From, f.Lost.Revisions.To})
		}
	}
	return out
}

// closeTiling records that consecutive live records of a tiling are
// neighbours in the live tree: nothing lay between them.
func (ks *keySpace) closeTiling(t *tiling) {
	var prev pagewalk.Revision
	ok := t.after != nil
	if ok {
		prev = *t.after
	}
	for _, rev := range t.recs {
		if ok {
			ks.closes(prev, rev)
		}
		prev, ok = rev, true
	}
	if ok && t.before != nil {
		ks.closes(prev, *t.before)
	}
}

// truncated reports whether the file ends before its high-water mark.
func truncated(r *pagewalk.Report) bool {
	for _, f := range r.Findings {
		if f.Kind == pagewalk.KindTruncated {
			return true
		}
	}
	return false
}

// verdictHook, when set (by tests), sees every decision on a held record.
var verdictHook func(rev pagewalk.Revision, key string, v verdict)

// A tree that walks clean is a claim too: that it is the last state of the
// key bucket. Records on unreached pages inside its range that it lacks
// are, by its word, copies of records compaction removed. Each such record
// is held to the same evidence as a carved one; one above the compaction
// (never removed), or many below it with no sign of removal, mean the tree
// is not the last state (a torn copy of the file, an overwritten root), and
// it is not taken on its word (docs/recovery.md §3, "A tree is a claim").

// treeClaimSlack is how many unexplained absent records a genuine last
// state may show: objects deleted long ago whose tombstones are gone from
// every page, while an old copy of their last record survives in a gap
// between live leaves.
const treeClaimSlack = 32

// treeClaim says why the walked key bucket is not the last state of the
// data, or "".
func treeClaim(res *pagewalk.Result, cr *carveResult, ks *keySpace) string {
	if len(ks.absentOutside) == 0 {
		return ""
	}
	above, unexplained := 0, 0
	var below []carved
	for _, c := range ks.absentOutside {
		if c.rev.Main > ks.compact {
			above++
		} else {
			below = append(below, c)
		}
	}
	leases, leasesKnown := leaseSet(res)
	var unexplainedRevs []int64
	for i, v := range firstEvidence(below, ks, cr, leases, leasesKnown) {
		if !v.dead() {
			unexplained++
			unexplainedRevs = append(unexplainedRevs, below[i].rev.Main)
		}
	}
	unexplained -= witnessesLost(res, ks, unexplainedRevs)
	reached := 0
	if kb := res.Bucket("key"); kb != nil {
		reached = kb.Records
	}
	if treeClaimHook != nil {
		treeClaimHook(above, unexplained, reached)
	}
	switch {
	case above > 0:
		return fmt.Sprintf("%d records above the compaction point lie outside the walked key bucket, inside its range: records there are never removed, so the tree is not the last state of the data", above)
	case unexplained > max(treeClaimSlack, reached/50):
		return fmt.Sprintf("%d records inside the walked key bucket's range are missing from it with no sign that compaction removed them (it holds %d): the tree is not the last state of the data", unexplained, reached)
	}
	return ""
}

// witnessesLost says how many of the unexplained absent records (their
// main revisions) a cut may have taken the sign of removal from: the newer
// record or tombstone of its key that showed it was compacted lay at a
// later revision at or below the compaction, and the tree lost the records
// of such revisions past the end of the file (a truncated file loses them
// all over the key range). Each lost revision can have held the sign of at
// most one record per sub-revision; counting one per revision errs towards
// distrust. Only pages past the end count: a pointer that reaches a wrong
// page (reached twice, out of order) may have walked into an older copy of
// a subtree, which is what the claim is there to catch.
func witnessesLost(res *pagewalk.Result, ks *keySpace, revs []int64) int {
	var lost [][2]int64
	budget := int64(0)
	for _, f := range res.Report.Findings {
		if f.Lost == nil || f.Lost.Revisions == nil || len(f.Bucket) != 1 || f.Bucket[0] != "key" {
			continue
		}
		if f.Kind != pagewalk.KindChildPastEOF && f.Kind != pagewalk.KindOverflowPastEOF {
			continue
		}
		from, to := f.Lost.Revisions.From, f.Lost.Revisions.To
		if from > ks.compact {
			continue
		}
		if to == 0 || to > ks.compact {
			to = ks.compact
		}
		lost = append(lost, [2]int64{from, to})
		budget += to - from + 1
	}
	excusable := int64(0)
	for _, r := range revs {
		for _, l := range lost {
			if l[1] > r {
				excusable++
				break
			}
		}
	}
	return int(min(excusable, budget))
}

// treeClaimHook, when set (by tests), sees the counts treeClaim judged.
var treeClaimHook func(above, unexplained, reached int)
