package salvage

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/spill"
)

// TestSpilledSalvageIsTheSame: with every table spilled to temp files (as
// for a db of a few GiB), salvage writes the same file and the same report
// as with the tables on the heap, on a healthy and on a damaged db; and it
// leaves no spill file behind.
func TestSpilledSalvageIsTheSame(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(string) (fixtures.Damage, error)
	}{
		{"healthy", func(string) (fixtures.Damage, error) { return fixtures.Damage{}, nil }},
		{"half-zeroed-root-branch", func(db string) (fixtures.Damage, error) { return fixtures.HalfZeroBranch(db, "key", 0) }},
		{"garbage-leaves", func(db string) (fixtures.Damage, error) { return fixtures.GarbageLeaves(db, 3, 7) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
			db := fixtures.DBPath(dir)
			if _, err := tc.damage(db); err != nil {
				t.Fatal(err)
			}
			run := func(threshold int64) ([]byte, []byte, string) {
				oldT, oldM := spill.Threshold, spill.MinSpill
				spill.Threshold, spill.MinSpill = threshold, min(threshold, oldM)
				defer func() { spill.Threshold, spill.MinSpill = oldT, oldM }()
				outDir := t.TempDir()
				out := filepath.Join(outDir, "new.db")
				rep, err := Run(db, out, Options{})
				if err != nil {
					t.Fatal(err)
				}
				rep.Output, rep.Next = "", nil
				js, err := json.Marshal(rep)
				if err != nil {
					t.Fatal(err)
				}
				s := readSalvaged(t, out)
				var recs bytes.Buffer
				for _, rev := range sortedRevisions(s.records) {
					recs.WriteString(rev.String())
					recs.Write(s.records[rev])
				}
				ents, _ := os.ReadDir(outDir)
				var names string
				for _, e := range ents {
					names += e.Name() + " "
				}
				return js, recs.Bytes(), names
			}
			heapJS, heapRecs, _ := run(1 << 62)
			spillJS, spillRecs, left := run(0)
			if !bytes.Equal(heapRecs, spillRecs) {
				t.Error("the spilled salvage wrote other records")
			}
			if !bytes.Equal(heapJS, spillJS) {
				t.Errorf("the spilled salvage reported otherwise:\nheap  %s\nspill %s", heapJS, spillJS)
			}
			if left != "new.db " {
				t.Errorf("output dir holds %q, want only new.db", left)
			}
		})
	}
}

func sortedRevisions(m map[pagewalk.Revision][]byte) []pagewalk.Revision {
	out := make([]pagewalk.Revision, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return revLess(out[i], out[j]) })
	return out
}
