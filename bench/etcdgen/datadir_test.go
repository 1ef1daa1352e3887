package etcdgen_test

import (
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/bench/etcdgen"
	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/outfile"
	"github.com/boltfix/boltfix/repair"
)

// DataDir's WAL is one etcd itself starts on and applies, and boltfix's
// repair replays to the same state: the small version of bench/run.sh's
// WAL=1 (a 1 GiB db and five 64 MB segments there, 2 MB of WAL here).
func TestDataDirWAL(t *testing.T) {
	work := t.TempDir()
	db := filepath.Join(work, "gen.db")
	if _, err := etcdgen.Generate(db, etcdgen.Config{Records: 3000, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(work, "data")
	st, err := etcdgen.DataDir(db, dir, etcdgen.DataDirConfig{WALBytes: 2e6, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", st)
	e := st.Expect
	if st.Entries < 500 || st.Deletes == 0 || st.Overwrites == 0 || st.NewKeys == 0 || e.LastIndex != st.ConsistentIndex+uint64(st.Entries) || len(e.Keys) < 8 {
		t.Fatalf("WAL: %+v, expect %d keys", st, len(e.Keys))
	}

	// etcd's own start: it replays the WAL from the snapshot record.
	cp := filepath.Join(work, "etcd")
	if err := outfile.CopyDir(dir, cp); err != nil {
		t.Fatal(err)
	}
	p, err := fixtures.StartEtcdProcess(cp, fixtures.WithName("master-0"))
	if err != nil {
		t.Fatal(err)
	}
	err = e.CheckEtcd(p.Endpoint())
	p.Close()
	if err != nil {
		t.Fatal(err)
	}

	// boltfix's replay of the same dir.
	out := filepath.Join(work, "out")
	rep, err := repair.Run(dir, repair.Options{Out: out, SkipStartCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replay == nil || rep.Replay.LastApplied != e.LastIndex || rep.Counts.Replayed != st.Puts+st.Deletes {
		t.Errorf("replay %+v, %d records; want entries up to %d, %d records", rep.Replay, rep.Counts.Replayed, e.LastIndex, st.Puts+st.Deletes)
	}
	if err := e.CheckDB(filepath.Join(out, "member", "snap", "db")); err != nil {
		t.Fatal(err)
	}
}
