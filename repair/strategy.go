package repair

import (
	"fmt"
	"path/filepath"
)

// Strategy names how a repair rebuilds the history.
type Strategy string

const (
	// StrategyFullReplay: the WAL holds every entry from index 1, so
	// replaying it from an empty store rebuilds the exact state, whatever
	// happened to the db (whose records are only cross-checked).
	StrategyFullReplay Strategy = "full-replay"
	// StrategyDBAndWAL: the salvaged db is the base; its claims are
	// audited against the WAL, and the WAL's entries above the state the
	// db really holds are replayed onto it (from an anchor when the db
	// alone leaves revisions uncertain).
	StrategyDBAndWAL Strategy = "db-and-wal"
	// StrategyWALOnly: no usable db, and the WAL does not reach back to
	// index 1: its entries are replayed from an empty store and the
	// history before it is lost.
	StrategyWALOnly Strategy = "wal-only"
	// StrategyDBOnly: no WAL: the salvaged db alone; what was committed
	// after its consistent_index may be lost.
	StrategyDBOnly Strategy = "db-only"
	// StrategyRefused: one member of a multi-member cluster: nothing is
	// written.
	StrategyRefused Strategy = "refused"
)

// StepName names a kind of step; each has one function in execute.go's
// table.
type StepName string

const (
	StepSalvage     StepName = "salvage"
	StepCutBack     StepName = "cut-back"
	StepAudit       StepName = "audit"
	StepAuditAnchor StepName = "audit-anchor"
	StepAnchor      StepName = "anchor"
	StepReplayFull  StepName = "replay-full"
	StepReplay      StepName = "replay"
	StepDecideLost  StepName = "decide-lost"
	StepWriteMember StepName = "write-member"
	StepCheckOutput StepName = "check-output"
	StepStartCheck  StepName = "start-check"
	StepPublish     StepName = "publish"
)

// choose decides the strategy from what the scan and the WAL show, and
// lists the steps. This is where the recovery decision is made; the
// conditional steps are where a later decision depends on what an earlier
// step finds (an audit that fails, an anchor that reproduces the salvaged
// records or not).
func (p *Plan) choose() {
	db, w := p.DB, p.WAL
	add := func(n StepName, does, cond string) { p.Steps = append(p.Steps, Step{Name: n, Does: does, If: cond}) }
	switch {
	case db.Present:
		p.Why = append(p.Why, fmt.Sprintf("the db is readable: %d scan findings, consistent_index %d, %d key records reached", db.Findings, db.ConsistentIndex, db.KeyRecords))
	case db.Problem != "":
		p.Why = append(p.Why, "the db has no bbolt structure ("+db.Problem+"): nothing to salvage")
	default:
		p.Why = append(p.Why, "there is no db (member/snap/db is missing)")
	}
	if db.Present {
		add(StepSalvage, "copy every record the scan reached and carve the key bucket's records from the rest into a work copy; take out records etcd's code would crash on", "")
		if db.TopIntact {
			p.Why = append(p.Why, fmt.Sprintf("the key bucket is intact at its top: its newest revision %d is the state at consistent_index %d", db.NewestRevision, db.ConsistentIndex))
			add(StepCutBack, fmt.Sprintf("take carved records above revision %d out of the work copy (the WAL replay must give them back byte for byte)", db.NewestRevision), "")
		} else {
			p.Why = append(p.Why, "the key bucket's newest records were damaged: revisions after the newest salvaged one are uncertain")
		}
	}
	full := p.fullHistory()
	switch {
	case !w.Present:
		p.Strategy = StrategyDBOnly
		what := "no WAL segment in " + w.Dir
		if w.DirMissing {
			what = w.Dir + " does not exist"
		}
		p.Why = append(p.Why, what+": revisions committed after the db's consistent_index may be lost")
	case full:
		p.Strategy = StrategyFullReplay
		p.Why = append(p.Why, fmt.Sprintf("the WAL holds every entry from index 1 to its commit %d", w.Commit))
		if db.Present {
			p.Why = append(p.Why, fmt.Sprintf("the db's consistent_index %d is within the WAL's reach: its records are only cross-checked", db.ConsistentIndex))
		}
		add(StepReplayFull, fmt.Sprintf("replay WAL entries 1..%d from an empty store with etcd's apply code; if a damaged entry stops it, replay above the db's consistent_index instead", w.Commit), "")
	case !db.Present:
		p.Strategy = StrategyWALOnly
		p.Why = append(p.Why, fmt.Sprintf("the WAL starts at index %d, not 1: the history before it is lost", w.FirstIndex))
		add(StepReplay, fmt.Sprintf("replay the WAL's committed entries (up to %d) from an empty store", w.Commit), "")
	default:
		p.Strategy = StrategyDBAndWAL
		p.Why = append(p.Why, p.reach())
		add(StepAudit, fmt.Sprintf("check the db's claim (consistent_index %d, term %d) against the WAL: each committed entry at or below it must have left its effect, none above it", db.ConsistentIndex, db.Term), "")
		add(StepAuditAnchor, "anchor at the newest WAL put whose effect the store holds and replay from there (accepted only if it reproduces every salvaged record above it); if none does, report what came after the db's newest revision lost and replay nothing",
			"the audit finds the db older or newer than it claims")
		add(StepAnchor, "anchor at a WAL put that produced a salvaged revision below the uncertain ones, cut the store back to it and replay from there (accepted only if it reproduces every salvaged record above it byte for byte)",
			"the audit did not settle the base, and the salvage leaves revisions uncertain above the compaction")
		add(StepReplay, fmt.Sprintf("replay the WAL's committed entries above consistent_index %d (up to %d) onto the salvaged store; cross-check the records it regenerates", db.ConsistentIndex, w.Commit),
			"neither the audit nor an anchor settled the base")
	}
	add(StepDecideLost, "decide the lost revision ranges and whether the result is proven complete", "")
	add(StepWriteMember, "write the member dir (db, .snap, WAL) as etcdutl's snapshot restore does, moving the db in rather than copying it; bump the revision and mark it compacted when revisions at the top may be lost", "")
	add(StepCheckOutput, "check the new db: bbolt's check, its records, storage version and alarms", "")
	if !p.opts.SkipStartCheck {
		add(StepStartCheck, "start etcd on a copy of the new member dir and count the keys it serves", "")
	}
	add(StepPublish, "move the checked member dir into place (rename, then fsync the parent dir)", "")
	out := filepath.Clean(p.Output)
	p.Outputs = append(p.Outputs, filepath.Join(out, "member", "snap", "db"), filepath.Join(out, "member", "snap", "*.snap"), filepath.Join(out, "member", "wal")+string(filepath.Separator))
}

// fullHistory reports whether the WAL holds every entry from index 1 to its
// commit, reaching at least as far as the db: then replaying it from an
// empty store rebuilds the exact state, whatever happened to the db.
func (p *Plan) fullHistory() bool {
	l := p.log
	if l == nil {
		return false
	}
	commit := l.CommitIndex()
	if l.FirstIndex() != 1 || commit == 0 || len(l.Missing(0)) > 0 {
		return false
	}
	return !p.DB.Present || p.DB.ConsistentIndex <= commit
}

// reach says how far the WAL reaches relative to the db's consistent_index.
func (p *Plan) reach() string {
	db, w := p.DB, p.WAL
	if len(w.Missing) > 0 {
		g := w.Missing[0]
		return fmt.Sprintf("db consistent_index %d, but WAL entries %d..%d above it are missing (purged or damaged): what they changed is lost", db.ConsistentIndex, g.From, g.To)
	}
	return fmt.Sprintf("db consistent_index %d inside the WAL's reach (entries %d..%d, commit %d)", db.ConsistentIndex, w.FirstIndex, w.LastIndex, w.Commit)
}
