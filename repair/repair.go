package repair

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/salvage"
	"github.com/boltfix/boltfix/wal"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// ErrOutputExists: the output dir exists and is not empty, and Force is off.
var ErrOutputExists = errors.New("output directory exists and is not empty (use --force to replace it)")

// errRefused: the membership check refused the repair (Report.Refused).
var errRefused = errors.New("refused: one member of a multi-member cluster")

// ErrOutputInInput: the output is the input data dir or inside it.
var ErrOutputInInput = errors.New("output is the input data dir or inside it: boltfix never writes into its input")

// CheckOutput refuses an output that would harm the input or an existing
// dir, before any work.
func CheckOutput(dataDir, out string, force bool) error {
	if out == "" {
		return errors.New("no output dir given (--out)")
	}
	ain, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	aout, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(ain, aout); err == nil && (rel == "." || !startsWithDotDot(rel)) {
		return ErrOutputInInput
	}
	if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 && !force {
		return fmt.Errorf("%s: %w", out, ErrOutputExists)
	}
	if st, err := os.Stat(out); err == nil && !st.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", out)
	}
	return nil
}

func startsWithDotDot(rel string) bool {
	return rel == ".." || len(rel) > 2 && rel[:3] == ".."+string(filepath.Separator)
}

// Run repairs the etcd data dir at dataDir into opts.Out. The Report is
// valid whenever err is nil; Complete says whether anything was lost.
func Run(dataDir string, opts Options) (*Report, error) {
	in, err := preflight(dataDir, opts)
	if err != nil {
		return nil, err
	}
	ctx := opts.Context
	lg := opts.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	rep := &Report{Schema: ReportSchema, Input: dataDir, Output: opts.Out, LostRevisions: [][2]int64{}, LostReasons: []string{}, Unproven: []string{},
		Disagreements: []string{}, Notes: []string{}, Next: []string{}, PossiblyStale: []salvage.StaleKey{}, Ledger: []salvage.ResourceLedger{}, Alarms: []string{},
		Warnings: []string{}}

	// The WAL and the .snap files say which cluster this is: a member of a
	// multi-member cluster is refused before anything is salvaged or written.
	// A missing WAL dir (a lost WAL disk) is no WAL: the db alone, with a
	// warning. RunCluster gives the union of its members' WALs instead.
	db, walDir := in.db, in.walDir
	log, werr := opts.log, error(nil)
	if log == nil && !in.walMissing {
		log, werr = wal.Read(walDir)
	}
	if werr != nil && !errors.Is(werr, wal.ErrNoWAL) {
		return nil, fmt.Errorf("read WAL: %w", werr)
	}
	if m := readMembership(db, log, nil); earlyGate(m, db) && gateMembership(m, opts, rep) {
		return rep, nil
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(opts.Out)), 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(filepath.Dir(filepath.Clean(opts.Out)), ".boltfix-repair-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	base := filepath.Join(work, "base.db")
	st, err := prepareBase(db, base, log, opts, rep)
	if errors.Is(err, errRefused) || err == nil && rep.Membership == nil && gateMembership(readMembership(db, log, nil), opts, rep) {
		// (The second: a db that was not scanned, and the early gate
		// waited for it.)
		return rep, nil
	}
	if err != nil {
		return nil, err
	}
	if err := salvage.Interrupted(ctx, "salvaging the db"); err != nil {
		return nil, err
	}

	// The WAL (read above): every committed entry the base lacks.
	salvage.StartPhase(opts.Progress, "reading and replaying the WAL", -1)
	rep.WAL = &WALPart{}
	if log != nil {
		rep.WAL = &WALPart{Present: true, Clean: log.Clean(), FirstIndex: log.FirstIndex(), LastIndex: log.LastIndex(),
			Commit: log.CommitIndex(), Stops: log.Stops(), Snapshots: len(log.Snapshots)}
		if rep.WAL.Stops == nil {
			rep.WAL.Stops = []*wal.Stop{}
		}
		rep.WAL.Missing = log.Missing(rep.DB.BaseIndex)
		audited := false
		if !fullHistory(log, rep) {
			var err error
			if audited, err = auditDB(&base, work, log, st, lg, rep); err != nil {
				return nil, err
			}
		}
		if audited {
			// The audit settled the base: anchored and replayed, or found
			// it older (or newer) than it claims with nothing to anchor it.
		} else if fullHistory(log, rep) {
			full := filepath.Join(work, "full.db")
			if err := replayFull(full, base, log, st, lg, rep); err != nil {
				return nil, err
			}
			base = full
		} else if tryAnchors(&base, work, log, st, lg, rep) {
			// The replay from the anchor rebuilt everything above it,
			// including any effect the audit found missing after it.
			st.proven = rep.Audit == nil || rep.Audit.settledBy(rep.DB.BaseIndex)
		} else if err := replay(base, log, st, opts, lg, rep); err != nil {
			return nil, err
		}
	} else {
		rep.Notes = append(rep.Notes, noWALNote(walDir, in.walMissing, rep.DB.BaseIndex))
		if !rep.DB.Present {
			return nil, ErrNothingToRepair
		}
	}
	if err := salvage.Interrupted(ctx, "replaying the WAL"); err != nil {
		return nil, err
	}
	st.finishLost(rep)

	if err := writeMember(base, work, log, opts, lg, rep); err != nil {
		return nil, err
	}
	// The last point where an interrupt leaves nothing behind.
	if err := salvage.Interrupted(ctx, "checking the new member dir"); err != nil {
		return nil, err
	}
	if err := publish(filepath.Join(work, "out"), opts.Out, opts.Force); err != nil {
		return nil, err
	}
	rep.Member.DataDir = opts.Out
	nextSteps(rep)
	return rep, nil
}

// baseState is what prepareBase learned about the state replay starts from.
type baseState struct {
	lost    [][2]int64
	reasons []string
	// dropped are carved records above the base revision, taken out so
	// that replay renumbers nothing; replay must give them back identical.
	dropped map[string][]byte
	// openTop: records above the base revision may be lost unless the
	// replay regenerates them.
	openTop    bool
	topReason  string
	replayed   bool // the replay reached the WAL's commit index
	fullReplay bool // the whole history was replayed from index 1
	topIntact  bool // the base revision is exactly the state at the db's consistent_index
	compact    int64
	ctx        context.Context // Options.Context, for the replays
	term       uint64          // the db's term
	// proven: an anchor replay reproduced every salvaged record above it,
	// which proves the state it started from whatever the db claimed.
	proven bool
	// auditLost is the range the audit found lost (the db is not at the
	// index it claims, and no anchor placed it), nil if none.
	auditLost *salvage.LostRange
}

// prepareBase salvages the db into base and cuts it back to a state that
// matches its consistent_index, so that replaying the entries above that
// index gives every record the revision it had.
func prepareBase(db, base string, log *wal.Log, opts Options, rep *Report) (*baseState, error) {
	st := &baseState{dropped: map[string][]byte{}, ctx: opts.Context}
	rep.DB = &DBPart{}
	if _, err := os.Stat(db); err != nil {
		if !os.IsNotExist(err) {
			return nil, err
		}
		rep.DB.Strategy = "no db: replay the WAL from an empty store"
		rep.Notes = append(rep.Notes, "member/snap/db is missing")
		return st, nil
	}
	rep.DB.Present = true
	f, err := pagewalk.Open(db)
	if err != nil {
		if errors.Is(err, pagewalk.ErrNotBolt) {
			rep.DB.Strategy = "db unreadable (no bbolt structure): replay the WAL from an empty store"
			rep.Notes = append(rep.Notes, err.Error())
			rep.DB.Present = false
			return st, nil
		}
		return nil, err
	}
	defer f.Close()
	salvage.StartPhase(opts.Progress, "scanning the db", int64(f.PageCount()))
	res, err := f.Scan(pagewalk.Options{Progress: opts.Progress, Context: opts.Context})
	if err != nil {
		return nil, err
	}
	// The db's members bucket and confState complete the membership; a
	// cluster the WAL could not show is refused here, before the salvage.
	if gateMembership(readMembership(db, log, res.Report.Etcd), opts, rep) {
		return nil, errRefused
	}
	rep.DB.Findings = len(res.Report.Findings)
	rep.StorageVersion = res.Report.Etcd.StorageVersion
	rep.ClusterVersion = res.Report.Etcd.ClusterVersion
	srep, err := salvage.FromScan(res, db, base, salvage.Options{Aggressive: opts.Aggressive, MaxListed: 100,
		Progress: opts.Progress, Context: opts.Context})
	if err != nil {
		var ie *salvage.InterruptedError
		if errors.As(err, &ie) {
			return nil, err
		}
		return nil, fmt.Errorf("salvage: %w", err)
	}
	rep.DB.Salvage = srep
	rep.Counts.Reached, rep.Counts.Carved = srep.Records.Reached, srep.Records.Carved
	st.compact = srep.CompactRevision
	if srep.ConsistentIndex != nil {
		rep.DB.BaseIndex = *srep.ConsistentIndex
	}
	if srep.Term != nil {
		st.term = *srep.Term
	}
	// Nothing etcd's code would crash on may stay in the store it restores.
	bad, err := sanitizeDB(base)
	if err != nil {
		return nil, fmt.Errorf("validate the salvaged db: %w", err)
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

	// Where the tree's key bucket is intact at its top, its newest record
	// is the revision at consistent_index: carved records above it are
	// later commits (or never committed) and the replay must recreate them.
	kb := res.Bucket("key")
	topIntact := kb != nil && !openKeyDamage(res)
	if topIntact {
		if r, ok := pagewalk.ParseRevision(kb.Last); ok {
			rep.DB.BaseRevision = r.Main
			if err := dropAbove(base, r.Main, st.dropped); err != nil {
				return nil, err
			}
			rep.Counts.Carved -= len(st.dropped)
			rep.DB.Strategy = fmt.Sprintf("the walked tree's key bucket is intact at the top: start from its newest revision %d at consistent_index %d", r.Main, rep.DB.BaseIndex)
		} else {
			topIntact = false
		}
	}
	st.topIntact = topIntact
	if !topIntact {
		st.topReason = "the db's newest records were damaged: revisions after the newest salvaged one may be lost"
		rep.DB.BaseRevision = srep.LastRevision
		rep.DB.Strategy = fmt.Sprintf("the key bucket's newest records were damaged: start from every salvaged record (newest %d) at consistent_index %d", srep.LastRevision, rep.DB.BaseIndex)
	}
	for i, r := range srep.LostRevisions {
		if r[1] == 0 {
			// An open top: the replay may close it (finishLost decides).
			st.openTop = true
			if st.topReason == "" {
				st.topReason = srep.LostReasons[i]
			}
			continue
		}
		st.lost = append(st.lost, r)
		st.reasons = append(st.reasons, srep.LostReasons[i])
	}
	if topIntact {
		// Nothing above the base revision is claimed by the db any more:
		// the WAL decides.
		st.openTop = true
		st.topReason = "revisions after the db's state at its consistent_index come only from the WAL"
	}
	return st, nil
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
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true})
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

// replay applies the committed WAL entries above the base's index.
func replay(base string, log *wal.Log, st *baseState, opts Options, lg *zap.Logger, rep *Report) error {
	commit := log.CommitIndex()
	if commit == 0 {
		rep.Notes = append(rep.Notes, "the WAL holds no HardState: no entry is known to be committed, nothing replayed")
		return nil
	}
	if commit <= rep.DB.BaseIndex {
		st.replayed = true
		rep.Notes = append(rep.Notes, fmt.Sprintf("the db already holds every committed entry (consistent_index %d, WAL commit %d)", rep.DB.BaseIndex, commit))
		return nil
	}
	rr, err := replayAfter(st.ctx, base, log, rep.DB.BaseIndex, lg)
	var gap *wal.GapError
	switch {
	case errors.As(err, &gap):
		rep.Notes = append(rep.Notes, gap.Error())
	case err != nil:
		return fmt.Errorf("replay: %w", err)
	default:
		st.replayed = rr.LastApplied >= commit || rr.ConsistentIndex >= commit
	}
	rep.Replay = rr
	rep.Counts.Replayed = len(rr.Records)
	cc := wal.CompareRecords(rr.Records, func(k []byte) ([]byte, bool) {
		v, ok := st.dropped[string(k)]
		return v, ok
	})
	rep.Counts.Regenerated = cc.Matched
	rep.Disagreements = append(rep.Disagreements, cc.Differ...)
	// Carved records above the base that the replay did not produce: the
	// WAL did not reach them (or they were never committed).
	produced := map[string]bool{}
	for _, r := range rr.Records {
		produced[string(r.Key)] = true
	}
	missed := 0
	for k := range st.dropped {
		if !produced[k] {
			missed++
		}
	}
	if missed > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d carved records above the base revision were not produced by the replay (never committed, or past the WAL's reach)", missed))
	}
	return nil
}

// finishLost decides the final lost ranges.
func (st *baseState) finishLost(rep *Report) {
	lost, reasons := st.lost, st.reasons
	top := rep.DB.BaseRevision
	if rep.Replay != nil {
		top = rep.Replay.Revision
	}
	walCovers := rep.WAL.Present && len(rep.WAL.Missing) == 0 && st.replayed
	switch {
	case !rep.DB.Present && (!rep.WAL.Present || rep.WAL.FirstIndex > 1 || !walCovers):
		lost = append(lost, [2]int64{1, 0})
		reasons = append(reasons, "no usable db and the WAL does not reach back to the first entry: the history before the WAL is lost")
	case !rep.DB.Present:
		// The whole history replayed from index 1.
	case st.fullReplay:
	case !st.topIntact:
		// The db's newest records were damaged: nothing shows whether
		// records between the newest salvaged one and the state at the
		// db's consistent_index are gone.
		lost = append(lost, [2]int64{rep.DB.BaseRevision + 1, 0})
		reasons = append(reasons, st.topReason)
	case st.openTop && !walCovers:
		lost = append(lost, [2]int64{top + 1, 0})
		reasons = append(reasons, st.topReason+"; the WAL does not cover every committed entry after the db's consistent_index")
	}
	if rep.WAL.Present && len(rep.WAL.Missing) > 0 && rep.DB.Present && !st.fullReplay {
		g := rep.WAL.Missing[0]
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
	// Complete means proven: the db's claims must hold against the WAL
	// (or a replay from index 1 or from an anchor must have rebuilt the
	// state), and nothing left out may stand unexplained.
	if rep.DB.Present && !st.fullReplay && !st.proven {
		switch a := rep.Audit; {
		case a == nil:
		case !a.Holds:
			rep.Unproven = append(rep.Unproven, "the audit against the WAL failed: "+a.Verdict)
		case !a.Vouched:
			rep.Unproven = append(rep.Unproven, a.Verdict)
		}
	}
	if s := rep.DB.Salvage; s != nil && !st.fullReplay && s.UnverifiedCount > 0 {
		// Values nothing vouches for (damage that can flip value bytes
		// unseen, no identical copy): proven only where the replay
		// regenerated them, above the base revision.
		n := s.UnverifiedCount
		if len(s.Unverified) == n {
			n = 0
			for _, u := range s.Unverified {
				if u.Revision.Main <= rep.DB.BaseRevision {
					n++
				}
			}
		}
		if n > 0 {
			rep.Unproven = append(rep.Unproven, fmt.Sprintf("%d records hold values nothing vouches for (%s): --json db.salvage.unverified", n, s.UnverifiedReason))
		}
	}
	if len(rep.Unproven) > 0 {
		rep.Complete = false
	}
	if s := rep.DB.Salvage; s != nil && s.Records.Uncertain > 0 && !st.fullReplay {
		// Left-out carved records may have been real: only a full replay
		// settles them.
		rep.Complete = false
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d carved records below the compaction point were left out as possible compaction garbage", s.Records.Uncertain))
	}
}

// writeMember writes the member dir around base and checks it.
func writeMember(base, work string, log *wal.Log, opts Options, lg *zap.Logger, rep *Report) error {
	name, urls, err := opts.member()
	if err != nil {
		return err
	}
	// Revisions may have gone backwards when anything at the top may be
	// lost: Kubernetes watch caches must then relist.
	bump, mark := uint64(0), false
	for _, r := range rep.LostRevisions {
		if r[1] == 0 {
			bump, mark = defaultBump, true
			rep.BumpReason = "revisions at the top of the history may be lost: the revision is bumped and marked compacted so watchers (the Kubernetes watch cache) relist instead of serving stale data"
		}
	}
	if opts.BumpRevision != nil {
		bump = *opts.BumpRevision
	}
	if opts.MarkCompacted != nil {
		mark = *opts.MarkCompacted
	}
	if mark && bump == 0 {
		return errors.New("--mark-compacted needs --bump-revision > 0")
	}
	rep.RevisionBump, rep.MarkCompacted = bump, mark
	if _, err := os.Stat(base); err != nil {
		// No db and nothing replayed: start from an empty etcd db.
		if _, err := wal.Replay(base, nil, wal.ReplayOptions{Logger: lg, CommitIndex: 1}); err != nil {
			return fmt.Errorf("create an empty db: %w", err)
		}
	}
	out := filepath.Join(work, "out")
	salvage.StartPhase(opts.Progress, "writing the member dir", -1)
	mres, err := wal.WriteMemberDir(base, out, wal.MemberConfig{Logger: lg, Name: name, PeerURLs: urls,
		InitialClusterToken: opts.InitialClusterToken, WAL: log, RevisionBump: bump, MarkCompacted: mark})
	if err != nil {
		return err
	}
	rep.Member = mres
	rep.Checks.IndexWithinWAL = mres.ConsistentIndex <= mres.CommitIndex
	newDB := filepath.Join(out, "member", "snap", "db")
	if err := bboltCheck(newDB); err != nil {
		return fmt.Errorf("the new db fails bbolt's check (a bug in boltfix): %w", err)
	}
	rep.Checks.BboltCheck = true
	an, err := salvage.Analyze(newDB, rep.LostRevisions, 1000)
	if err != nil {
		return err
	}
	rep.Counts.Final = an.Records
	rep.PossiblyStale, rep.PossiblyStaleCount, rep.Ledger = an.PossiblyStale, an.PossiblyStaleCount, an.Ledger
	cv := rep.ClusterVersion
	if cv == "" {
		cv = "unknown"
	}
	switch {
	case rep.StorageVersion != "":
		rep.Version = "3.6 or newer (storageVersion " + rep.StorageVersion + ", cluster version " + cv + ")"
	case rep.DB.Present:
		rep.Version = "3.5 or older (no storageVersion in meta; cluster version " + cv + "): nothing newer is written"
	}
	// What the new db says of itself: a 3.5 member must not find a
	// storageVersion it would not write (a later upgrade would take the db
	// for a newer one); alarms as the new member will see them (the db's,
	// and any the replay raised).
	rep.OutputStorageVersion, rep.Alarms = an.Etcd.StorageVersion, an.Etcd.Alarms
	if rep.StorageVersion == "" && rep.OutputStorageVersion != "" && rep.DB.Present {
		return fmt.Errorf("the new db carries storageVersion %q but the data was written by etcd 3.5 or older", rep.OutputStorageVersion)
	}
	if opts.SkipStartCheck {
		rep.Checks.EtcdCheckSkipped = true
		return nil
	}
	check := opts.StartCheck
	if check == nil {
		check = StartCheck
	}
	if err := salvage.Interrupted(opts.Context, "writing the member dir"); err != nil {
		return err
	}
	salvage.StartPhase(opts.Progress, "starting etcd on a copy", -1)
	cp := filepath.Join(work, "check")
	if err := copyDir(out, cp); err != nil {
		return err
	}
	keys, rev, err := check(cp)
	if err != nil {
		rep.Checks.EtcdError = err.Error()
		return fmt.Errorf("etcd did not start on the repaired dir: %w", err)
	}
	rep.Checks.EtcdStarted, rep.Checks.EtcdKeys, rep.Checks.EtcdRevision = true, keys, rev
	return nil
}

func bboltCheck(path string) error {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
}

// publish moves the finished member dir into place.
func publish(src, out string, force bool) error {
	if ents, err := os.ReadDir(out); err == nil {
		if len(ents) > 0 && !force {
			return fmt.Errorf("%s: %w", out, ErrOutputExists)
		}
		if err := os.RemoveAll(out); err != nil {
			return err
		}
	}
	if err := os.Rename(src, out); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(filepath.Clean(out)))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func nextSteps(rep *Report) {
	rep.Next = append(rep.Next,
		"stop etcd: on a kubeadm node, move /etc/kubernetes/manifests/etcd.yaml out of the manifests dir and wait for the etcd container to exit",
		fmt.Sprintf("keep the damaged dir: mv %s %s.damaged", rep.Input, rep.Input),
		fmt.Sprintf("put the repaired dir in its place: mv %s %s", rep.Output, rep.Input),
		"start etcd: move etcd.yaml back into /etc/kubernetes/manifests; then check: etcdctl endpoint health, kubectl get nodes",
	)
	for _, a := range rep.Alarms {
		rep.Next = append(rep.Next, fmt.Sprintf("the db carries an alarm (%s), copied as it was: etcd refuses writes while it is raised; once the cause is fixed (e.g. compact and defragment for NOSPACE): etcdctl alarm disarm", a))
	}
	if rep.MarkCompacted {
		rep.Next = append(rep.Next, "the revision was bumped and compacted: kube-apiserver watch caches will relist (expected)")
	}
	if !rep.Complete {
		rep.Next = append(rep.Next, "some revisions may be lost: review possibly_stale keys; re-apply manifests (kubectl apply) for source-of-truth objects")
	}
}

// fullHistory reports whether the WAL holds every entry from index 1 to its
// commit, reaching at least as far as the db: then replaying it from an
// empty store rebuilds the exact state, whatever happened to the db.
func fullHistory(log *wal.Log, rep *Report) bool {
	commit := log.CommitIndex()
	if log.FirstIndex() != 1 || commit == 0 || len(log.Missing(0)) > 0 {
		return false
	}
	return !rep.DB.Present || rep.DB.BaseIndex <= commit
}

// replayFull replays the whole WAL from an empty store into full and
// cross-checks every record it produces against the salvaged db.
func replayFull(full, salvaged string, log *wal.Log, st *baseState, lg *zap.Logger, rep *Report) error {
	commit := log.CommitIndex()
	rr, err := replayAfter(st.ctx, full, log, 0, lg)
	var gap *wal.GapError
	switch {
	case errors.As(err, &gap):
		// A damaged entry in the middle: fall back to the db-based replay.
		rep.Notes = append(rep.Notes, "full replay stopped: "+gap.Error())
		os.Remove(full)
		return replay(salvaged, log, st, Options{}, lg, rep)
	case err != nil:
		return fmt.Errorf("replay: %w", err)
	}
	rep.Replay = rr
	rep.DB.Strategy = fmt.Sprintf("the WAL holds every entry from index 1 to its commit %d: replayed the whole history from an empty store", commit)
	rep.DB.BaseIndex, rep.DB.BaseRevision = 0, 1
	rep.Counts.Replayed = len(rr.Records)
	st.replayed = rr.ConsistentIndex >= commit
	st.lost, st.reasons, st.openTop, st.fullReplay = nil, nil, false, true
	if _, err := os.Stat(salvaged); err != nil {
		return nil
	}
	db, err := bolt.Open(salvaged, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		kb := tx.Bucket([]byte("key"))
		cc := wal.CompareRecords(rr.Records, func(k []byte) ([]byte, bool) {
			if kb == nil {
				return nil, false
			}
			v := kb.Get(k)
			return v, v != nil
		})
		rep.Counts.Regenerated = cc.Matched
		rep.Disagreements = append(rep.Disagreements, cc.Differ...)
		return nil
	})
}

// locate finds the db and the WAL dir of dataDir, given as the data dir
// (DATA_DIR/member/{snap,wal}) or as the member dir itself; walDir, if set,
// is etcd's --wal-dir.
func locate(dataDir, walDir string) (db, wdir string) {
	member := filepath.Join(dataDir, "member")
	if _, err := os.Stat(member); err != nil {
		if _, err := os.Stat(filepath.Join(dataDir, "snap")); err == nil {
			member = dataDir // the member dir itself
		}
	}
	db, wdir = filepath.Join(member, "snap", "db"), filepath.Join(member, "wal")
	if walDir != "" {
		wdir = walDir
	}
	return db, wdir
}
