package salvage

import (
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
)

// Random damage on a real etcd db: salvage never panics, and whatever it
// writes passes bbolt's check (Run verifies before it renames).
func TestSalvageRandomDamage(t *testing.T) {
	dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	orig, err := os.ReadFile(fixtures.DBPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewSource(42))
	iterations := 40
	if testing.Short() {
		iterations = 8
	}
	for i := 0; i < iterations; i++ {
		b := append([]byte(nil), orig...)
		switch i % 4 {
		case 0: // scattered bit flips
			for j := 0; j < 1+rnd.Intn(200); j++ {
				p := rnd.Intn(len(b))
				b[p] ^= 1 << rnd.Intn(8)
			}
		case 1: // a run of garbage
			p, n := rnd.Intn(len(b)), 16+rnd.Intn(64<<10)
			rnd.Read(b[p:min(len(b), p+n)])
		case 2: // zeroed run
			p, n := rnd.Intn(len(b)), 16+rnd.Intn(64<<10)
			clear(b[p:min(len(b), p+n)])
		case 3: // truncated, and flipped
			b = b[:rnd.Intn(len(b))]
			for j := 0; j < rnd.Intn(20) && len(b) > 0; j++ {
				b[rnd.Intn(len(b))] ^= 0xFF
			}
		}
		in := filepath.Join(t.TempDir(), "db")
		if err := os.WriteFile(in, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out.db")
		rep, err := Run(in, out, Options{})
		if err != nil {
			// Only "not a bbolt file at all" may stop a salvage.
			if _, serr := os.Stat(out); serr == nil {
				t.Fatalf("iteration %d: error %v but an output exists", i, err)
			}
			continue
		}
		// The published file itself, not rep.Verified (true in every
		// report Run returns).
		if err := verify(out); err != nil {
			t.Fatalf("iteration %d: output fails bbolt's check: %v (complete %v)", i, err, rep.Complete)
		}
	}
}
