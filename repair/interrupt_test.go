package repair

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/salvage"
)

// cancelAt is a progress counter that cancels the repair when phase
// starts ("" = at the first page counted).
type cancelAt struct {
	phase  string
	cancel context.CancelFunc
	seen   []string
}

func (c *cancelAt) Add(int64) {
	if c.phase == "" {
		c.cancel()
	}
}

func (c *cancelAt) Phase(name string, _ int64) {
	c.seen = append(c.seen, name)
	if name == c.phase {
		c.cancel()
	}
}

// An interrupted repair leaves nothing behind: no output, no temp dir.
func TestRepairInterrupted(t *testing.T) {
	for _, tc := range []struct{ name, phase string }{
		{"during the scan", ""},
		{"replaying the WAL", "replaying the WAL"},
		{"writing the member dir", "writing the member dir"},
		{"during the start check", "starting etcd on a copy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
			if _, err := fixtures.HalfZeroBranch(fixtures.DBPath(dir), "key", 0); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			progress := &cancelAt{phase: tc.phase, cancel: cancel}
			parent := t.TempDir()
			_, err := Run(dir, Options{Out: filepath.Join(parent, "repaired"), Context: ctx, Progress: progress,
				StartCheck: func(string) (int, int64, error) { return 1, 1, nil }})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("want an interrupt, got %v (phases %q)", err, progress.seen)
			}
			if ents, _ := os.ReadDir(parent); len(ents) > 0 {
				t.Errorf("left behind: %v", ents)
			}
			t.Logf("%v after phases %q", err, progress.seen)
		})
	}
}

// failOnWork fails the test when the repair starts any work.
type failOnWork struct{ t *testing.T }

func (f failOnWork) Add(int64)               { f.t.Error("work started before a refusal") }
func (f failOnWork) Phase(n string, _ int64) { f.t.Errorf("phase %q started before a refusal", n) }

// Every refusal comes before any work: none of these reads a page.
func TestRepairRefusesBeforeWork(t *testing.T) {
	dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	out := filepath.Join(t.TempDir(), "repaired")
	zero, yes := uint64(0), true
	fifoDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(fifoDir, "member", "snap"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mkfifo(filepath.Join(fifoDir, "member", "snap", "db")); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, tc := range []struct {
		name string
		dir  string
		opts Options
		want error
	}{
		{"output inside the input", dir, Options{Out: filepath.Join(dir, "x")}, ErrOutputInInput},
		{"bad --initial-cluster", dir, Options{Out: out, InitialCluster: "no-equals-sign"}, nil},
		{"--mark-compacted without a bump", dir, Options{Out: out, MarkCompacted: &yes, BumpRevision: &zero}, nil},
		{"missing --wal-dir", dir, Options{Out: out, WALDir: filepath.Join(dir, "nowhere")}, os.ErrNotExist},
		{"db is a FIFO", fifoDir, Options{Out: out}, ErrNotRegularFile},
		{"nothing to repair", t.TempDir(), Options{Out: out}, ErrNothingToRepair},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Progress = failOnWork{t}
			_, err := Run(tc.dir, tc.opts)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output exists after a refusal")
			}
		})
	}
}

var _ salvage.Phaser = (*cancelAt)(nil)
