package wal

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/pagewalk"
	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestReplayStopsWhereLossDecides: a db that lost the record a guarded
// transaction compares (Kubernetes guards every update with the key's mod
// revision) takes the other branch on replay: no revision is written, and
// every later revision gets another number. Given the lost range, the
// replay stops before that entry instead.
func TestReplayStopsWhereLossDecides(t *testing.T) {
	dir, work := t.TempDir(), t.TempDir()
	le := startEtcd(t, dir, nil)
	ctx := context.Background()
	if _, err := le.cli.Put(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	r2, err := le.cli.Put(ctx, "k", "v2")
	if err != nil {
		t.Fatal(err)
	}
	early := filepath.Join(work, "early.db")
	le.snapshot(early)
	tr, err := le.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision("k"), "=", r2.Header.Revision)).
		Then(clientv3.OpPut("k", "v3")).Else(clientv3.OpGet("k")).Commit()
	if err != nil || !tr.Succeeded {
		t.Fatalf("guarded update: %v (succeeded %v)", err, tr != nil && tr.Succeeded)
	}
	last, err := le.cli.Put(ctx, "other", "x")
	if err != nil {
		t.Fatal(err)
	}
	le.stop()
	l, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	ci := consistentIndex(t, early)
	// The snapshot loses its newest record of k (revision r2).
	lose := func(db string) {
		b, err := bolt.Open(db, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := b.Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("key")).Delete(pagewalk.RevisionKey(pagewalk.Revision{Main: r2.Header.Revision}))
		}); err != nil {
			t.Fatal(err)
		}
	}
	plain := filepath.Join(work, "plain.db")
	copyFile(t, early, plain)
	lose(plain)
	res, err := Replay(plain, l.ReplayEntries(ci, false), ReplayOptions{CommitIndex: l.CommitIndex()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision == last.Header.Revision {
		t.Fatalf("without the lost range the replay still reached revision %d: the fixture shows nothing", res.Revision)
	}
	t.Logf("without the lost range: revision %d, etcd's %d", res.Revision, last.Header.Revision)

	told := filepath.Join(work, "told.db")
	copyFile(t, early, told)
	lose(told)
	res, err = Replay(told, l.ReplayEntries(ci, false), ReplayOptions{CommitIndex: l.CommitIndex(), Lost: [][2]int64{{r2.Header.Revision, r2.Header.Revision}}})
	var unc *UncertainError
	if !errors.As(err, &unc) {
		t.Fatalf("replay with the lost range: err %v, want an UncertainError", err)
	}
	t.Logf("%v", unc)
	if res.Revision >= tr.Header.Revision {
		t.Errorf("the replay went on to revision %d past the guarded update (revision %d)", res.Revision, tr.Header.Revision)
	}
	// A lost range the compare does not depend on changes nothing.
	other := filepath.Join(work, "other.db")
	copyFile(t, early, other)
	res, err = Replay(other, l.ReplayEntries(ci, false), ReplayOptions{CommitIndex: l.CommitIndex(), Lost: [][2]int64{{1, 1}}})
	if err != nil || res.Revision != last.Header.Revision {
		t.Errorf("a loss below k's newest record stopped the replay: err %v, revision %d, want %d", err, res.Revision, last.Header.Revision)
	}
}
