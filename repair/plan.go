package repair

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/boltfix/boltfix/membership"
	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/spill"
	"github.com/boltfix/boltfix/wal"
)

// A repair is a plan, then its execution (the shape of etcdutl's snapshot
// package: one struct, a flat list of steps). NewPlan reads and scans the
// inputs, and writes nothing: it finds the sources, refuses what must be
// refused (a member of a multi-member cluster), chooses the strategy from
// the evidence (strategy.go) and lists the steps. Execute (execute.go)
// runs those steps in order, one function per step kind (step_*.go), and
// records in the Report what each step did. `boltfix repair --dry-run`
// prints the Plan and stops.

// PlanSchema names the JSON schema of Plan (`boltfix repair --dry-run --json`).
const PlanSchema = "boltfix.repair.plan/v1"

// Plan is what a repair will do, decided from the inputs alone.
type Plan struct {
	Schema string  `json:"schema"`
	Input  string  `json:"input"`
	Output string  `json:"output"`
	DB     PlanDB  `json:"db"`
	WAL    PlanWAL `json:"wal"`

	// Membership is the cluster the data dir belongs to; Refused is set
	// when the repair must write nothing (one member of a multi-member
	// cluster, without --force-new-cluster): the plan then has no steps.
	Membership      *membership.Membership `json:"membership"`
	Refused         *Refusal               `json:"refused,omitempty"`
	ForceNewCluster bool                   `json:"force_new_cluster"`
	Warnings        []string               `json:"warnings"`

	// Strategy names the way the history is rebuilt; Why is the evidence
	// it was chosen on, one fact per line.
	Strategy Strategy `json:"strategy"`
	Why      []string `json:"why"`
	// Steps run in this order; a step with If runs only when its condition
	// holds after the steps before it (the report says which ran).
	Steps []Step `json:"steps"`
	// Outputs are the paths the repair writes.
	Outputs []string `json:"outputs"`

	opts  Options
	in    *inputs
	log   *wal.Log
	file  *pagewalk.File   // open while the plan lives: the salvage reads it
	scan  *pagewalk.Result // nil when the db is missing or not bbolt
	spill *spill.Dir       // the scan's and salvage's big tables; closed with file
	notes []string         // for the report, in the order the run gives them
	next  []string         // the refusal's procedure or the force warning's first step
	dbErr string           // why the db could not be read (not bbolt)
}

// PlanDB is the damaged db as the scan saw it.
type PlanDB struct {
	Path string `json:"path"`
	// Present: a db the scan could read (bbolt structure found).
	Present bool `json:"present"`
	// Problem says why a db that exists is not Present.
	Problem         string `json:"problem,omitempty"`
	Findings        int    `json:"scan_findings"`
	ConsistentIndex uint64 `json:"consistent_index"`
	Term            uint64 `json:"term"`
	KeyRecords      int    `json:"key_records"`
	// NewestRevision is the walked key bucket's newest revision (0: none).
	NewestRevision int64 `json:"newest_revision"`
	// TopIntact: the key bucket's newest records were reached, so its
	// newest revision is the state at ConsistentIndex.
	TopIntact      bool   `json:"top_intact"`
	StorageVersion string `json:"storage_version"`
	ClusterVersion string `json:"cluster_version"`
}

// PlanWAL is the WAL as read.
type PlanWAL struct {
	Dir string `json:"dir"`
	// Present: at least one segment was read. DirMissing: the dir does not
	// exist (a lost WAL disk).
	Present    bool        `json:"present"`
	DirMissing bool        `json:"dir_missing"`
	Clean      bool        `json:"clean"`
	FirstIndex uint64      `json:"first_index"`
	LastIndex  uint64      `json:"last_index"`
	Commit     uint64      `json:"commit"`
	Stops      []*wal.Stop `json:"stops"`
	// Missing are the entries above the db's consistent_index the WAL
	// lacks (purged or damaged).
	Missing   []wal.Gap `json:"missing"`
	Snapshots int       `json:"snapshots"`
}

// Step is one step of a plan.
type Step struct {
	Name StepName `json:"name"`
	Does string   `json:"does"`
	If   string   `json:"if,omitempty"`
}

// NewPlan reads and scans the inputs of a repair of dataDir into opts.Out
// and decides what the repair will do. It writes nothing. The Plan holds
// the open db: Close it, or Execute it (which closes it).
func NewPlan(dataDir string, opts Options) (*Plan, error) {
	in, err := preflight(dataDir, opts)
	if err != nil {
		return nil, err
	}
	p := &Plan{Schema: PlanSchema, Input: dataDir, Output: opts.Out, opts: opts, in: in, Warnings: []string{}, Why: []string{},
		Steps: []Step{}, Outputs: []string{}}
	p.DB.Path, p.WAL.Dir, p.WAL.DirMissing = in.db, in.walDir, in.walMissing

	// The WAL and the .snap files say which cluster this is: a member of a
	// multi-member cluster is refused before the db is scanned when they
	// name it fully. A missing WAL dir (a lost WAL disk) is no WAL: the db
	// alone, with a warning. RunCluster gives the union of its members'
	// WALs instead.
	log, werr := opts.log, error(nil)
	if log == nil && !in.walMissing {
		log, werr = wal.Read(in.walDir)
	}
	if werr != nil && !errors.Is(werr, wal.ErrNoWAL) {
		return nil, fmt.Errorf("read WAL: %w", werr)
	}
	p.log = log
	if m := readMembership(in.db, log, nil); earlyGate(m, in.db) && p.gate(m) {
		p.describeWAL()
		return p, nil
	}
	if err := p.scanDB(); err != nil {
		p.Close()
		return nil, err
	}
	p.describeWAL()
	if p.Refused != nil {
		return p, nil
	}
	if log == nil && !p.DB.Present {
		p.Close()
		return nil, ErrNothingToRepair
	}
	p.choose()
	return p, nil
}

// Close releases the db the plan holds open and the WAL segments it read
// (a WAL handed in through the options is the caller's to close).
func (p *Plan) Close() error {
	if p == nil {
		return nil
	}
	var err error
	if p.log != nil && p.opts.log == nil {
		err = p.log.Close()
	}
	if p.file == nil {
		return err
	}
	if ferr := p.file.Close(); err == nil {
		err = ferr
	}
	p.file = nil
	if serr := p.spill.Close(); err == nil {
		err = serr
	}
	return err
}

// scanDB opens and scans the db (read-only). The db's members bucket and
// confState complete the membership: a cluster the WAL could not show is
// refused here, before the salvage.
func (p *Plan) scanDB() error {
	db := p.in.db
	if _, err := os.Stat(db); err != nil {
		if !os.IsNotExist(err) {
			return err
		}
		p.notes = append(p.notes, "member/snap/db is missing")
		return nil
	}
	f, err := pagewalk.Open(db)
	if err != nil {
		if errors.Is(err, pagewalk.ErrNotBolt) {
			p.DB.Problem = err.Error()
			p.notes = append(p.notes, err.Error())
			if p.Membership == nil {
				p.gate(readMembership(db, p.log, nil))
			}
			return nil
		}
		return err
	}
	p.file = f
	p.DB.Present = true
	progressPhase(p.opts, "scanning the db", int64(f.PageCount()))
	// The tables that grow with the db spill next to the output.
	p.spill = spill.For(filepath.Dir(filepath.Clean(p.Output)), f.Size())
	res, err := f.Scan(pagewalk.Options{Progress: p.opts.Progress, Context: p.opts.Context, Spill: p.spill})
	if err != nil {
		return err
	}
	p.scan = res
	if p.gate(readMembership(db, p.log, res.Report.Etcd)) {
		return nil
	}
	e := res.Report.Etcd
	p.DB.Findings = len(res.Report.Findings)
	p.DB.StorageVersion, p.DB.ClusterVersion, p.DB.KeyRecords = e.StorageVersion, e.ClusterVersion, e.KeyRecords
	if e.ConsistentIndex != nil {
		p.DB.ConsistentIndex = *e.ConsistentIndex
	}
	if e.Term != nil {
		p.DB.Term = *e.Term
	}
	if kb := res.Bucket("key"); kb != nil {
		if r, ok := pagewalk.ParseRevision(kb.Last); ok {
			p.DB.NewestRevision = r.Main
			p.DB.TopIntact = !openKeyDamage(res)
		}
	}
	return nil
}

// describeWAL fills the WAL part; its missing entries are those above the
// db's consistent_index.
func (p *Plan) describeWAL() {
	w := &p.WAL
	w.Stops, w.Missing = []*wal.Stop{}, []wal.Gap{}
	l := p.log
	if l == nil {
		return
	}
	w.Present, w.Clean, w.FirstIndex, w.LastIndex, w.Commit = true, l.Clean(), l.FirstIndex(), l.LastIndex(), l.CommitIndex()
	w.Snapshots = len(l.Snapshots)
	if s := l.Stops(); s != nil {
		w.Stops = s
	}
	w.Missing = l.Missing(p.DB.ConsistentIndex)
}
