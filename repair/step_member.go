package repair

import (
	"errors"
	"fmt"
	"github.com/boltfix/boltfix/memberdir"
	"github.com/boltfix/boltfix/outfile"
	"os"
	"path/filepath"

	"github.com/boltfix/boltfix/salvage"
	"github.com/boltfix/boltfix/wal"
)

// writeMemberStep writes the member dir around the base into work/out.
func writeMemberStep(st *state, rep *Report) (bool, string, error) {
	opts := st.opts
	name, urls, err := opts.member()
	if err != nil {
		return false, "", err
	}
	// Revisions may have gone backwards when anything at the top may be
	// lost: Kubernetes watch caches must then relist.
	bump, mark := uint64(0), false
	for _, r := range st.final {
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
		return false, "", errors.New("--mark-compacted needs --bump-revision > 0")
	}
	rep.RevisionBump, rep.MarkCompacted = bump, mark
	if _, err := os.Stat(st.base); err != nil {
		// No db and nothing replayed: start from an empty etcd db.
		if _, err := wal.Replay(st.base, nil, wal.ReplayOptions{Logger: st.lg, CommitIndex: 1}); err != nil {
			return false, "", fmt.Errorf("create an empty db: %w", err)
		}
	}
	salvage.StartPhase(opts.Progress, "writing the member dir", -1)
	mres, err := memberdir.Write(st.base, filepath.Join(st.work, "out"), memberdir.Config{Logger: st.lg, Name: name, PeerURLs: urls,
		InitialClusterToken: opts.InitialClusterToken, WAL: st.log, RevisionBump: bump, MarkCompacted: mark,
		// The base is this repair's own scratch file, next to the output:
		// moved into the member dir, not copied again.
		TakeDB: true})
	if err != nil {
		return false, "", err
	}
	rep.Member = mres
	rep.Checks.IndexWithinWAL = mres.ConsistentIndex <= mres.CommitIndex
	return true, fmt.Sprintf("member %s, consistent_index %d, commit %d, revision bump %d", mres.Name, mres.ConsistentIndex, mres.CommitIndex, bump), nil
}

// checkOutputStep checks the new db: bbolt's check, then what it holds
// and says of itself.
func checkOutputStep(st *state, rep *Report) (bool, string, error) {
	newDB := filepath.Join(st.work, "out", "member", "snap", "db")
	salvage.StartPhase(st.opts.Progress, "checking the new db", -1)
	// bbolt's check and the census of the new db each read all of it:
	// they run side by side, on the two cores a node has at least. bbolt's
	// check costs the most (the restore's commit, as every etcd commit,
	// leaves no freelist page: the check first walks the tree to find the
	// free pages, then walks it again); when etcd's start check follows,
	// it goes on beside that too (startCheckStep waits for it).
	st.bboltChecked = make(chan error, 1)
	go func() { st.bboltChecked <- bboltCheck(newDB) }()
	an, err := salvage.Analyze(newDB, st.final, 1000)
	if st.opts.SkipStartCheck {
		if err := waitBboltCheck(st, rep); err != nil {
			return false, "", err
		}
	}
	if err != nil {
		return false, "", err
	}
	rep.Counts.Final = an.Records
	rep.PossiblyStale, rep.PossiblyStaleCount, rep.Ledger = an.PossiblyStale, an.PossiblyStaleCount, an.Ledger
	sv, cv := st.p.DB.StorageVersion, st.p.DB.ClusterVersion
	if cv == "" {
		cv = "unknown"
	}
	switch {
	case sv != "":
		rep.Version = "3.6 or newer (storageVersion " + sv + ", cluster version " + cv + ")"
	case st.dbPresent:
		rep.Version = "3.5 or older (no storageVersion in meta; cluster version " + cv + "): nothing newer is written"
	}
	// What the new db says of itself: a 3.5 member must not find a
	// storageVersion it would not write (a later upgrade would take the db
	// for a newer one); alarms as the new member will see them (the db's,
	// and any the replay raised).
	rep.OutputStorageVersion, rep.Alarms = an.Etcd.StorageVersion, an.Etcd.Alarms
	if sv == "" && rep.OutputStorageVersion != "" && st.dbPresent {
		return false, "", fmt.Errorf("the new db carries storageVersion %q but the data was written by etcd 3.5 or older", rep.OutputStorageVersion)
	}
	if st.opts.SkipStartCheck {
		rep.Checks.EtcdCheckSkipped = true
	}
	if !st.opts.SkipStartCheck {
		return true, fmt.Sprintf("%d key records; bbolt's check runs beside the start check", an.Records), nil
	}
	return true, fmt.Sprintf("bbolt check passed; %d key records", an.Records), nil
}

// waitBboltCheck waits for bbolt's check of the final db, once.
func waitBboltCheck(st *state, rep *Report) error {
	if st.bboltChecked == nil {
		return nil
	}
	err := <-st.bboltChecked
	st.bboltChecked = nil
	if err != nil {
		return fmt.Errorf("the new db fails bbolt's check (a bug in boltfix): %w", err)
	}
	rep.Checks.BboltCheck = true
	return nil
}

// startCheckStep starts etcd on a copy of the new member dir.
func startCheckStep(st *state, rep *Report) (bool, string, error) {
	check := st.opts.StartCheck
	if check == nil {
		check = StartCheck
	}
	salvage.StartPhase(st.opts.Progress, "starting etcd on a copy", -1)
	cp := filepath.Join(st.work, "check")
	if err := outfile.CopyDir(filepath.Join(st.work, "out"), cp); err != nil {
		return false, "", err
	}
	keys, rev, err := check(cp)
	if cerr := waitBboltCheck(st, rep); cerr != nil {
		return false, "", cerr
	}
	if err != nil {
		rep.Checks.EtcdError = err.Error()
		return false, "", fmt.Errorf("etcd did not start on the repaired dir: %w", err)
	}
	rep.Checks.EtcdStarted, rep.Checks.EtcdKeys, rep.Checks.EtcdRevision = true, keys, rev
	return true, fmt.Sprintf("etcd served %d keys at revision %d", keys, rev), nil
}

// publishStep moves the checked member dir into place: the last point
// where an interrupt (checked before each step) leaves nothing behind.
func publishStep(st *state, rep *Report) (bool, string, error) {
	// Nothing is published before bbolt's check of it has passed.
	if err := waitBboltCheck(st, rep); err != nil {
		return false, "", err
	}
	if err := outfile.PublishDir(filepath.Join(st.work, "out"), st.opts.Out, st.opts.Force); err != nil {
		return false, "", err
	}
	rep.Member.DataDir = st.opts.Out
	nextSteps(rep)
	return true, "written to " + st.opts.Out, nil
}

func bboltCheck(path string) error {
	// salvage's check, the same tx.Check, keeping the pages it maps: the
	// member dir write has just mapped the whole db (etcd's backend, with
	// MAP_POPULATE), so dropping them would lower no peak.
	return salvage.CheckMapped(path)
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
