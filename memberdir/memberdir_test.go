package memberdir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/wal"
)

// A member dir written around a healthy db keeps the original member's name
// and peer URLs, never changes the db it was given, and a real etcd started
// on it serves exactly what the original served.
func TestWriteServesEveryKey(t *testing.T) {
	dir, truth := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	l, err := wal.Read(filepath.Join(dir, "member", "wal"))
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "db")
	if err := fixtures.CopyFile(fixtures.DBPath(dir), db); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(db)
	out := filepath.Join(t.TempDir(), "restored")
	res, err := Write(db, out, Config{WAL: l})
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(db); string(after) != string(before) {
		t.Fatal("Write changed its input")
	}
	if res.From != "members-bucket" || res.ConsistentIndex > res.CommitIndex || res.MemberID == 0 {
		t.Fatalf("result %+v", res)
	}
	got, _, err := fixtures.ReadAll(out)
	if err != nil {
		t.Fatal(err)
	}
	if d := fixtures.Compare(truth, got); !d.OK() {
		t.Errorf("etcd on the member dir: %s", d)
	}
}
