package repair

import (
	"fmt"
	"os"
	"slices"

	"github.com/boltfix/boltfix/salvage"
)

// The audit: a db says of itself that it holds the effect of every entry up
// to its consistent_index. Nothing in the db proves it: an older copy with a
// newer meta bucket (a cp of a live file, a lost write of the newest pages)
// says the same. The WAL is the witness. Every committed entry it holds at
// or below the claimed index must have left its effect in the salvaged
// store, and no entry above it may have. Only effects that can be decided
// from the store alone are checked:
//   - a put (plain, or in the branch a txn is known to take) leaves a record
//     with its key, value and lease: revision records are immutable, and
//     nothing removes one but a compaction, so the window checked starts
//     after the newest compaction entry;
//   - a txn's branch is known when each compare is "mod_revision(k) = X" on
//     a key no later entry of the window writes: then the store's newest
//     record of k is k's state when the txn ran (X = 0: no record, or a
//     tombstone);
//   - a delete of a key no later entry writes leaves its newest record a
//     tombstone (or no record);
//   - a lease grant leaves the lease (unless revoked later), a revoke
//     removes it (unless granted again);
//   - a compaction leaves scheduled/finishedCompactRev at or above its
//     revision.
// A db whose claim fails is what it really is: the anchor search finds the
// newest entry whose effect it holds (a put that produced one of its
// revisions) and replays from there, accepted only if the replay reproduces
// every salvaged record above it; without an anchor, what came after the
// db's newest revision is reported lost.

// maxAuditFailures bounds the failures listed in the report.
const maxAuditFailures = 20

// Audit is what the WAL says about the db's claims.
type Audit struct {
	// ClaimedIndex and ClaimedTerm are the db's consistent_index and term.
	ClaimedIndex uint64 `json:"claimed_index"`
	ClaimedTerm  uint64 `json:"claimed_term"`
	// Window is the range of WAL entries whose effects were checked;
	// [0, 0] when the WAL holds none at or below the claimed index.
	Window [2]uint64 `json:"window"`
	// Checked counts the effects decided; Present those found, Missing
	// those the store lacks.
	Checked int `json:"checked"`
	Present int `json:"present"`
	Missing int `json:"missing"`
	// Failures says which witness contradicts the db and how (the first
	// few).
	Failures []string `json:"failures"`
	// Holds: no witness contradicts the db's claims. Vouched: and the WAL
	// confirmed at least one effect (a claim nothing could check is not
	// proven).
	Holds   bool `json:"holds"`
	Vouched bool `json:"vouched"`
	// Behind: the db lacks effects of entries after the newest one it
	// holds: it is older than it claims. Ahead: it holds the effect of an
	// entry above its claim.
	Behind bool `json:"behind"`
	Ahead  bool `json:"ahead"`
	// NewestHeld is the newest checked entry whose effect the store holds;
	// FirstMissing the first entry after it whose effect it lacks (0: none).
	NewestHeld   uint64 `json:"newest_held"`
	FirstMissing uint64 `json:"first_missing"`
	// TrueIndex is the index the db was found to hold when its claim did
	// not (an anchor), 0 when none was found.
	TrueIndex uint64 `json:"true_index,omitempty"`
	// Unvouched names the part of the store the WAL cannot vouch for, and
	// why.
	Unvouched string `json:"unvouched,omitempty"`
	Verdict   string `json:"verdict"`

	missingIdx []uint64
	termOnly   bool // the term is all that disagrees
}

func (a *Audit) fail(idx uint64, format string, args ...any) {
	a.Missing++
	if len(a.Failures) < maxAuditFailures {
		a.Failures = append(a.Failures, fmt.Sprintf("WAL entry %d: ", idx)+fmt.Sprintf(format, args...))
	}
}

// auditStep audits the salvaged db's claims against the WAL.
func auditStep(st *state, rep *Report) (bool, string, error) {
	if _, err := os.Stat(st.base); err != nil {
		return false, "no salvaged store to audit", nil
	}
	a, err := auditClaims(st.base, st.log, st.index, st.term)
	if err != nil {
		return false, "", fmt.Errorf("audit: %w", err)
	}
	st.audit, rep.Audit = a, a
	return true, a.Verdict, nil
}

// auditAnchorStep settles the true state of a db the audit found older or
// newer than it says: an anchor replay, or the range after its newest
// revision reported lost. Either way the base is settled (no other replay
// may run).
func auditAnchorStep(st *state, rep *Report) (bool, string, error) {
	a := st.audit
	if a == nil || a.Holds {
		return false, "the audit found the db's claims hold", nil
	}
	// Missing effects under a damaged top are the damage itself: the
	// salvage already reports what came after its newest record as lost,
	// and the usual anchors apply.
	if !a.Ahead && !((a.Behind || a.termOnly) && st.topIntact) {
		return false, "what the audit found missing is the damage under the db's top: the usual anchors apply", nil
	}
	st.settled = true
	// The newest entry whose effect the store holds is where the db
	// really is: find the put that produced one of its revisions. Behind,
	// it lies before the first entry whose effect is missing.
	cands, err := findAnchors(st.base, st.log, st.revision+1, st.compact, st.log.CommitIndex())
	if err != nil {
		rep.Notes = append(rep.Notes, "anchor search: "+err.Error())
	}
	var keep []anchor
	for _, c := range cands {
		if a.Behind && a.FirstMissing != 0 && c.index >= a.FirstMissing {
			continue
		}
		keep = append(keep, c)
	}
	// Oldest first: they reproduce the most salvaged records.
	slices.Reverse(keep)
	if len(keep) > maxAnchorTries {
		keep = append(keep[:maxAnchorTries-1], keep[len(keep)-1])
	}
	claimed := st.index
	if acceptAnchor(st, rep, keep, "audit", "in the salvaged store") {
		a.TrueIndex = st.index
		st.proven = a.settledBy(a.TrueIndex)
		rep.DB.Strategy += fmt.Sprintf("; the db claimed consistent_index %d, but it holds only what the WAL had made of it by index %d (or later): replayed from there", claimed, a.TrueIndex)
		return true, fmt.Sprintf("anchored at WAL index %d", a.TrueIndex), nil
	}
	// No anchor: the store is a state at an index the WAL cannot place.
	// Replaying from its claim would skip (behind) or repeat (ahead)
	// entries, so nothing is replayed, and what came after its newest
	// revision is lost.
	why := a.Verdict + "; no WAL put places its true index (no anchor), so nothing is replayed onto it"
	if a.Behind && a.NewestHeld == 0 {
		why += fmt.Sprintf(": what happened between its newest revision %d and the WAL's first entry %d is lost", st.revision, st.log.FirstIndex())
	}
	st.auditLost = &salvage.LostRange{From: st.revision + 1, To: 0, Why: why}
	st.openTop = false
	rep.Notes = append(rep.Notes, why)
	return true, "no anchor: " + why, nil
}

// settledBy reports whether an anchor accepted at index idx settles the
// audit's contradictions: the replay from it regenerated every effect found
// missing (all lie after it), and gave the store the WAL's index and term.
// An effect missing at or below the anchor stays missing.
func (a *Audit) settledBy(idx uint64) bool {
	for _, i := range a.missingIdx {
		if i <= idx {
			return false
		}
	}
	return true
}
