package repair

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/boltfix/boltfix/outfile"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/boltfix/boltfix/membership"
	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/salvage"
	"github.com/boltfix/boltfix/wal"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
)

// ClusterReportSchema names the JSON schema of ClusterReport.
const ClusterReportSchema = "boltfix.repair.cluster/v1"

// ErrDifferentClusters: the data dirs given to RunCluster are not all
// members of one cluster (their WAL metadata names different cluster ids,
// or one dir is given twice).
var ErrDifferentClusters = errors.New("the data dirs are not distinct members of one cluster")

// ClusterReport is what RunCluster did. Its JSON form is `boltfix repair
// DIR1 DIR2 ... --json`.
type ClusterReport struct {
	Schema string   `json:"schema"`
	Inputs []string `json:"inputs"`
	Output string   `json:"output"`
	// Complete: the chosen member's db, with every member's WAL, accounts
	// for every revision, and no source disagreed.
	Complete  bool   `json:"complete"`
	ClusterID string `json:"cluster_id"`
	// Membership is the original cluster's, from every source of every
	// member; the output has exactly its voting members.
	Membership *membership.Membership `json:"membership"`
	// Sources has one row per input member.
	Sources []SourceMember `json:"sources"`
	// WAL is the union of the members' WALs.
	WAL ClusterWAL `json:"wal"`
	// Chosen is the input whose db, repaired with the union WAL, became the
	// data of every output member; Repair is that repair's report.
	Chosen string  `json:"chosen"`
	Repair *Report `json:"repair"`
	// Disagreements: WAL entries or key records that two members hold
	// differently (never resolved silently; the member is named).
	Disagreements []string   `json:"disagreements"`
	LostRevisions [][2]int64 `json:"lost_revisions"`
	LostReasons   []string   `json:"lost_reasons"`
	// Members are the output member dirs, in the start order.
	Members []OutputMember `json:"members"`
	Token   string         `json:"initial_cluster_token"`
	// RevisionBump and MarkCompacted: applied to every output member when
	// revisions at the top may be lost (as for one member).
	RevisionBump  uint64       `json:"revision_bump"`
	MarkCompacted bool         `json:"mark_compacted"`
	Check         ClusterCheck `json:"check"`
	// Steps are what each step of the cluster plan did, in its order.
	Steps []StepResult `json:"steps"`
	Notes []string     `json:"notes"`
	Next  []string     `json:"next"`
}

// SourceMember is what one input member held and contributed.
type SourceMember struct {
	Input    string `json:"input"`
	MemberID string `json:"member_id"`
	Name     string `json:"name"`
	// WAL of this member alone.
	WALFirst  uint64 `json:"wal_first_index"`
	WALLast   uint64 `json:"wal_last_index"`
	WALCommit uint64 `json:"wal_commit"`
	WALClean  bool   `json:"wal_clean"`
	// WALOnlyHere counts committed entries of the union that only this
	// member's WAL held.
	WALOnlyHere int `json:"wal_only_here"`
	// DB: present, scan findings, consistent_index; and the repair of this
	// db with the union WAL: complete, lost ranges, final revision.
	DBPresent       bool       `json:"db_present"`
	DBFindings      int        `json:"db_findings"`
	ConsistentIndex uint64     `json:"consistent_index"`
	Complete        bool       `json:"complete"`
	LostRevisions   [][2]int64 `json:"lost_revisions"`
	FinalRecords    int        `json:"final_records"`
	Error           string     `json:"error,omitempty"`
	Chosen          bool       `json:"chosen"`
	// Gave counts key records this member's repair gave the chosen db:
	// revisions the chosen one lost and this one held.
	Gave int `json:"gave_records"`
	// Vouched counts revisions the chosen repair had to call lost and this
	// member's repair holds whole: no longer lost.
	Vouched int64 `json:"vouched_revisions"`
	// Contributed and Lacked say it in words.
	Contributed string `json:"contributed"`
	Lacked      string `json:"lacked"`
}

// ClusterWAL summarises the union of the members' WALs.
type ClusterWAL struct {
	FirstIndex uint64    `json:"first_index"`
	LastIndex  uint64    `json:"last_index"`
	Commit     uint64    `json:"commit"`
	Gaps       []wal.Gap `json:"gaps"`
}

// OutputMember is one member dir of the output.
type OutputMember struct {
	Name     string   `json:"name"`
	DataDir  string   `json:"data_dir"`
	PeerURLs []string `json:"peer_urls"`
	// MemberID is the id the new dir carries; OriginalID the member's id in
	// the original cluster (equal when the token is the original's).
	MemberID   string `json:"member_id"`
	OriginalID string `json:"original_id"`
}

// ClusterCheck is the self-check: the repaired data restored on loopback
// peer URLs (never the original peers' addresses), started as one cluster.
type ClusterCheck struct {
	Started  bool           `json:"started"`
	Skipped  bool           `json:"skipped"`
	Keys     map[string]int `json:"keys"` // per member name
	Revision int64          `json:"revision"`
	Error    string         `json:"error,omitempty"`
}

// RunCluster repairs a whole cluster from the data dirs of its members:
// every member's WAL joins one union log; each member's db is repaired with
// it (as Run does, on a work copy); the best result (complete, fewest lost
// ranges, most records) is cross-checked against the others, and written
// as opts.Out/<name>/member for every voting member of the original
// membership, with the original names and peer URLs: one new cluster whose
// members all hold the same data. Inputs are never written.
func RunCluster(dataDirs []string, opts Options) (*ClusterReport, error) {
	p, err := NewClusterPlan(dataDirs, opts)
	if err != nil {
		return nil, err
	}
	return p.Execute()
}

// Execute runs the cluster plan's steps and records each in the report.
func (p *ClusterPlan) Execute() (*ClusterReport, error) {
	opts, dataDirs, names := p.opts, p.Inputs, p.names
	lg := opts.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	rep := &ClusterReport{Schema: ClusterReportSchema, Inputs: dataDirs, Output: opts.Out, ClusterID: p.ClusterID,
		Sources: append([]SourceMember{}, p.Sources...), WAL: p.WAL, Disagreements: append([]string{}, p.Disagreements...),
		LostRevisions: [][2]int64{}, LostReasons: []string{}, Notes: append([]string{}, p.Notes...), Next: []string{}, Steps: []StepResult{}}
	done := func(n StepName, result string) {
		rep.Steps = append(rep.Steps, StepResult{Name: n, Ran: true, Result: result})
	}

	if err := os.MkdirAll(filepath.Dir(filepath.Clean(opts.Out)), 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(filepath.Dir(filepath.Clean(opts.Out)), ".boltfix-cluster-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	reps, err := repairCandidates(dataDirs, names, p.union, work, opts, rep)
	if err != nil {
		return nil, err
	}
	done(StepRepairMembers, fmt.Sprintf("%d of %d members' dbs repaired", countRepaired(reps), len(reps)))
	if err := salvage.Interrupted(opts.Context, "repairing each member's db"); err != nil {
		return nil, err
	}
	best, chosenDB, err := chooseAndFill(dataDirs, names, reps, work, rep)
	if err != nil {
		return nil, err
	}
	chosen := reps[best]
	done(StepChooseAndFill, fmt.Sprintf("chose %s; %d revision ranges lost, %d disagreements", names[best], len(rep.LostRevisions), len(rep.Disagreements)))

	// The original membership, from every member's sources (the db's
	// members bucket included, through the repaired dbs' scans).
	rep.Membership = bestMembership(p.mems, reps)
	voters, ic, err := clusterVoters(rep.Membership)
	if err != nil {
		return nil, err
	}
	rep.Token = opts.InitialClusterToken
	if rep.Token == "" {
		rep.Token = "etcd-cluster"
	}
	// Revisions may have gone backwards when the top may be lost: watchers
	// (the Kubernetes watch cache) must relist, as for one member.
	for _, r := range rep.LostRevisions {
		if r[1] == 0 {
			rep.RevisionBump, rep.MarkCompacted = defaultBump, true
		}
	}
	out := filepath.Join(work, "out")
	if err := writeClusterMembers(chosenDB, out, voters, ic, opts, lg, rep); err != nil {
		return nil, err
	}
	done(StepWriteMembers, fmt.Sprintf("%d member dirs written", len(rep.Members)))
	if err := checkCluster(chosenDB, voters, work, opts, rep); err != nil {
		return nil, err
	}
	if !opts.SkipStartCheck {
		done(StepStartCheck, fmt.Sprintf("started as a %d-member cluster at revision %d", len(voters), rep.Check.Revision))
	}
	// The last point where an interrupt leaves nothing behind.
	if err := salvage.Interrupted(opts.Context, "checking the new cluster"); err != nil {
		return nil, err
	}
	if err := outfile.PublishDir(out, opts.Out, opts.Force); err != nil {
		return nil, err
	}
	done(StepPublish, "written to "+opts.Out)
	rep.Complete = len(rep.LostRevisions) == 0 && len(rep.Disagreements) == 0
	if s := chosen.DB; s != nil && s.Salvage != nil && s.Salvage.Records.Uncertain > 0 && !chosen.Complete && len(rep.LostRevisions) == 0 {
		// As for one member: left-out carved records may have been real.
		rep.Complete = false
		rep.Notes = append(rep.Notes, "the chosen member's salvage left out possible compaction garbage (see repair.notes)")
	}
	clusterNextSteps(rep)
	return rep, nil
}

// chooseAndFill picks the best candidate repair, gives it the revisions
// it lacks from the members that hold them, and cross-checks every record
// against every other member's. It returns the chosen index and its db.
func chooseAndFill(dataDirs, names []string, reps []*Report, work string, rep *ClusterReport) (int, string, error) {
	best := -1
	for i, r := range reps {
		if r != nil && (best < 0 || better(r, reps[best], rep.Sources[i], rep.Sources[best])) {
			best = i
		}
	}
	if best < 0 {
		return 0, "", errors.New("no member's data could be repaired")
	}
	chosen := reps[best]
	// What the one-member candidate said of its own output (a work dir,
	// the force warning, single-member next steps) does not apply.
	chosen.Output, chosen.Member, chosen.ForceNewCluster, chosen.Warnings, chosen.Next = "", nil, false, []string{}, []string{}
	rep.Chosen, rep.Repair = dataDirs[best], chosen
	rep.Sources[best].Chosen = true
	chosenDB := filepath.Join(work, fmt.Sprintf("cand-%d", best), "member", "snap", "db")
	var others []candidate
	for i, r := range reps {
		if r != nil && i != best {
			others = append(others, candidate{name: names[i], db: filepath.Join(work, fmt.Sprintf("cand-%d", i), "member", "snap", "db"), rep: r})
		}
	}
	// Revisions the chosen db lacks, from the members that hold them; then
	// every record cross-checked against every other member's.
	lost, reasons, gave, err := fillFromOthers(chosenDB, chosen, others)
	if err != nil {
		return 0, "", err
	}
	compact, err := compactRevision(chosenDB)
	if err != nil {
		return 0, "", err
	}
	for _, c := range others {
		d, err := crossCheck(chosenDB, c.db, names[best], c.name, compact)
		if err != nil {
			return 0, "", err
		}
		rep.Disagreements = append(rep.Disagreements, d...)
	}
	rep.LostRevisions, rep.LostReasons = lost, reasons
	for i := range rep.Sources {
		rep.Sources[i].Gave, rep.Sources[i].Vouched = gave[names[i]].records, gave[names[i]].revisions
	}
	describeSources(rep, reps, best, names)
	return best, chosenDB, nil
}

// clusterVoters lists the voting members of the original membership and
// their --initial-cluster entries; each needs a name and peer URLs.
func clusterVoters(m *membership.Membership) ([]membership.Member, []string, error) {
	voters := []membership.Member{}
	for _, x := range m.Members {
		if !x.IsLearner {
			voters = append(voters, x)
		}
	}
	var ic []string
	for _, x := range voters {
		if x.Name == "" || len(x.PeerURLs) == 0 {
			return nil, nil, fmt.Errorf("member %s: name or peer URLs unknown; cannot write the cluster's membership", x.ID)
		}
		for _, u := range x.PeerURLs {
			ic = append(ic, x.Name+"="+u)
		}
	}
	return voters, ic, nil
}

// checkCluster starts the repaired data as one cluster on loopback peers
// (unless SkipStartCheck) and counts every member's keys.
func checkCluster(chosenDB string, voters []membership.Member, work string, opts Options, rep *ClusterReport) error {
	if opts.SkipStartCheck {
		rep.Check.Skipped = true
	} else {
		check := opts.ClusterStartCheck
		if check == nil {
			check = ClusterStartCheck
		}
		keys, rev, err := check(chosenDB, len(voters), filepath.Join(work, "check"))
		if err != nil {
			rep.Check.Error = err.Error()
			return fmt.Errorf("the repaired data did not start as a cluster: %w", err)
		}
		rep.Check.Started, rep.Check.Revision, rep.Check.Keys = true, rev, map[string]int{}
		for i, m := range voters {
			rep.Check.Keys[m.Name] = keys[i]
		}
	}
	return nil
}

// readClusterSources reads every member's WAL and membership (no heavy
// work) into rep.Sources, refusing dirs that are not distinct members of
// one cluster. names are the members' names (their dirs when unknown).
func readClusterSources(dataDirs []string, rep *ClusterReport) ([]*wal.Log, []string, []*membership.Membership, error) {
	logs := make([]*wal.Log, len(dataDirs))
	names := make([]string, len(dataDirs))
	var mems []*membership.Membership
	seen := map[string]string{}
	paths := map[string]bool{}
	for i, d := range dataDirs {
		if a, err := filepath.Abs(d); err == nil {
			if paths[a] {
				return nil, nil, nil, fmt.Errorf("%w: %s is given twice", ErrDifferentClusters, d)
			}
			paths[a] = true
		}
		db, walDir := locate(d, "")
		l, err := wal.Read(walDir)
		if err != nil && !errors.Is(err, wal.ErrNoWAL) {
			return nil, nil, nil, fmt.Errorf("%s: read WAL: %w", d, err)
		}
		logs[i] = l
		m := readMembership(db, l, nil)
		mems = append(mems, m)
		src := SourceMember{Input: d, MemberID: m.SelfID, LostRevisions: [][2]int64{}}
		if s := m.Self(); s != nil {
			src.Name = s.Name
		}
		names[i] = d
		if src.Name != "" {
			names[i] = src.Name
		}
		if l != nil {
			src.WALFirst, src.WALLast, src.WALCommit, src.WALClean = l.FirstIndex(), l.LastIndex(), l.CommitIndex(), l.Clean()
		}
		if m.ClusterID != "" {
			if rep.ClusterID == "" {
				rep.ClusterID = m.ClusterID
			} else if rep.ClusterID != m.ClusterID {
				return nil, nil, nil, fmt.Errorf("%w: %s is in cluster %s, %s in cluster %s", ErrDifferentClusters, dataDirs[0], rep.ClusterID, d, m.ClusterID)
			}
		} else {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: no readable WAL metadata: its cluster id cannot be checked", d))
		}
		if m.SelfID != "" {
			if other, ok := seen[m.SelfID]; ok {
				return nil, nil, nil, fmt.Errorf("%w: %s and %s are the same member %s", ErrDifferentClusters, other, d, m.SelfID)
			}
			seen[m.SelfID] = d
		}
		rep.Sources = append(rep.Sources, src)
	}
	return logs, names, mems, nil
}

// repairCandidates repairs each member's db with the union WAL: a
// one-member repair on a work copy (ForceNewCluster: the membership is
// written once, by RunCluster). A db that cannot be repaired is noted in its
// source row and left nil.
func repairCandidates(dataDirs, names []string, union *wal.Log, work string, opts Options, rep *ClusterReport) ([]*Report, error) {
	reps := make([]*Report, len(dataDirs))
	for i, d := range dataDirs {
		r, err := Run(d, candidateOptions(opts, filepath.Join(work, fmt.Sprintf("cand-%d", i)), union))
		src := &rep.Sources[i]
		var ie *salvage.InterruptedError
		if errors.As(err, &ie) {
			return nil, err
		}
		if err != nil {
			src.Error = err.Error()
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: its db could not be repaired: %v", names[i], err))
			continue
		}
		reps[i] = r
		src.DBPresent, src.Complete, src.LostRevisions, src.FinalRecords = r.DB != nil && r.DB.Present, r.Complete, r.LostRevisions, r.Counts.Final
		if r.DB != nil {
			src.DBFindings, src.ConsistentIndex = r.DB.Findings, r.DB.BaseIndex
		}
	}
	return reps, nil
}

// writeClusterMembers restores the chosen db as out/<name> for every
// voting member, with the original names and peer URLs.
func writeClusterMembers(chosenDB, out string, voters []membership.Member, ic []string, opts Options, lg *zap.Logger, rep *ClusterReport) error {
	for _, m := range voters {
		dir := filepath.Join(out, m.Name)
		err := snapshot.NewV3(lg).Restore(snapshot.RestoreConfig{SnapshotPath: chosenDB, Name: m.Name, OutputDataDir: dir,
			PeerURLs: m.PeerURLs, InitialCluster: strings.Join(ic, ","), InitialClusterToken: rep.Token, SkipHashCheck: true,
			RevisionBump: rep.RevisionBump, MarkCompacted: rep.MarkCompacted})
		if err != nil {
			return fmt.Errorf("write member %s: %w", m.Name, err)
		}
		om := OutputMember{Name: m.Name, DataDir: filepath.Join(opts.Out, m.Name), PeerURLs: m.PeerURLs, OriginalID: m.ID}
		if l, err := wal.Read(dir); err == nil {
			if l.Metadata != nil {
				om.MemberID = membership.HexID(l.Metadata.NodeID)
			}
			l.Close()
		}
		if om.MemberID != om.OriginalID {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: new member id %s, was %s: the original cluster used another --initial-cluster-token than %q (harmless: the output is a new cluster)",
				m.Name, om.MemberID, om.OriginalID, rep.Token))
		}
		rep.Members = append(rep.Members, om)
	}

	return nil
}

func countRepaired(reps []*Report) int {
	n := 0
	for _, r := range reps {
		if r != nil {
			n++
		}
	}
	return n
}

// better orders candidate repairs: complete first, then fewer revisions
// lost (an open range at the top worst), then more records, then the
// member with fewer scan findings and a clean WAL (the least damaged data
// wins a tie).
func better(a, b *Report, sa, sb SourceMember) bool {
	if a.Complete != b.Complete {
		return a.Complete
	}
	if wa, wb := lostWeight(a.LostRevisions), lostWeight(b.LostRevisions); wa != wb {
		return wa < wb
	}
	if a.Counts.Final != b.Counts.Final {
		return a.Counts.Final > b.Counts.Final
	}
	if sa.DBFindings != sb.DBFindings {
		return sa.DBFindings < sb.DBFindings
	}
	return sa.WALClean && !sb.WALClean
}

// countOnlyHere counts, per member, the union's committed entries no other
// member's WAL held.
func countOnlyHere(logs []*wal.Log, union *wal.Log, rep *ClusterReport) {
	holders := map[uint64][]int{}
	for i, l := range logs {
		if l == nil {
			continue
		}
		for _, e := range l.Entries {
			holders[e.GetIndex()] = append(holders[e.GetIndex()], i)
		}
	}
	for _, e := range union.Entries {
		if h := holders[e.GetIndex()]; len(h) == 1 && e.GetIndex() <= union.CommitIndex() {
			rep.Sources[h[0]].WALOnlyHere++
		}
	}
}

// compactRevision reads meta/scheduledCompactRev (0 when never compacted).
func compactRevision(path string) (int64, error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var rev int64
	err = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("meta")); b != nil {
			if r, ok := pagewalk.ParseRevision(b.Get([]byte("scheduledCompactRev"))); ok {
				rev = r.Main
			}
		}
		return nil
	})
	return rev, err
}

// crossCheck compares the key buckets of two repaired dbs in key order: a
// revision both hold must be byte-identical; one the chosen result lacks
// (above the compaction) is named. Memory stays at one record of each.
func crossCheck(chosen, other, chosenName, otherName string, compact int64) ([]string, error) {
	a, err := bolt.Open(chosen, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	b, err := bolt.Open(other, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	var out []string
	differ, lacks := 0, 0
	err = a.View(func(atx *bolt.Tx) error {
		return b.View(func(btx *bolt.Tx) error {
			ab, bb := atx.Bucket([]byte("key")), btx.Bucket([]byte("key"))
			if ab == nil || bb == nil {
				return nil
			}
			ac := ab.Cursor()
			ak, av := ac.First()
			bc := bb.Cursor()
			for bk, bv := bc.First(); bk != nil; bk, bv = bc.Next() {
				for ak != nil && bytes.Compare(ak, bk) < 0 {
					ak, av = ac.Next()
				}
				switch {
				case ak == nil || !bytes.Equal(ak, bk):
					if r, ok := pagewalk.ParseRevision(bk); ok && r.Main <= compact {
						// Members delete compacted revisions at their own
						// pace: one that still holds them is not a conflict.
						continue
					}
					if lacks++; lacks <= 10 {
						out = append(out, fmt.Sprintf("%s holds a record at %s that %s's result lacks", otherName, revString(bk), chosenName))
					}
				case !bytes.Equal(av, bv):
					if differ++; differ <= 10 {
						out = append(out, fmt.Sprintf("the record at %s differs between %s and %s (%s's kept)", revString(bk), chosenName, otherName, chosenName))
					}
				}
			}
			return nil
		})
	})
	if lacks > 10 || differ > 10 {
		out = append(out, fmt.Sprintf("%s vs %s: %d records lacking, %d differing in all", chosenName, otherName, lacks, differ))
	}
	return out, err
}

func revString(k []byte) string {
	if r, ok := pagewalk.ParseRevision(k); ok {
		return "revision " + r.String()
	}
	return fmt.Sprintf("key %x", k)
}

// bestMembership is the membership with the most complete view: the one
// repair built with the db's members bucket, else the WAL's.
func bestMembership(mems []*membership.Membership, reps []*Report) *membership.Membership {
	var best *membership.Membership
	score := func(m *membership.Membership) int {
		if m == nil || !m.Known {
			return -1
		}
		n := 0
		for _, x := range m.Members {
			if x.Name != "" && len(x.PeerURLs) > 0 {
				n++
			}
		}
		return n
	}
	for _, r := range reps {
		if r != nil && score(r.Membership) > score(best) {
			best = r.Membership
		}
	}
	for _, m := range mems {
		if score(m) > score(best) {
			best = m
		}
	}
	if best == nil {
		best = &membership.Membership{}
	}
	// The output is no member's own dir: none of them is "this one".
	cp := *best
	cp.Members = append([]membership.Member(nil), best.Members...)
	for i := range cp.Members {
		cp.Members[i].Self = false
	}
	cp.SelfID = ""
	return &cp
}

func describeSources(rep *ClusterReport, reps []*Report, best int, names []string) {
	for i := range rep.Sources {
		s := &rep.Sources[i]
		var has, lacks []string
		if s.WALOnlyHere > 0 {
			has = append(has, fmt.Sprintf("%d WAL entries no other member had", s.WALOnlyHere))
		}
		if i == best {
			has = append(has, "the db every output member holds")
		}
		if s.Gave > 0 || s.Vouched > 0 {
			has = append(has, fmt.Sprintf("%d revisions the chosen db's repair had to call lost, held whole (%d key records copied)", s.Vouched, s.Gave))
		}
		r := reps[i]
		switch {
		case r == nil:
			lacks = append(lacks, "a repairable db: "+s.Error)
		case !s.DBPresent:
			lacks = append(lacks, "a readable db")
		default:
			if s.DBFindings > 0 {
				lacks = append(lacks, fmt.Sprintf("an intact db (%d scan findings)", s.DBFindings))
			}
			if !r.Complete {
				lacks = append(lacks, fmt.Sprintf("revisions %v even with every member's WAL", r.LostRevisions))
			}
		}
		if !s.WALClean {
			lacks = append(lacks, "a clean WAL")
		}
		s.Contributed, s.Lacked = strings.Join(has, "; "), strings.Join(lacks, "; ")
		if s.Contributed == "" {
			s.Contributed = "cross-check only"
		}
		if s.Lacked == "" {
			s.Lacked = "nothing"
		}
	}
}

func clusterNextSteps(rep *ClusterReport) {
	var names []string
	for _, m := range rep.Members {
		names = append(names, m.Name)
	}
	rep.Next = append(rep.Next,
		"stop etcd on every node (kubeadm: move /etc/kubernetes/manifests/etcd.yaml out of the manifests dir on each) and keep every damaged dir (mv DATA_DIR DATA_DIR.damaged)",
		fmt.Sprintf("copy %s/<name> to the data dir of the node named <name> (%s): each node gets its own member dir", rep.Output, strings.Join(names, ", ")),
		"start all members together, within etcd's election timeout of each other's start being harmless (they wait for a quorum): move etcd.yaml back on every node",
		"check: etcdctl endpoint health --cluster; etcdctl endpoint status --cluster -w table; kubectl get nodes",
	)
	if rep.MarkCompacted {
		rep.Next = append(rep.Next, "the revision was bumped and compacted: kube-apiserver watch caches will relist (expected)")
	}
	if !rep.Complete {
		rep.Next = append(rep.Next, "some revisions may be lost or sources disagreed: review lost_revisions and disagreements; re-apply manifests for source-of-truth objects")
	}
	sort.SliceStable(rep.Members, func(i, j int) bool { return rep.Members[i].Name < rep.Members[j].Name })
}
