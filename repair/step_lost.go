package repair

import (
	"fmt"

	"github.com/boltfix/boltfix/salvage"
)

// decideLostStep settles the lost ranges and whether the repair is proven
// complete.
func decideLostStep(st *state, rep *Report) (bool, string, error) {
	if st.log == nil {
		rep.Notes = append(rep.Notes, noWALNote(st.p.WAL.Dir, st.p.WAL.DirMissing, st.index))
	}
	st.finishLost(rep)
	st.final = rep.LostRevisions
	if rep.Complete {
		return true, "nothing lost, and proven", nil
	}
	return true, fmt.Sprintf("%d lost ranges, %d reasons the result is not proven", len(rep.LostRevisions), len(rep.Unproven)), nil
}

// finishLost decides the final lost ranges.
func (st *state) finishLost(rep *Report) {
	lost, reasons := st.lost, st.reasons
	top := st.revision
	if st.replay != nil {
		top = st.replay.Revision
	}
	walPresent := st.log != nil
	walCovers := walPresent && len(st.walMissing) == 0 && st.replayed
	switch {
	case !st.dbPresent && (!walPresent || st.log.FirstIndex() > 1 || !walCovers):
		lost = append(lost, [2]int64{1, 0})
		reasons = append(reasons, "no usable db and the WAL does not reach back to the first entry: the history before the WAL is lost")
	case !st.dbPresent:
		// The whole history replayed from index 1.
	case st.fullReplay:
	case !st.topIntact:
		// The db's newest records were damaged: nothing shows whether
		// records between the newest salvaged one and the state at the
		// db's consistent_index are gone.
		lost = append(lost, [2]int64{st.revision + 1, 0})
		reasons = append(reasons, st.topReason)
	case st.openTop && st.replayStopped != nil:
		lost = append(lost, [2]int64{top + 1, 0})
		reasons = append(reasons, st.topReason)
	case st.openTop && !walCovers:
		lost = append(lost, [2]int64{top + 1, 0})
		reasons = append(reasons, st.topReason+"; the WAL does not cover every committed entry after the db's consistent_index")
	}
	if walPresent && len(st.walMissing) > 0 && st.dbPresent && !st.fullReplay {
		g := st.walMissing[0]
		reasons = append(reasons, fmt.Sprintf("WAL entries %d..%d are missing (purged or damaged): the changes they made are lost", g.From, g.To))
		lost = append(lost, [2]int64{top + 1, 0})
	}
	all := make([]salvage.LostRange, len(lost))
	for i := range lost {
		all[i] = salvage.LostRange{From: lost[i][0], To: lost[i][1], Why: reasons[i]}
	}
	if st.auditLost != nil {
		all = append(all, *st.auditLost)
	}
	rep.LostRevisions, rep.LostReasons = salvage.MergeLost(all)
	// Disagreements are resolved in the WAL's favour (its records carry
	// CRCs; the db's do not) and reported, not counted as loss.
	rep.Complete = len(rep.LostRevisions) == 0
	rep.Unproven = append(rep.Unproven, st.unproven()...)
	if len(rep.Unproven) > 0 {
		rep.Complete = false
	}
	if s := st.sv; s != nil && s.Records.Uncertain > 0 && !st.fullReplay {
		// Left-out carved records may have been real: only a full replay
		// settles them.
		rep.Complete = false
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d carved records below the compaction point were left out as possible compaction garbage", s.Records.Uncertain))
	}
}

// unproven says what keeps the result from being proven beyond the lost
// ranges. Complete means proven: the db's claims must hold against the WAL
// (or a replay from index 1 or from an anchor must have rebuilt the
// state), and nothing left out may stand unexplained.
func (st *state) unproven() []string {
	var out []string
	if st.dbPresent && !st.fullReplay && !st.proven {
		switch a := st.audit; {
		case a == nil:
		case !a.Holds:
			out = append(out, "the audit against the WAL failed: "+a.Verdict)
		case !a.Vouched:
			out = append(out, a.Verdict)
		}
	}
	if s := st.sv; s != nil && !st.fullReplay && s.UnverifiedCount > 0 {
		// Values nothing vouches for (damage that can flip value bytes
		// unseen, no identical copy): proven only where the replay
		// regenerated them, above the base revision.
		n := s.UnverifiedCount
		if len(s.Unverified) == n {
			n = 0
			for _, u := range s.Unverified {
				if u.Revision.Main <= st.revision {
					n++
				}
			}
		}
		if n > 0 {
			out = append(out, fmt.Sprintf("%d records hold values nothing vouches for (%s): --json db.salvage.unverified", n, s.UnverifiedReason))
		}
	}
	return out
}
