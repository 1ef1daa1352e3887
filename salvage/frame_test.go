package salvage

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/pagewalk"
)

// TestSalvageGarbageOverContinuationPage: random bytes over the last page
// of a reached leaf that runs over several pages, where only the end of
// its last record lies. Every page stays well-formed and the scan finds
// nothing; the record's Kubernetes value is wrong. Before the frame check
// the salvage called that complete (seen in 2 of 96 random-damage
// repairs); now the record is unverified and the salvage is not complete.
func TestSalvageGarbageOverContinuationPage(t *testing.T) {
	_, cases, garble := lastPageCases(t)
	rnd := rand.New(rand.NewSource(5))
	tried := 0
	for _, c := range cases {
		rev, ok := pagewalk.ParseRevision(c.key)
		// The record starts before the last page and ends at least 8 bytes
		// into it: the page holds its end and nothing else of the node.
		if !ok || rev.Tombstone || c.keyAt >= c.lastPageAt || c.valueEnd < c.lastPageAt+8 {
			continue
		}
		tried++
		dmg := garble(c, rnd)
		f, err := pagewalk.Open(dmg)
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.Scan(pagewalk.Options{})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !res.Report.Clean {
			continue // not the invisible case: the garbage shows elsewhere
		}
		rep, err := Run(dmg, filepath.Join(t.TempDir(), "new.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		listed := false
		for _, u := range rep.Unverified {
			listed = listed || u.Revision == rev
		}
		if rep.Complete || !listed || !strings.Contains(rep.UnverifiedReason, "not framed") {
			t.Fatalf("random bytes over page %d (the end of record %s): complete=%v, listed unverified=%v (%d: %s)",
				c.page, rev, rep.Complete, listed, rep.UnverifiedCount, rep.UnverifiedReason)
		}
		t.Logf("random bytes over page %d (the end of record %s): not complete, %d unverified", c.page, rev, rep.UnverifiedCount)
		if tried >= 3 {
			return
		}
	}
	if tried == 0 {
		t.Fatal("no leaf of the fixture ends in a continuation page holding only its last record's end")
	}
}

// TestSalvageGarbageOverLastKey: random bytes over the last page of a
// reached leaf that runs over several, where its last record's key lies.
// The changed key is left out and the revisions between the records around
// it are reported lost: the report stays tight. Before, the changed key
// moved the merge with the carved records past every carved copy below
// it, those copies counted as absent from the tree, and the whole tree was
// distrusted: over a thousand revisions reported for two lost.
func TestSalvageGarbageOverLastKey(t *testing.T) {
	truth, cases, garble := lastPageCases(t)
	rnd := rand.New(rand.NewSource(6))
	tried := 0
	for _, c := range cases {
		if c.keyAt < c.lastPageAt {
			continue // the last key is not on the last page
		}
		tried++
		dmg := garble(c, rnd)
		t.Run(fmt.Sprintf("page-%d", c.page), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "new.db")
			rep, err := Run(dmg, out, Options{})
			if err != nil {
				t.Fatal(err)
			}
			judgeWith(t, truth, rep, readSalvaged(t, out), false, false, true)
			if rep.TreeDistrusted != "" {
				t.Errorf("the tree was distrusted: %s", rep.TreeDistrusted)
			}
		})
		if tried >= 3 {
			break
		}
	}
	if tried == 0 {
		t.Fatal("no leaf of the fixture has its last key on a continuation page")
	}
}

// lastPageCase is a reached leaf of the Kubernetes fixture that runs over
// several pages, with where its last element's key and value lie in it.
type lastPageCase struct {
	page               int // the leaf's last page
	key                []byte
	keyAt, valueEnd    int // offsets in the node
	lastPageAt, pageSz int // the last page's offset in the node; page size
}

// lastPageCases lists the fixture's multi-page leaves (their last
// element's place), and garble writes a copy of the db with random bytes
// over one's last page.
func lastPageCases(t *testing.T) (truth *fixtures.Truth, cases []lastPageCase, garble func(c lastPageCase, rnd *rand.Rand) string) {
	t.Helper()
	db, truth, l, kt := kubeKeyTree(t, 1)
	orig, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	ps := l.PageSize
	for _, id := range kt.Levels[len(kt.Levels)-1] {
		n := kt.Nodes[id]
		if n.Overflow < 1 || n.Count < 1 {
			continue
		}
		node := orig[int(id)*ps : (int(id)+n.Overflow+1)*ps]
		_, key, valueAt, valueLen := rawLeafElement(node, n.Count-1)
		if key == nil {
			continue
		}
		cases = append(cases, lastPageCase{page: int(id) + n.Overflow, key: key, keyAt: valueAt - len(key),
			valueEnd: valueAt + valueLen, lastPageAt: n.Overflow * ps, pageSz: ps})
	}
	garble = func(c lastPageCase, rnd *rand.Rand) string {
		b := append([]byte(nil), orig...)
		rnd.Read(b[c.page*ps : (c.page+1)*ps])
		dmg := filepath.Join(t.TempDir(), "db")
		if err := os.WriteFile(dmg, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return dmg
	}
	return truth, cases, garble
}
