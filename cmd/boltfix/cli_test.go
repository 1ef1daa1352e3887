package main

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/repair"
	"github.com/boltfix/boltfix/salvage"
	bolt "go.etcd.io/bbolt"
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
	if hashTree(t, dir) != before {
		t.Fatal("healthy scan changed its input")
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
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.Records.Written == 0 {
		t.Fatalf("report: %v %+v", err, rep.Records)
	}
	// The output itself, not rep.Verified (true in every report): it
	// passes bbolt's check and holds the key records the report counts.
	if n := checkedKeyRecords(t, out); n != rep.Records.Written {
		t.Fatalf("new db holds %d key records, the report says %d written", n, rep.Records.Written)
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
	if code, _, errOut := runCLI("salvage", db, "--out", filepath.Join(t.TempDir(), "no", "such", "dir", "new.db")); code != ExitCantRun || !strings.Contains(errOut, "output dir") {
		t.Fatalf("output in a missing dir: exit %d %s", code, errOut)
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
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || !rep.Complete {
		t.Fatalf("report: %v complete=%v checks=%+v", err, rep.Complete, rep.Checks)
	}
	// The published db itself, not rep.Checks.BboltCheck (true in every
	// report): it passes bbolt's check and holds what the report counts.
	if n := checkedKeyRecords(t, filepath.Join(out, "member", "snap", "db")); n != rep.Counts.Final || n == 0 {
		t.Fatalf("new db holds %d key records, the report says %d", n, rep.Counts.Final)
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

// checkedKeyRecords opens the db at path with bbolt, fails the test unless
// it passes bbolt's check, and counts the records of its key bucket.
func checkedKeyRecords(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("%s does not open in bbolt: %v", path, err)
	}
	defer db.Close()
	n := 0
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("bbolt check: %w", err)
		}
		b := tx.Bucket([]byte("key"))
		if b == nil {
			return errors.New("no key bucket")
		}
		n = b.Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}
