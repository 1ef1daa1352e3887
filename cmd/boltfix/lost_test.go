package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/repair"
)

func TestLostTableSummarises(t *testing.T) {
	var ranges [][2]int64
	var reasons []string
	for i := int64(0); i < 300; i++ {
		ranges = append(ranges, [2]int64{10 + 3*i, 10 + 3*i}) // single revisions
		reasons = append(reasons, "single")
	}
	ranges = append(ranges, [2]int64{1000, 1049}, [2]int64{2000, 2004}, [2]int64{5000, 0})
	reasons = append(reasons, "fifty", "five", "open")
	var b bytes.Buffer
	lostTable(&b, ranges, reasons, "end")
	out := b.String()
	if n := strings.Count(out, "\n"); n > 25 {
		t.Errorf("%d lines for %d ranges:\n%s", n, len(ranges), out)
	}
	for _, want := range []string{"(303 RANGES)", "355 revisions in 302 closed ranges", "300 of them single", "from 5000 on", "--json lost_revisions"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	// Largest first: the open range, then 50, then 5, then singles.
	iOpen, i50, i5 := strings.Index(out, "open"), strings.Index(out, "fifty"), strings.Index(out, "five")
	if !(iOpen < i50 && i50 < i5) || iOpen < 0 {
		t.Errorf("not largest first:\n%s", out)
	}
}

// A db that lost many leaves, with a purged WAL, loses many ranges, most
// one revision wide: the human report stays a screen long, --json keeps
// every range. (A cut file served here until a cut that takes every copy
// of the root, and with it the compaction revision, came to report one
// range from revision 1 on: salvage holds every carved record then.)
func TestRepairCLIManyRangesShortReport(t *testing.T) {
	dir, _ := fixtures.Cached(t, "purged", fixtures.PurgedWALWorkload())
	db := fixtures.DBPath(dir)
	l, err := fixtures.Inspect(db)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(db, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, l.PageSize)
	for i, leaf := range l.Buckets["key"].Leaves() {
		if i%4 == 1 {
			if _, err := f.WriteAt(zero, int64(leaf)*int64(l.PageSize)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "json")
	code, stdout, errOut := runCLI("repair", dir, "--out", out, "--json", "--skip-start-check")
	if code != ExitDamage {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep repair.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	code, human, _ := runCLI("repair", dir, "--out", filepath.Join(t.TempDir(), "human"), "--skip-start-check")
	if code != ExitDamage {
		t.Fatalf("human: exit %d", code)
	}
	lost := human[strings.Index(human, "LOST REVISIONS"):]
	lost = lost[:strings.Index(lost, "\n\n")+1]
	t.Logf("%d ranges in --json; human:\n%s", len(rep.LostRevisions), lost)
	if len(rep.LostRevisions) <= maxLostRows {
		t.Fatalf("only %d lost ranges: the test needs more than %d", len(rep.LostRevisions), maxLostRows)
	}
	// Rows start with a revision; a long reason wraps onto a second line.
	if n := len(regexp.MustCompile(`(?m)^│ +\d+ +│`).FindAllString(lost, -1)); n != maxLostRows {
		t.Errorf("%d ranges listed, want the %d largest", n, maxLostRows)
	}
	// A reason wraps over a few lines (the replay's stop, when the layout
	// makes it stop, takes five): the bound is rows, not every range.
	if n := strings.Count(lost, "\n"); n > 3*maxLostRows+10 {
		t.Errorf("lost section is %d lines for %d ranges", n, len(rep.LostRevisions))
	}

	// salvage prints the same summary.
	code, human, _ = runCLI("salvage", fixtures.DBPath(dir), "--out", filepath.Join(t.TempDir(), "new.db"))
	if code != ExitDamage || !strings.Contains(human, "--json lost_revisions") {
		t.Errorf("salvage: exit %d, no summary:\n%s", code, human)
	}
}
