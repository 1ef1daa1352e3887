package repair

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/boltfix/boltfix/membership"
	"github.com/boltfix/boltfix/salvage"
	"github.com/boltfix/boltfix/wal"
)

// A cluster repair is a plan too: NewClusterPlan reads every member's WAL
// and membership (no heavy work, nothing written), refuses dirs that are
// not distinct members of one cluster, and lists the steps; Execute runs
// them. PlanMembers adds each member's own plan (a scan of its db) for
// `boltfix repair DIR1 DIR2 ... --dry-run`; the run itself plans each
// member when it repairs it, so a db is scanned once.

// ClusterPlanSchema names the JSON schema of ClusterPlan.
const ClusterPlanSchema = "boltfix.repair.cluster.plan/v1"

// Steps of a cluster repair.
const (
	StepRepairMembers StepName = "repair-members"
	StepChooseAndFill StepName = "choose-and-fill"
	StepWriteMembers  StepName = "write-members"
)

// ClusterPlan is what a cluster repair will do.
type ClusterPlan struct {
	Schema    string   `json:"schema"`
	Inputs    []string `json:"inputs"`
	Output    string   `json:"output"`
	ClusterID string   `json:"cluster_id"`
	// Sources has one row per input member, as its WAL and membership show
	// it (the run adds what its db gave).
	Sources []SourceMember `json:"sources"`
	// WAL is the union of the members' WALs; Disagreements are entries two
	// members hold differently.
	WAL           ClusterWAL `json:"wal"`
	Disagreements []string   `json:"disagreements"`
	// Members are each member's db repair with the union WAL, as planned
	// (PlanMembers); empty until then.
	Members []MemberPlan `json:"members"`
	Steps   []Step       `json:"steps"`
	Outputs []string     `json:"outputs"`
	Notes   []string     `json:"notes"`

	opts  Options
	logs  []*wal.Log
	names []string
	mems  []*membership.Membership
	union *wal.Log
}

// MemberPlan is the plan of one member's db repaired with the union WAL.
type MemberPlan struct {
	Input    string   `json:"input"`
	Name     string   `json:"name"`
	Strategy Strategy `json:"strategy"`
	Why      []string `json:"why"`
	Steps    []Step   `json:"steps"`
	// Error says why no plan could be made for this member's db (the
	// run then goes on without it).
	Error string `json:"error,omitempty"`
}

// NewClusterPlan reads the members' WALs and membership and lists the
// steps of a cluster repair of dataDirs into opts.Out. It writes nothing.
func NewClusterPlan(dataDirs []string, opts Options) (*ClusterPlan, error) {
	if len(dataDirs) < 2 {
		return nil, errors.New("a cluster repair needs the data dirs of at least two members")
	}
	for _, d := range dataDirs {
		if err := CheckOutput(d, opts.Out, opts.Force); err != nil {
			return nil, err
		}
	}
	if err := salvage.ValidPageSize(opts.PageSize); err != nil {
		return nil, err
	}
	// The sources are read into a report's fields (the functions the run
	// shares); the plan keeps them, and the run's report starts from them.
	scratch := &ClusterReport{Notes: []string{}, Sources: []SourceMember{}}
	logs, names, mems, err := readClusterSources(dataDirs, scratch)
	if err != nil {
		return nil, err
	}
	union, conflicts := wal.Merge(logs, names)
	scratch.WAL = ClusterWAL{FirstIndex: union.FirstIndex(), LastIndex: union.LastIndex(), Commit: union.CommitIndex(), Gaps: union.Gaps}
	if scratch.WAL.Gaps == nil {
		scratch.WAL.Gaps = []wal.Gap{}
	}
	countOnlyHere(logs, union, scratch)
	p := &ClusterPlan{Schema: ClusterPlanSchema, Inputs: dataDirs, Output: opts.Out, ClusterID: scratch.ClusterID, Sources: scratch.Sources,
		WAL: scratch.WAL, Disagreements: append([]string{}, conflicts...), Members: []MemberPlan{}, Notes: scratch.Notes,
		opts: opts, logs: logs, names: names, mems: mems, union: union}
	add := func(n StepName, does string) { p.Steps = append(p.Steps, Step{Name: n, Does: does}) }
	add(StepRepairMembers, fmt.Sprintf("repair each of the %d members' dbs with the union WAL (entries %d..%d, commit %d), each as its own one-member plan on a work copy",
		len(dataDirs), p.WAL.FirstIndex, p.WAL.LastIndex, p.WAL.Commit))
	add(StepChooseAndFill, "choose the best repair (complete, fewest revisions lost, most records), give it the revisions it lacks from the members that hold them, and cross-check every record against every other member's")
	add(StepWriteMembers, "restore the chosen db as NEW_DIR/<name> for every voting member of the original membership, with the original names and peer URLs")
	if !opts.SkipStartCheck {
		add(StepStartCheck, "start the repaired data as one cluster on loopback peer URLs and count every member's keys")
	}
	add(StepPublish, "move the checked member dirs into place (rename, then fsync the parent dir)")
	p.Outputs = append(p.Outputs, filepath.Join(filepath.Clean(opts.Out), "<name>", "member")+string(filepath.Separator))
	return p, nil
}

// candidateOptions are the options of one member's repair inside a
// cluster repair: into out, with the union WAL, no membership of its own
// (ForceNewCluster: the membership is written once, for all), no start
// check, and no revision bump (records are compared and copied between the
// candidates by revision; the output is bumped once).
func candidateOptions(opts Options, out string, union *wal.Log) Options {
	o := opts
	o.Out, o.Force, o.ForceNewCluster, o.SkipStartCheck, o.log = out, false, true, true, union
	o.Name, o.InitialCluster, o.InitialAdvertisePeerURLs = "", "", nil
	noBump, noMark := uint64(0), false
	o.BumpRevision, o.MarkCompacted = &noBump, &noMark
	return o
}

// PlanMembers plans each member's db repair with the union WAL (a scan of
// each db, read-only, one at a time) into p.Members.
func (p *ClusterPlan) PlanMembers() error {
	// The candidates' outputs do not exist yet: a path that is never
	// created stands in for them (NewPlan only checks it).
	stand := filepath.Join(filepath.Dir(filepath.Clean(p.opts.Out)), ".boltfix-cluster-plan")
	if _, err := os.Stat(stand); err == nil {
		return fmt.Errorf("%s exists: remove it", stand)
	}
	for i, d := range p.Inputs {
		mp := MemberPlan{Input: d, Name: p.names[i], Why: []string{}, Steps: []Step{}}
		sp, err := NewPlan(d, candidateOptions(p.opts, filepath.Join(stand, fmt.Sprintf("cand-%d", i)), p.union))
		if err != nil {
			var ie *salvage.InterruptedError
			if errors.As(err, &ie) {
				return err
			}
			mp.Error = err.Error()
		} else {
			mp.Strategy, mp.Why, mp.Steps = sp.Strategy, sp.Why, sp.Steps
			sp.Close()
		}
		p.Members = append(p.Members, mp)
	}
	return nil
}
