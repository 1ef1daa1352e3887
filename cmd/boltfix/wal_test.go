package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/boltfix/boltfix/wal"
)

// writeWAL writes a small WAL with etcd's own writer: n puts, committed.
func writeWAL(t *testing.T, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "member", "wal")
	md, _ := proto.Marshal(&pb.Metadata{NodeID: new(uint64(0x1234)), ClusterID: new(uint64(0x5678))})
	w, err := etcdwal.Create(zap.NewNop(), dir, md)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SaveSnapshot(&walpb.Snapshot{Index: new(uint64(0)), Term: new(uint64(0))}); err != nil {
		t.Fatal(err)
	}
	var ents []*raftpb.Entry
	for i := 1; i <= n; i++ {
		data, _ := proto.Marshal(&pb.InternalRaftRequest{ID: uint64(i), Put: &pb.PutRequest{Key: []byte("/k/" + string(rune('a'+i%26))), Value: []byte("v")}})
		ents = append(ents, &raftpb.Entry{Index: new(uint64(i)), Term: new(uint64(1)), Type: raftpb.EntryNormal.Enum(), Data: data})
	}
	if err := w.Save(&raftpb.HardState{Term: new(uint64(1)), Vote: new(uint64(0x1234)), Commit: new(uint64(n))}, ents); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(dir))
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Execute(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestWALVerifyClean(t *testing.T) {
	dir := writeWAL(t, 20)
	code, out, errs := runCLI("wal", "verify", dir)
	if code != ExitClean {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"commit 20", "1..20", "OK:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI("wal", "verify", "--json", dir)
	var r wal.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 {
		t.Fatalf("exit %d, json %v\n%s", code, err, out)
	}
	if r.Schema != wal.VerifySchema || !r.Clean || r.CommitIndex != 20 || r.EntryCount != 20 || r.Metadata.NodeID != 0x1234 {
		t.Fatalf("report %+v", r)
	}
}

func TestWALDumpDamaged(t *testing.T) {
	dir := writeWAL(t, 20)
	l, err := wal.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	victim := l.Entries[9]
	f, err := os.OpenFile(filepath.Join(l.Dir, victim.Segment), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{1, 2, 3}, victim.Offset+12); err != nil {
		t.Fatal(err)
	}
	f.Close()

	code, out, _ := runCLI("wal", "dump", dir)
	if code != ExitDamage {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "put \"/k/") || !strings.Contains(out, victim.Segment) || !strings.Contains(out, "after-damage") {
		t.Errorf("dump output:\n%s", out)
	}
	code, out, _ = runCLI("wal", "dump", "--json", "--from", "12", "--to", "13", dir)
	var r wal.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != ExitDamage {
		t.Fatalf("exit %d, json %v", code, err)
	}
	if r.Schema != wal.DumpSchema || len(r.Entries) != 2 || r.Entries[0].Kind != wal.KindPut || len(r.Stops) != 1 || r.Stops[0].Offset != victim.Offset {
		t.Fatalf("report entries %+v stops %+v", r.Entries, r.Stops)
	}
}

func TestWALCantRun(t *testing.T) {
	if code, _, _ := runCLI("wal", "verify", t.TempDir()); code != ExitCantRun {
		t.Fatalf("exit %d for a dir without WAL", code)
	}
	if code, _, _ := runCLI("wal", "verify"); code != ExitCantRun {
		t.Fatalf("exit %d without DIR", code)
	}
}
