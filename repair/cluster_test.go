package repair

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/membership"
)

// judgeCluster starts the output members as one cluster on their original
// (loopback) peer URLs and compares every key on every member with the
// truth; it also checks the output membership against the original.
func judgeCluster(t *testing.T, ct *fixtures.ClusterTruth, rep *ClusterReport, wantExact bool) {
	t.Helper()
	if len(rep.Members) != len(ct.Members) {
		t.Fatalf("output members %+v, want %d", rep.Members, len(ct.Members))
	}
	var dirs, peers []string
	for i, want := range ct.Members {
		got := rep.Members[i]
		if got.Name != want.Name || !slices.Equal(got.PeerURLs, want.PeerURLs) || got.MemberID != membership.HexID(want.ID) || got.OriginalID != got.MemberID {
			t.Errorf("output member %d: %+v, want %+v", i, got, want)
		}
		dirs, peers = append(dirs, got.DataDir), append(peers, want.PeerURLs[0])
	}
	if !rep.Check.Skipped && (!rep.Check.Started || len(rep.Check.Keys) != len(ct.Members)) {
		t.Errorf("self-check: %+v", rep.Check)
	}
	views, _, err := fixtures.ReadAllCluster(dirs, peers)
	if err != nil {
		t.Fatalf("the output members as one cluster: %v", err)
	}
	for i, got := range views {
		d := fixtures.Compare(&ct.Truth, got)
		if wantExact && (!d.OK() || !rep.Complete) {
			t.Errorf("%s: %s; complete %v lost %v disagreements %v", ct.Members[i].Name, d, rep.Complete, rep.LostRevisions, rep.Disagreements)
		}
		if n := rep.Check.Keys[ct.Members[i].Name]; !rep.Check.Skipped && n != len(got) {
			t.Errorf("%s: the self-check counted %d keys, the member serves %d", ct.Members[i].Name, n, len(got))
		}
		t.Logf("%s: %s", ct.Members[i].Name, d)
	}
	for _, s := range rep.Sources {
		t.Logf("source %s (%s): chosen %v, contributed %s; lacked %s", s.Input, s.Name, s.Chosen, s.Contributed, s.Lacked)
	}
}

func clusterDirs(ct *fixtures.ClusterTruth) []string {
	var dirs []string
	for _, m := range ct.Members {
		dirs = append(dirs, m.Dir)
	}
	return dirs
}

// Every member damaged, each in a different place: together they hold
// everything.
func TestRepairClusterAllDamaged(t *testing.T) {
	ct := fixtures.CachedCluster(t, "three", 3, fixtures.ClusterWorkload())
	dirs := clusterDirs(ct)
	for i, f := range []func(string) (fixtures.Damage, error){
		func(db string) (fixtures.Damage, error) { return fixtures.HalfZeroBranch(db, "key", 0) },
		func(db string) (fixtures.Damage, error) { return fixtures.GarbageLeaves(db, 3, 4) },
		fixtures.BothMetasBad,
	} {
		if _, err := f(fixtures.DBPath(dirs[i])); err != nil {
			t.Fatal(err)
		}
	}
	var before []string
	for _, d := range dirs {
		before = append(before, treeHash(t, d))
	}
	out := filepath.Join(t.TempDir(), "out")
	rep, err := RunCluster(dirs, Options{Out: out, InitialClusterToken: fixtures.ClusterToken})
	if err != nil {
		t.Fatal(err)
	}
	judgeCluster(t, ct, rep, true)
	for i, d := range dirs {
		if treeHash(t, d) != before[i] {
			t.Errorf("%s changed", d)
		}
	}
}

// One member's WAL torn, another's db missing, the third intact.
func TestRepairClusterTornWALMissingDB(t *testing.T) {
	ct := fixtures.CachedCluster(t, "three", 3, fixtures.ClusterWorkload())
	dirs := clusterDirs(ct)
	if _, err := fixtures.TornWALTail(dirs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := fixtures.RemoveDB(dirs[1]); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	// The self-check runs in TestRepairClusterAllDamaged; here the output
	// members themselves are started.
	rep, err := RunCluster(dirs, Options{Out: out, InitialClusterToken: fixtures.ClusterToken, SkipStartCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	judgeCluster(t, ct, rep, true)
}

// Dirs of different clusters, or one member twice, are refused before any
// work, and nothing is written.
func TestRepairClusterRefusesMixedDirs(t *testing.T) {
	ct := fixtures.CachedCluster(t, "three", 3, fixtures.ClusterWorkload())
	single, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	out := filepath.Join(t.TempDir(), "out")
	for _, dirs := range [][]string{
		{ct.Members[0].Dir, single},
		{ct.Members[0].Dir, ct.Members[1].Dir, ct.Members[0].Dir},
	} {
		if _, err := RunCluster(dirs, Options{Out: out}); !errors.Is(err, ErrDifferentClusters) {
			t.Errorf("%v: %v, want ErrDifferentClusters", dirs, err)
		}
		if _, err := os.Stat(filepath.Dir(out)); err != nil {
			t.Fatal(err)
		}
		if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
			t.Errorf("written: %v", ents)
		}
	}
}

// No member's db alone, even with every member's WAL, holds everything (the
// WAL is purged): two lost different leaves, the third its whole db. The
// records one lost survive on another: together exact.
func TestRepairClusterUnionOfDBs(t *testing.T) {
	ct := fixtures.CachedCluster(t, "three", 3, fixtures.ClusterWorkload())
	dirs := clusterDirs(ct)
	if _, err := fixtures.GarbageLeaves(fixtures.DBPath(dirs[0]), 3, 9); err != nil {
		t.Fatal(err)
	}
	if _, err := fixtures.GarbageLeaves(fixtures.DBPath(dirs[1]), 3, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := fixtures.RemoveDB(dirs[2]); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	rep, err := RunCluster(dirs, Options{Out: out, InitialClusterToken: fixtures.ClusterToken, SkipStartCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	var vouched int64
	alone, gave := 0, 0
	for _, s := range rep.Sources {
		vouched, gave = vouched+s.Vouched, gave+s.Gave
		if s.Complete {
			alone++
		}
	}
	if alone != 0 || vouched == 0 || gave == 0 {
		t.Errorf("%d members complete alone, %d revisions vouched for and %d records given by another: the case does not test the union", alone, vouched, gave)
	}
	// Exact, unless the two damaged members happened to lose the same
	// revisions: then exactly those stay lost.
	a, b := toSpans(rep.Sources[0].LostRevisions), toSpans(rep.Sources[1].LostRevisions)
	both := minus(a, minus(a, b))
	if got := toSpans(rep.LostRevisions); !slices.Equal(got, both) {
		t.Errorf("lost %v, want the revisions both members lost: %v", rep.LostRevisions, both)
	}
	judgeCluster(t, ct, rep, len(both) == 0)
}
