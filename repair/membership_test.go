package repair

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/membership"
)

// treeHash hashes every file's path and bytes under dir.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h.Write([]byte(p))
		h.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkMembership holds the membership repair read against the one the
// cluster itself reported.
func checkMembership(t *testing.T, m *membership.Membership, ct *fixtures.ClusterTruth, self int) {
	t.Helper()
	if !m.Known || m.Voters != len(ct.Members) || len(m.Members) != len(ct.Members) || m.ClusterID != membership.HexID(ct.ClusterID) {
		t.Fatalf("membership %+v, want the %d members of cluster %x: %+v", m, len(ct.Members), ct.ClusterID, ct.Members)
	}
	for i, want := range ct.Members {
		got := m.Members[i]
		if got.ID != membership.HexID(want.ID) || got.Name != want.Name || !slices.Equal(got.PeerURLs, want.PeerURLs) || got.Self != (i == self) || got.IsLearner {
			t.Errorf("member %d: got %+v, want %+v (self %v)", i, got, want, i == self)
		}
	}
}

// One damaged member of a healthy 3-member cluster: repair refuses before
// any work, with etcd's replace-a-member procedure filled in with the real
// member's id, name and peer URLs, and writes nothing; with
// --force-new-cluster it writes a one-member cluster from that member's
// data, as before, with the warning.
func TestRepairRefusesOneMemberOfCluster(t *testing.T) {
	ct := fixtures.CachedCluster(t, "three", 3, fixtures.ClusterWorkload())
	m2 := ct.Members[1]
	if _, err := fixtures.HalfZeroBranch(fixtures.DBPath(m2.Dir), "key", 0); err != nil {
		t.Fatal(err)
	}
	before := treeHash(t, m2.Dir)
	out := filepath.Join(t.TempDir(), "parent", "repaired")
	rep, err := Run(m2.Dir, Options{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Refused == nil || rep.Complete {
		t.Fatalf("not refused: complete %v, membership %+v", rep.Complete, rep.Membership)
	}
	if rep.DB != nil || rep.Replay != nil {
		t.Errorf("refused after heavy work: db %+v", rep.DB)
	}
	if _, err := os.Stat(filepath.Dir(out)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("output parent: %v, want nothing written", err)
	}
	if after := treeHash(t, m2.Dir); after != before {
		t.Error("the input changed")
	}
	checkMembership(t, rep.Membership, ct, 1)
	f := rep.Refused
	id := membership.HexID(m2.ID)
	if f.Member == nil || f.Member.ID != id || f.Member.Name != m2.Name || !slices.Equal(f.Member.PeerURLs, m2.PeerURLs) {
		t.Fatalf("refusal names member %+v, want %s %s %v", f.Member, id, m2.Name, m2.PeerURLs)
	}
	if f.Voters != 3 || f.Quorum != 2 || f.QuorumLost {
		t.Errorf("voters %d quorum %d lost %v", f.Voters, f.Quorum, f.QuorumLost)
	}
	proc := strings.Join(f.Procedure, "\n")
	for _, want := range []string{
		"etcdctl --endpoints=",
		"member remove " + id,
		"member add " + m2.Name + " --peer-urls=" + strings.Join(m2.PeerURLs, ","),
		"--initial-cluster-state=existing",
		ct.Members[0].Name + "=" + ct.Members[0].PeerURLs[0],
		"mv " + m2.Dir + " " + m2.Dir + ".damaged",
	} {
		if !strings.Contains(proc, want) {
			t.Errorf("procedure lacks %q:\n%s", want, proc)
		}
	}
	if len(f.IfQuorumLost) == 0 || !strings.Contains(strings.Join(f.IfQuorumLost, "\n"), "--force-new-cluster") {
		t.Errorf("no word on lost quorum: %v", f.IfQuorumLost)
	}
	if !slices.Equal(rep.Next, f.Procedure) {
		t.Errorf("next steps %v are not the procedure", rep.Next)
	}

	// --force-new-cluster: today's behaviour, loudly.
	out = filepath.Join(t.TempDir(), "forced")
	rep, err = Run(m2.Dir, Options{Out: out, ForceNewCluster: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Refused != nil || !rep.ForceNewCluster || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "split brain") {
		t.Fatalf("forced: refused %v, force %v, warnings %v", rep.Refused, rep.ForceNewCluster, rep.Warnings)
	}
	if rep.Member.Name != m2.Name || !slices.Equal(rep.Member.PeerURLs, m2.PeerURLs) {
		t.Errorf("forced member %s %v, want %s %v", rep.Member.Name, rep.Member.PeerURLs, m2.Name, m2.PeerURLs)
	}
	judge(t, &ct.Truth, rep, false)
	if after := treeHash(t, m2.Dir); after != before {
		t.Error("the input changed")
	}
}

// When the WAL and the .snap files are gone, the db's members bucket still
// shows the cluster: refused after the scan, before the salvage.
func TestRepairRefusesFromMembersBucket(t *testing.T) {
	ct := fixtures.CachedCluster(t, "three", 3, fixtures.ClusterWorkload())
	m3 := ct.Members[2]
	snaps, _ := filepath.Glob(filepath.Join(m3.Dir, "member", "snap", "*.snap"))
	segs, _ := filepath.Glob(filepath.Join(m3.Dir, "member", "wal", "*.wal"))
	for _, p := range append(snaps, segs...) {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "repaired")
	rep, err := Run(m3.Dir, Options{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Refused == nil || rep.DB == nil || rep.DB.Salvage != nil {
		t.Fatalf("refused %+v, db %+v: want a refusal after the scan, before the salvage", rep.Refused, rep.DB)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("output: %v, want nothing written", err)
	}
	// Without the WAL metadata nothing says which member this is.
	if rep.Refused.Member != nil || rep.Membership.Voters != 3 || !strings.Contains(strings.Join(rep.Refused.Procedure, "\n"), "member remove <member id") {
		t.Errorf("member %+v, voters %d, procedure %v", rep.Refused.Member, rep.Membership.Voters, rep.Refused.Procedure)
	}
}
