package main

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/repair"
	"github.com/boltfix/boltfix/salvage"
)

// hashTree hashes every file under dir: read-only commands must leave it
// exactly as it was.
func hashTree(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(h.Sum(nil))
}

func TestScanCLI(t *testing.T) {
	dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	db := fixtures.DBPath(dir)
	before := hashTree(t, dir)
	code, out, errOut := runCLI("scan", db, "--json")
	if code != ExitClean {
		t.Fatalf("healthy scan: exit %d, %s", code, errOut)
	}
	var rep pagewalk.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Schema != pagewalk.ReportSchema || len(rep.Findings) != 0 {
		t.Fatalf("json: %v %q findings %d", err, rep.Schema, len(rep.Findings))
	}
	if code, out, _ := runCLI("scan", dir); code != ExitClean || !strings.Contains(out, "NEXT") {
		t.Fatalf("data dir argument: exit %d\n%s", code, out)
	}

	dmg, err := fixtures.HalfZeroBranch(db, "key", 0)
	if err != nil {
		t.Fatal(err)
	}
	before = hashTree(t, dir)
	code, out, _ = runCLI("scan", db, "--json", "--deep")
	if code != ExitDamage {
		t.Fatalf("damaged scan: exit %d", code)
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range rep.Findings {
		if f.Page != nil && *f.Page == dmg.Pages[0] && f.Kind == pagewalk.KindChildIsMeta {
			found = true
		}
	}
	if !found {
		t.Fatalf("damaged page %d not in findings", dmg.Pages[0])
	}
	code, out, _ = runCLI("scan", db)
	if code != ExitDamage || !strings.Contains(out, "boltfix salvage") {
		t.Fatalf("human report: exit %d, no next step:\n%s", code, out)
	}
	if hashTree(t, dir) != before {
		t.Fatal("scan changed its input")
	}
}

func TestCantRun(t *testing.T) {
	tmp := t.TempDir()
	junk := filepath.Join(tmp, "junk")
	os.WriteFile(junk, []byte(strings.Repeat("not a bolt file ", 1000)), 0o600)
	for _, args := range [][]string{
		{"scan"},
		{"scan", filepath.Join(tmp, "missing")},
		{"scan", junk},
		{"scan", "--bogus", junk},
		{"salvage", junk},
		{"repair", filepath.Join(tmp, "missing"), "--out", filepath.Join(tmp, "o")},
	} {
		if code, _, _ := runCLI(args...); code != ExitCantRun {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestSalvageCLI(t *testing.T) {
	dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	db := fixtures.DBPath(dir)
	if _, err := fixtures.BothMetasBad(db); err != nil {
		t.Fatal(err)
	}
	before := hashTree(t, dir)
	out := filepath.Join(t.TempDir(), "new.db")
	code, stdout, errOut := runCLI("salvage", db, "--out", out, "--json")
	if code != ExitDamage && code != ExitClean {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep salvage.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || !rep.Verified || rep.Records.Written == 0 {
		t.Fatalf("report: %v %+v", err, rep.Records)
	}
	if (code == ExitClean) != rep.Complete {
		t.Fatalf("exit %d but complete=%v", code, rep.Complete)
	}
	// An existing output is refused without --force, the input always.
	if code, _, _ := runCLI("salvage", db, "--out", out); code != ExitCantRun {
		t.Fatalf("existing output: exit %d", code)
	}
	if code, _, _ := runCLI("salvage", db, "--out", out, "--force"); code == ExitCantRun {
		t.Fatal("--force refused")
	}
	if code, _, _ := runCLI("salvage", db, "--out", db, "--force"); code != ExitCantRun {
		t.Fatal("output == input accepted")
	}
	if hashTree(t, dir) != before {
		t.Fatal("salvage changed its input")
	}
}

func TestRepairCLI(t *testing.T) {
	dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	if _, err := fixtures.HalfZeroBranch(fixtures.DBPath(dir), "key", 0); err != nil {
		t.Fatal(err)
	}
	before := hashTree(t, dir)
	out := filepath.Join(t.TempDir(), "repaired")
	// The start check re-executes boltfix; under go test the executable is
	// the test binary, so it is skipped here (repair's own tests run it).
	code, stdout, errOut := runCLI("repair", dir, "--out", out, "--json", "--skip-start-check")
	if code != ExitClean {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep repair.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || !rep.Complete || !rep.Checks.BboltCheck {
		t.Fatalf("report: %v complete=%v checks=%+v", err, rep.Complete, rep.Checks)
	}
	if _, err := os.Stat(filepath.Join(out, "member", "snap", "db")); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI("repair", dir, "--out", out, "--skip-start-check"); code != ExitCantRun {
		t.Fatalf("existing output: exit %d", code)
	}
	if code, _, _ := runCLI("repair", dir, "--out", filepath.Join(dir, "member", "x")); code != ExitCantRun {
		t.Fatalf("output inside input: exit %d", code)
	}
	if hashTree(t, dir) != before {
		t.Fatal("repair changed its input")
	}
}
