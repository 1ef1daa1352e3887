package salvage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
)

// cancelAtPhase cancels the salvage when phase starts.
type cancelAtPhase struct {
	phase  string
	cancel context.CancelFunc
}

func (c *cancelAtPhase) Add(int64) {}
func (c *cancelAtPhase) Phase(name string, _ int64) {
	if name == c.phase {
		c.cancel()
	}
}

// An interrupted salvage publishes nothing and leaves no temp file.
func TestSalvageInterrupted(t *testing.T) {
	dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	db := fixtures.DBPath(dir)
	if _, err := fixtures.GarbageLeaves(db, 3, 7); err != nil {
		t.Fatal(err)
	}
	for _, phase := range []string{"carving unreached pages", "writing the new db", "checking the new db"} {
		t.Run(phase, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			parent := t.TempDir()
			_, err := Run(db, filepath.Join(parent, "new.db"), Options{Context: ctx, Progress: &cancelAtPhase{phase, cancel}})
			var ie *InterruptedError
			if !errors.As(err, &ie) || !errors.Is(err, context.Canceled) {
				t.Fatalf("want an interrupt, got %v", err)
			}
			if ents, _ := os.ReadDir(parent); len(ents) > 0 {
				t.Errorf("left behind: %v", ents)
			}
		})
	}
}
