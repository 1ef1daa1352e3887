package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/membership"
	"github.com/boltfix/boltfix/repair"
)

// The CLI on one damaged member of a 3-member cluster: scan shows the
// membership, repair exits 1 with the refusal (JSON and human) and writes
// nothing.
func TestRepairCLIRefusesClusterMember(t *testing.T) {
	ct := fixtures.CachedCluster(t, "three", 3, fixtures.ClusterWorkload())
	m2 := ct.Members[1]
	if _, err := fixtures.HalfZeroBranch(fixtures.DBPath(m2.Dir), "key", 0); err != nil {
		t.Fatal(err)
	}
	before := hashTree(t, m2.Dir)
	id := membership.HexID(m2.ID)

	code, out, errOut := runCLI("scan", m2.Dir, "--json")
	var sc struct {
		Membership *membership.Membership `json:"membership"`
	}
	if code != ExitDamage || json.Unmarshal([]byte(out), &sc) != nil || sc.Membership == nil || sc.Membership.Voters != 3 || sc.Membership.SelfID != id {
		t.Fatalf("scan: exit %d, membership %+v, %s", code, sc.Membership, errOut)
	}

	out1 := filepath.Join(t.TempDir(), "repaired")
	code, out, errOut = runCLI("repair", m2.Dir, "--out", out1, "--json")
	var rep repair.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("exit %d: %v\n%s", code, err, errOut)
	}
	if code != ExitDamage || rep.Refused == nil || rep.Refused.Member == nil || rep.Refused.Member.ID != id || len(rep.Refused.Procedure) == 0 {
		t.Fatalf("repair --json: exit %d, refused %+v", code, rep.Refused)
	}
	code, out, _ = runCLI("repair", m2.Dir, "--out", out1)
	for _, want := range []string{"REFUSED, nothing written", "member remove " + id, "member add " + m2.Name + " --peer-urls=" + m2.PeerURLs[0]} {
		if !strings.Contains(out, want) {
			t.Errorf("human refusal lacks %q:\n%s", want, out)
		}
	}
	if code != ExitDamage {
		t.Errorf("exit %d", code)
	}
	checkWidth(t, "repair refusal", out)
	if _, err := os.Stat(out1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("output: %v, want nothing written", err)
	}
	if hashTree(t, m2.Dir) != before {
		t.Error("the input changed")
	}
}

// repair with several data dirs is the cluster repair: its own schema,
// exit 0 on a healthy cluster, one member dir per original member; flags
// of a one-member repair are refused.
func TestRepairCLICluster(t *testing.T) {
	ct := fixtures.CachedCluster(t, "three", 3, fixtures.ClusterWorkload())
	args := []string{"repair", ct.Members[0].Dir, ct.Members[1].Dir, ct.Members[2].Dir}
	out := filepath.Join(t.TempDir(), "out")
	if code, _, _ := runCLI(append(args, "--out", out, "--name", "x")...); code != ExitCantRun {
		t.Errorf("--name with several dirs: exit %d", code)
	}
	code, stdout, errOut := runCLI(append(args, "--out", out, "--json", "--skip-start-check", "--initial-cluster-token", fixtures.ClusterToken)...)
	var rep repair.ClusterReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != ExitClean || rep.Schema != repair.ClusterReportSchema || !rep.Complete {
		t.Fatalf("exit %d, %v, schema %q complete %v\n%s", code, err, rep.Schema, rep.Complete, errOut)
	}
	for _, m := range ct.Members {
		if _, err := os.Stat(filepath.Join(out, m.Name, "member", "snap", "db")); err != nil {
			t.Errorf("%s: %v", m.Name, err)
		}
	}
	code, stdout, _ = runCLI(append(args, "--out", filepath.Join(t.TempDir(), "out2"), "--skip-start-check", "--initial-cluster-token", fixtures.ClusterToken)...)
	if code != ExitClean || !strings.Contains(stdout, "COMPLETE") {
		t.Errorf("human report: exit %d\n%s", code, stdout)
	}
	checkWidth(t, "repair of a cluster", stdout)
}
