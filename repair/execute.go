package repair

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/boltfix/boltfix/salvage"
	"github.com/boltfix/boltfix/wal"
	"go.uber.org/zap"
)

// StepResult is what one step of the plan did.
type StepResult struct {
	Name StepName `json:"name"`
	// Ran is false for a conditional step whose condition did not hold.
	Ran    bool   `json:"ran"`
	Result string `json:"result"`
}

// state is what the steps hand each other: the db being built and what is
// known of it. Steps write their results into the Report; none reads the
// Report back.
type state struct {
	p    *Plan
	opts Options
	ctx  context.Context
	lg   *zap.Logger
	log  *wal.Log // nil: no WAL
	work string   // the temp dir next to the output
	// base is the db the next step works on; it need not exist (no db,
	// nothing replayed yet).
	base      string
	dbPresent bool
	// index and revision are base's consistent_index and the revision the
	// replay starts after (an anchor or a full replay moves them).
	index    uint64
	revision int64
	term     uint64 // the db's term
	compact  int64
	sv       *salvage.Report // the salvage's report; nil without a db
	// bboltChecked delivers bbolt's check of the final db, started by
	// check-output; whoever needs it last (check-output itself, or the
	// start check it runs beside) waits for it.
	bboltChecked chan error
	audit        *Audit
	replay       *wal.ReplayResult
	// walMissing are the entries above the db's consistent_index the WAL
	// lacks.
	walMissing []wal.Gap
	// settled: the audit or an anchor fixed the base; no other replay
	// may run.
	settled bool

	lost    [][2]int64
	reasons []string
	// dropped are carved records above the base revision, taken out so
	// that replay renumbers nothing; replay must give them back identical.
	dropped map[string][]byte
	// openTop: records above the base revision may be lost unless the
	// replay regenerates them.
	openTop   bool
	topReason string
	// replayStopped is set when a replay from an anchor stopped before an
	// entry whose outcome the lost ranges leave open.
	replayStopped *wal.UncertainError
	replayed      bool // the replay reached the WAL's commit index
	fullReplay    bool // the whole history was replayed from index 1
	topIntact     bool // the base revision is exactly the state at the db's consistent_index
	// proven: an anchor replay reproduced every salvaged record above it,
	// which proves the state it started from whatever the db claimed.
	proven bool
	// auditLost is the range the audit found lost (the db is not at the
	// index it claims, and no anchor placed it), nil if none.
	auditLost *salvage.LostRange
	// final are the lost ranges decide-lost settled on.
	final [][2]int64
}

// stepFunc runs one step. ran is false when a conditional step's condition
// did not hold; result says what it did (or why it did not run).
type stepFunc func(st *state, rep *Report) (ran bool, result string, err error)

// steps maps each step kind to its function, in the order a plan lists
// them.
var steps = map[StepName]stepFunc{
	StepSalvage:     salvageStep,
	StepCutBack:     cutBackStep,
	StepAudit:       auditStep,
	StepAuditAnchor: auditAnchorStep,
	StepAnchor:      anchorStep,
	StepReplayFull:  replayFullStep,
	StepReplay:      replayStep,
	StepDecideLost:  decideLostStep,
	StepWriteMember: writeMemberStep,
	StepCheckOutput: checkOutputStep,
	StepStartCheck:  startCheckStep,
	StepPublish:     publishStep,
}

// walPhases are the phases of the progress display the WAL steps start:
// the audit (with the anchors' trial replays) and the replay, each of
// which reads the whole WAL.
var walPhases = map[StepName]string{StepAudit: "checking the db against the WAL", StepReplayFull: "replaying the WAL", StepReplay: "replaying the WAL"}

// Execute runs the plan's steps in order in a temp dir next to the output
// and publishes the result. The Report says what each step did; it is
// valid whenever err is nil (a refused plan gives a Report with Refused
// set and writes nothing). Execute closes the plan.
func (p *Plan) Execute() (*Report, error) {
	defer p.Close()
	opts := p.opts
	rep := p.newReport()
	if p.Refused != nil {
		rep.Refused = p.Refused
		if p.DB.Present {
			rep.DB = &DBPart{Present: true} // refused after the scan, before the salvage
		}
		return rep, nil
	}
	lg := opts.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	parent := filepath.Dir(filepath.Clean(opts.Out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(parent, ".boltfix-repair-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	st := &state{p: p, opts: opts, ctx: opts.Context, lg: lg, log: p.log, work: work, base: filepath.Join(work, "base.db"),
		dbPresent: p.DB.Present, index: p.DB.ConsistentIndex, term: p.DB.Term, walMissing: p.WAL.Missing, dropped: map[string][]byte{}}
	walPhase := ""
	for _, s := range p.Steps {
		if err := salvage.Interrupted(st.ctx, "before the step "+string(s.Name)); err != nil {
			return nil, err
		}
		if ph := walPhases[s.Name]; ph != "" && ph != walPhase {
			walPhase = ph
			salvage.StartPhase(opts.Progress, ph, -1)
		}
		fn, ok := steps[s.Name]
		if !ok {
			return nil, fmt.Errorf("plan step %q has no function (a bug in boltfix)", s.Name)
		}
		ran, result, err := fn(st, rep)
		if err != nil {
			return nil, err
		}
		rep.Steps = append(rep.Steps, StepResult{Name: s.Name, Ran: ran, Result: result})
	}
	return rep, nil
}

// newReport starts the report with what the plan found.
func (p *Plan) newReport() *Report {
	rep := &Report{Schema: ReportSchema, Input: p.Input, Output: p.Output, LostRevisions: [][2]int64{}, LostReasons: []string{}, Unproven: []string{},
		Disagreements: []string{}, Notes: append([]string{}, p.notes...), Next: append([]string{}, p.next...), PossiblyStale: []salvage.StaleKey{},
		Ledger: []salvage.ResourceLedger{}, Alarms: []string{}, Warnings: append([]string{}, p.Warnings...),
		Membership: p.Membership, ForceNewCluster: p.ForceNewCluster, Strategy: p.Strategy, Why: append([]string{}, p.Why...), Steps: []StepResult{}}
	if p.Refused != nil {
		return rep
	}
	rep.DB = &DBPart{Present: p.DB.Present, Findings: p.DB.Findings}
	switch {
	case p.DB.Problem != "":
		rep.DB.Strategy = "db unreadable (no bbolt structure): replay the WAL from an empty store"
	case !p.DB.Present:
		rep.DB.Strategy = "no db: replay the WAL from an empty store"
	default:
		rep.StorageVersion, rep.ClusterVersion = p.DB.StorageVersion, p.DB.ClusterVersion
	}
	rep.WAL = &WALPart{}
	if w := p.WAL; w.Present {
		rep.WAL = &WALPart{Present: true, Clean: w.Clean, FirstIndex: w.FirstIndex, LastIndex: w.LastIndex, Commit: w.Commit,
			Stops: w.Stops, Missing: w.Missing, Snapshots: w.Snapshots}
	}
	return rep
}

// progressPhase tells the progress display a phase begins.
func progressPhase(opts Options, name string, total int64) {
	salvage.StartPhase(opts.Progress, name, total)
}
