package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/boltfix/boltfix/memberdir"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/repair"
	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"
)

// runWithin runs the CLI and fails the test if it has not returned after
// d: a FIFO input must be refused, not opened.
func runWithin(t *testing.T, d time.Duration, args ...string) (int, string) {
	t.Helper()
	type result struct {
		code   int
		stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, _, errOut := runCLI(args...)
		done <- result{code, errOut}
	}()
	select {
	case r := <-done:
		return r.code, r.stderr
	case <-time.After(d):
		t.Fatalf("%v: still running after %v (blocked opening a FIFO?)", args, d)
		return 0, ""
	}
}

// unblockFIFO opens p for writing, which releases a reader blocked in
// open(2), so a failed test does not leave a goroutine stuck.
func unblockFIFO(p string) {
	if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		f.Close()
	}
}

func TestFIFOInputRefused(t *testing.T) {
	tmp := t.TempDir()
	fifo := filepath.Join(tmp, "db")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	t.Cleanup(func() { unblockFIFO(fifo) })
	// A data dir whose db is a FIFO, and one whose WAL segment is.
	dataDir := filepath.Join(tmp, "etcd")
	dbFIFO := filepath.Join(dataDir, "member", "snap", "db")
	segFIFO := filepath.Join(tmp, "waldir", "member", "wal", "0000000000000000-0000000000000000.wal")
	for _, p := range []string{dbFIFO, segFIFO} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unblockFIFO(p) })
	}
	out := filepath.Join(tmp, "out")
	for _, args := range [][]string{
		{"scan", fifo},
		{"scan", dataDir},
		{"salvage", fifo, "--out", out + ".db"},
		{"repair", dataDir, "--out", out},
		{"wal", "verify", filepath.Join(tmp, "waldir")},
		{"wal", "dump", filepath.Join(tmp, "waldir")},
	} {
		code, errOut := runWithin(t, 10*time.Second, args...)
		if code != ExitCantRun || !strings.Contains(errOut, "not a regular file") {
			t.Errorf("%v: exit %d, want 2 naming the FIFO: %s", args, code, errOut)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output written for a FIFO input: %v", err)
	}
}

// Every line of a human report fits a 100-column terminal; a long
// explanation wraps inside its cell, whole.
func TestReportsFitWidth(t *testing.T) {
	long := "the walked tree's key bucket is intact at the top: start from its newest revision 4321 at consistent_index 8765; " +
		"anchored at WAL index 5000, which produced revision 4000 below the damage: replayed from there and reproduced all " +
		"321 salvaged records above it byte for byte (averyveryveryveryveryveryveryveryveryveryverylongunbreakablewordthatmustbecut)"
	rep := &repair.Report{Input: "/var/lib/etcd", Output: "/var/lib/etcd.repaired", Version: "3.6 or newer",
		DB:            &repair.DBPart{Present: true, Strategy: long},
		WAL:           &repair.WALPart{Present: true, Clean: true, FirstIndex: 1, LastIndex: 9000, Commit: 9000},
		LostRevisions: [][2]int64{{100, 0}}, LostReasons: []string{long},
		Member: &memberdir.Result{Name: "default", PeerURLs: []string{"http://localhost:2380"}, From: "members-bucket"}, Notes: []string{long}, Next: []string{long}, BumpReason: long,
		Audit: &repair.Audit{Verdict: long, Failures: []string{long}, Unvouched: long}, Unproven: []string{long}}
	var b bytes.Buffer
	printRepair(&b, rep)
	checkWidth(t, "synthetic repair report", b.String())
	flat := strings.Join(strings.Fields(b.String()), " ")
	for _, word := range strings.Fields(long) {
		if len(word) < 40 && !strings.Contains(flat, word) {
			t.Errorf("word %q of the explanation lost in the report", word)
		}
	}

	// Real reports of a damaged dir.
	dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	db := fixtures.DBPath(dir)
	if _, err := fixtures.HalfZeroBranch(db, "key", 0); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	for _, args := range [][]string{
		{"scan", db, "--deep"},
		{"salvage", db, "--out", filepath.Join(tmp, "new.db")},
		{"repair", dir, "--out", filepath.Join(tmp, "repaired"), "--skip-start-check"},
		{"wal", "verify", dir},
		{"version"},
	} {
		code, out, errOut := runCLI(args...)
		if code == ExitCantRun {
			t.Fatalf("%v: exit 2: %s", args, errOut)
		}
		checkWidth(t, strings.Join(args[:1], " "), out)
	}
}

// checkWidth fails for a line wider than reportWidth, except a line that
// names a path of the test's temp dirs: paths and the commands holding
// them are never broken, so they paste whole.
func checkWidth(t *testing.T, what, out string) {
	t.Helper()
	for i, line := range strings.Split(out, "\n") {
		if strings.Contains(line, os.TempDir()) {
			continue
		}
		if n := utf8.RuneCountInString(line); n > 100 {
			t.Errorf("%s: line %d is %d columns wide:\n%s", what, i+1, n, line)
		}
	}
}

// A repair whose data dir lost its WAL dir repairs from the db alone:
// exit 1 with the warning, and etcd serves every key of the (healthy) db.
func TestRepairWithoutWAL(t *testing.T) {
	dir, truth := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	if err := os.RemoveAll(filepath.Join(dir, "member", "wal")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "repaired")
	start := time.Now()
	code, stdout, errOut := runCLI("repair", dir, "--out", out, "--json")
	if code != ExitDamage {
		t.Fatalf("exit %d, want 1: %s", code, errOut)
	}
	var rep repair.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Complete || rep.WAL.Present || len(rep.LostRevisions) == 0 || rep.LostRevisions[len(rep.LostRevisions)-1][1] != 0 {
		t.Errorf("want partial with an open top: complete %v, wal %+v, lost %v", rep.Complete, rep.WAL, rep.LostRevisions)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "no WAL") || !strings.Contains(strings.Join(rep.Notes, "\n"), "consistent_index") {
		t.Errorf("no warning about the missing WAL: %q", rep.Notes)
	}
	if !rep.Checks.EtcdStarted {
		t.Errorf("start check: %+v", rep.Checks)
	}
	got, _, err := fixtures.ReadAll(out)
	if err != nil {
		t.Fatalf("etcd on the repaired dir: %v", err)
	}
	if d := fixtures.Compare(truth, got); !d.OK() {
		t.Errorf("the healthy db's keys did not all come back: %s", d)
	}
	t.Logf("repair without a WAL: %v, %d keys, lost %v", time.Since(start).Round(time.Millisecond), len(got), rep.LostRevisions)
	if _, _, errOut := runCLI("repair", dir, "--out", filepath.Join(t.TempDir(), "x"), "--wal-dir", filepath.Join(dir, "nowhere")); !strings.Contains(errOut, "WAL dir") {
		t.Errorf("a --wal-dir that does not exist must be refused: %s", errOut)
	}
}

// leftovers lists what is in dir: after an interrupted or failed run the
// parent of the output must be as it was (empty).
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// SIGINT to a running `boltfix repair` (the test binary run as boltfix):
// exit 2 with "interrupted", no output, no temp dir.
func TestRepairSIGINT(t *testing.T) {
	dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	if _, err := fixtures.HalfZeroBranch(fixtures.DBPath(dir), "key", 0); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	out := filepath.Join(parent, "repaired")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The start check (a grandchild starting etcd) keeps the repair busy
	// for seconds after its temp dir appears: the signal lands mid-run.
	cmd := exec.Command(exe, "repair", dir, "--out", out)
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for len(leftovers(t, parent)) == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no temp dir appeared")
		}
		time.Sleep(5 * time.Millisecond)
	}
	sent := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	var werr error
	select {
	case werr = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("repair did not stop within 60 s of SIGINT")
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.ExitCode() != ExitCantRun || !strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("after SIGINT: %v, stderr:\n%s", werr, stderr.String())
	}
	if left := leftovers(t, parent); len(left) > 0 {
		t.Errorf("left behind after SIGINT: %v", left)
	}
	t.Logf("stopped %v after SIGINT: %s", time.Since(sent).Round(time.Millisecond), strings.TrimSpace(stderr.String()))
}

// A panic inside the work (a boltfix bug) exits 2 with a request to report
// it, and the temp dir is gone: the test-only command panics from inside
// repair's start check, after the member dir was written to the temp dir.
func TestPanicExits2Clean(t *testing.T) {
	dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	parent := t.TempDir()
	code, _, errOut := runCLI("internal-test-panic", dir, filepath.Join(parent, "repaired"))
	if code != ExitCantRun || !strings.Contains(errOut, "bug in boltfix") || !strings.Contains(errOut, "boom") {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	if left := leftovers(t, parent); len(left) > 0 {
		t.Errorf("left behind after a panic: %v", left)
	}
}

func init() {
	register(func() *cobra.Command {
		return &cobra.Command{
			Use: "internal-test-panic DATA_DIR OUT", Hidden: true, Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				_, err := repair.Run(args[0], repair.Options{Out: args[1], StartCheck: func(string) (int, int64, error) {
					panic("boom")
				}})
				return err
			},
		}
	})
}

// TestPageSizeRefused: a --page-size bbolt cannot or salvage will not
// write is refused with exit 2 before any work, and nothing is written; a
// valid one is used.
func TestPageSizeRefused(t *testing.T) {
	dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	tmp := t.TempDir()
	for _, args := range [][]string{
		{"salvage", fixtures.DBPath(dir), "--out", filepath.Join(tmp, "a.db"), "--page-size", "1000"},
		{"salvage", fixtures.DBPath(dir), "--out", filepath.Join(tmp, "a.db"), "--page-size", "131072"},
		{"repair", dir, "--out", filepath.Join(tmp, "a.dir"), "--page-size", "2048", "--skip-start-check"},
	} {
		code, _, errOut := runCLI(args...)
		if code != 2 || !strings.Contains(errOut, "--page-size") {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming --page-size", args, code, errOut)
		}
		if _, err := os.Stat(args[3]); err == nil {
			t.Errorf("%v: wrote %s", args, args[3])
		}
	}
	out := filepath.Join(tmp, "b.db")
	if code, _, errOut := runCLI("salvage", fixtures.DBPath(dir), "--out", out, "--page-size", "4096", "--json"); code != 0 {
		t.Fatalf("--page-size 4096: exit %d: %s", code, errOut)
	}
	if ps := dbPageSize(t, out); ps != 4096 {
		t.Errorf("--page-size 4096 wrote %d-byte pages", ps)
	}
}

func dbPageSize(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return db.Info().PageSize
}
