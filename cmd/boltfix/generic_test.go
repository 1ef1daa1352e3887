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
	"github.com/boltfix/boltfix/salvage"
)

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// A containerd meta.db with a torn branch page in a nested bucket: scan and
// salvage name the file, say nothing of etcd, fit on a screen or two, and
// salvage exits 0 (the freelist proves every cut-off page was put back).
func TestGenericCLIContainerd(t *testing.T) {
	db, truth := fixtures.CachedBolt(t, fixtures.WriterContainerd, 4)
	if _, err := fixtures.HalfZeroBranchPath(db, []string{"v1", "default", "images"}, 0); err != nil {
		t.Fatal(err)
	}
	before := fileHash(t, db)
	code, scanOut, errOut := runCLI("scan", db)
	if code != ExitDamage {
		t.Fatalf("scan exit %d: %s", code, errOut)
	}
	out := filepath.Join(t.TempDir(), "meta.db")
	code, human, errOut := runCLI("salvage", db, "--out", out)
	if code != ExitClean {
		t.Fatalf("salvage exit %d: %s\n%s", code, errOut, human)
	}
	for name, text := range map[string]string{"scan": scanOut, "salvage": human} {
		if !strings.Contains(text, "containerd metadata store") {
			t.Errorf("%s does not name the layout:\n%s", name, text)
		}
		for _, bad := range []string{"etcd", "WAL", "revision", "Kubernetes"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s of a containerd file mentions %q:\n%s", name, bad, text)
			}
		}
	}
	// 3,823 records in 1,523 buckets: the report stays short.
	if n := strings.Count(human, "\n"); n > 60 {
		t.Errorf("salvage report is %d lines:\n%s", n, human)
	}
	code, js, errOut := runCLI("salvage", db, "--out", out, "--force", "--json")
	if code != ExitClean {
		t.Fatalf("salvage --json exit %d: %s", code, errOut)
	}
	var rep salvage.Report
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Layout == nil || rep.Layout.Kind != pagewalk.KindBboltFile || rep.Generic == nil {
		t.Fatalf("json: layout %+v generic %v", rep.Layout, rep.Generic != nil)
	}
	if len(rep.Generic.Buckets) != len(truth.Buckets) {
		t.Errorf("json lists %d buckets, the file has %d", len(rep.Generic.Buckets), len(truth.Buckets))
	}
	if rep.Generic.Written != len(truth.Records) {
		t.Errorf("json: %d written, truth %d records", rep.Generic.Written, len(truth.Records))
	}
	if fileHash(t, db) != before {
		t.Fatal("the input changed")
	}
}
