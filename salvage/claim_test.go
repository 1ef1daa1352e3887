package salvage

import (
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
)

// TestSalvageStaleKeyTree: a key bucket that walks clean but is not the last
// state of the data (what a cp of a live file can leave) is not taken on
// its word: salvage sees the records it lacks, says why, decides every
// record by evidence, and never claims complete; every key that comes out
// wrong lies in a reported range or is named.
func TestSalvageStaleKeyTree(t *testing.T) {
	for _, name := range []string{"kube", "default"} {
		t.Run(name, func(t *testing.T) {
			w := map[string]fixtures.Workload{"kube": fixtures.KubeWorkload(), "default": fixtures.DefaultWorkload()}[name]
			dir, truth := fixtures.Cached(t, name, w)
			db := fixtures.DBPath(dir)
			dmg, err := fixtures.StaleKeyTree(db)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(dmg)
			out := filepath.Join(t.TempDir(), "new.db")
			rep, err := Run(db, out, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.TreeDistrusted == "" || rep.Complete {
				t.Errorf("stale key tree taken on its word: distrusted %q, complete %v", rep.TreeDistrusted, rep.Complete)
			}
			s := readSalvaged(t, out)
			judge(t, truth, rep, s, false)
			d := fixtures.Compare(truth, s.latest)
			t.Logf("%s; distrusted: %s; evidence %+v; left out %d", d, rep.TreeDistrusted, rep.Evidence, rep.LeftOutCount)
		})
	}
}
