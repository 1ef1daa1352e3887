package membership

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/wal"
)

func scanDB(t *testing.T, dir string) *pagewalk.EtcdSummary {
	t.Helper()
	f, err := pagewalk.Open(fixtures.DBPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := f.Scan(pagewalk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Report.Etcd
}

func readWAL(t *testing.T, dir string) *wal.Log {
	t.Helper()
	l, err := wal.Read(filepath.Join(dir, "member", "wal"))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Each source alone (the db, the WAL, the .snap files), and all together,
// give the membership the cluster itself reported: ids, names, peer URLs,
// three voters; the WAL also says which member the dir is.
func TestBuildEachSourceAlone(t *testing.T) {
	ct := fixtures.CachedCluster(t, "three", 3, fixtures.ClusterWorkload())
	dir := ct.Members[0].Dir
	snapDir := filepath.Join(dir, "member", "snap")
	db, log := scanDB(t, dir), readWAL(t, dir)
	for _, tc := range []struct {
		name      string
		src       Sources
		wantSelf  bool
		wantPeers bool
	}{
		{"db", Sources{DB: db}, false, true},
		// The purged WAL has no conf change left: its snapshot records
		// give the ids, the attribute updates the names, nothing the
		// peer URLs.
		{"wal", Sources{WAL: log}, true, false},
		{"snap", Sources{SnapDir: snapDir}, false, true},
		{"all", Sources{DB: db, WAL: log, SnapDir: snapDir}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := Build(tc.src)
			if !m.Known || m.Voters != 3 || len(m.Members) != 3 || len(m.Notes) != 0 {
				t.Fatalf("%+v", m)
			}
			for i, want := range ct.Members {
				got := m.Members[i]
				if got.ID != HexID(want.ID) || got.Name != want.Name || (tc.wantPeers && !slices.Equal(got.PeerURLs, want.PeerURLs)) || got.IsLearner {
					t.Errorf("member %d: %+v, want %+v", i, got, want)
				}
				if got.Self != (tc.wantSelf && i == 0) {
					t.Errorf("member %d self %v", i, got.Self)
				}
			}
			if tc.wantSelf {
				if m.SelfID != HexID(ct.Members[0].ID) || m.ClusterID != HexID(ct.ClusterID) || !m.MultiMember() || len(m.Others()) != 2 {
					t.Errorf("self %s cluster %s others %v", m.SelfID, m.ClusterID, m.Others())
				}
			} else if m.SelfID != "" || !m.MultiMember() {
				// Without the WAL metadata, any other voter is a reason to refuse.
				t.Errorf("self %q, multi %v", m.SelfID, m.MultiMember())
			}
			t.Log(m.Summary(), "| conf from", m.ConfFrom)
		})
	}
}

// A single member's dir is a one-member cluster of itself: nothing to
// refuse. Its WAL still reaches back to index 1, so the conf changes alone
// give the set.
func TestBuildSingleMember(t *testing.T) {
	dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	log := readWAL(t, dir)
	for _, src := range []Sources{{WAL: log}, {DB: scanDB(t, dir), WAL: log, SnapDir: filepath.Join(dir, "member", "snap")}} {
		m := Build(src)
		if !m.Known || m.Voters != 1 || m.MultiMember() || m.Self() == nil || m.Self().Name != "default" || len(m.Notes) != 0 {
			t.Errorf("%s: %+v", m.Summary(), m)
		}
	}
	if m := Build(Sources{}); m.Known || m.MultiMember() {
		t.Errorf("no sources: %+v", m)
	}
}

// Without the WAL metadata a one-voter membership is this member's own:
// nothing to refuse; a second voter is.
func TestMultiMemberWithoutSelf(t *testing.T) {
	one := &Membership{Known: true, Voters: 1, Members: []Member{{ID: "1", Name: "default"}}}
	two := &Membership{Known: true, Voters: 2, Members: []Member{{ID: "1"}, {ID: "2"}}}
	removed := &Membership{Known: true, SelfID: "3", Voters: 1, Members: []Member{{ID: "1"}}}
	if one.MultiMember() || !two.MultiMember() || !removed.MultiMember() {
		t.Errorf("one %v two %v removed self %v", one.MultiMember(), two.MultiMember(), removed.MultiMember())
	}
}
