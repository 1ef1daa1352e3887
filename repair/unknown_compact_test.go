package repair

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
)

// TestRepairCompactionFromWAL: every copy of the root bucket's leaf is
// zeroed, so the db no longer says its compaction revision. salvage alone
// then holds every carved record to the evidence and writes none
// (TestSalvageUnknownCompaction). repair takes the revision from the WAL's
// newest compaction entry instead: the records above it come back, and
// nothing compacted does.
func TestRepairCompactionFromWAL(t *testing.T) {
	dir, truth := fixtures.Cached(t, "kube", fixtures.KubeWorkload())
	db := fixtures.DBPath(dir)
	dmg, err := fixtures.ZeroRootLeaves(db)
	if err != nil {
		t.Fatal(err)
	}
	rep := run(t, dir)
	s := rep.DB.Salvage
	t.Logf("%s; compaction %d (%s); records %+v", dmg, s.CompactRevision, s.CompactSource, s.Records)
	if !strings.Contains(s.CompactSource, "WAL") || s.CompactRevision < truth.CompactRev {
		t.Fatalf("compaction %d from %q: want the WAL's, at least %d", s.CompactRevision, s.CompactSource, truth.CompactRev)
	}
	got := judgeKeys(t, truth, rep, false)
	exact := 0
	for k, want := range truth.Final {
		if g, ok := got[k]; ok && g.ModRevision == want.ModRevision && bytes.Equal(g.Value, want.Value) {
			exact++
		}
	}
	// Without the WAL's revision no record was written. With it, the
	// records above it are (compaction never removed them); below it the
	// newest record of a key still needs evidence, which a key bucket
	// walked from no root mostly lacks (docs/recovery.md §14).
	above := 0
	for _, kv := range truth.Final {
		if kv.ModRevision > s.CompactRevision {
			above++
		}
	}
	if exact < above/2 {
		t.Errorf("%d keys exact, %d keys were last written above the WAL's compaction revision: want most of those back", exact, above)
	}
	t.Logf("%d of %d keys exact", exact, len(truth.Final))
}

// TestRepairGarbageOverLastPage: random bytes over the last page of a
// key-bucket leaf that runs over several pages, on the Kubernetes-shaped
// history whose WAL keeps only its last segments (it does not reach back
// to the damaged records). Over the end of a value, every page stays
// well-formed: the Kubernetes frame shows the change, and the repair must
// not call the result complete. Over a key: the record is reported lost
// in a tight range, and the tree is not distrusted. etcd is started on
// every result and every key compared (judgeKeys).
func TestRepairGarbageOverLastPage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd once per case")
	}
	for _, where := range []string{fixtures.LastPageValueEnd, fixtures.LastPageKey} {
		for i := range 2 {
			t.Run(fmt.Sprintf("%s-%d", where, i), func(t *testing.T) {
				dir, truth := fixtures.Cached(t, "kube", fixtures.KubeWorkload())
				dmg, err := fixtures.GarbageLastPage(fixtures.DBPath(dir), where, i, uint64(i)+9)
				if err != nil {
					t.Fatal(err)
				}
				t.Log(dmg)
				rep := run(t, dir)
				judgeKeys(t, truth, rep, false)
				if rep.Complete {
					t.Errorf("%s: complete, though a value or key was changed on disk", dmg)
				}
				if s := rep.DB.Salvage; s != nil && s.TreeDistrusted != "" {
					t.Errorf("%s: the tree was distrusted: %s", dmg, s.TreeDistrusted)
				}
			})
		}
	}
}
