package wal

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/raft/v3/raftpb"
)

// benchWAL writes n committed puts (200-byte values, 1000 keys) with etcd's
// own WAL writer.
func benchWAL(b *testing.B, n int) (string, []*raftpb.Entry) {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "member", "wal")
	md, _ := proto.Marshal(&pb.Metadata{NodeID: new(uint64(1)), ClusterID: new(uint64(2))})
	w, err := etcdwal.Create(zap.NewNop(), dir, md)
	if err != nil {
		b.Fatal(err)
	}
	val := make([]byte, 200)
	ents := make([]*raftpb.Entry, 0, n)
	for i := 1; i <= n; i++ {
		key := []byte("/registry/pods/default/pod-" + string(rune('a'+i%26)) + string(rune('a'+(i/26)%26)) + string(rune('a'+(i/676)%2)))
		data, _ := proto.Marshal(&pb.InternalRaftRequest{ID: uint64(i), Put: &pb.PutRequest{Key: key, Value: val}})
		ents = append(ents, &raftpb.Entry{Index: new(uint64(i)), Term: new(uint64(1)), Type: raftpb.EntryNormal.Enum(), Data: data})
	}
	for i := 0; i < n; i += 1000 {
		j := min(i+1000, n)
		if err := w.Save(&raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(j))}, ents[i:j]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return dir, ents
}

func BenchmarkRead(b *testing.B) {
	const n = 50000
	dir, _ := benchWAL(b, n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, err := Read(dir)
		if err != nil || len(l.Entries) != n {
			b.Fatal(err, len(l.Entries))
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
}

func BenchmarkReplay(b *testing.B) {
	const n = 20000
	_, ents := benchWAL(b, n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := filepath.Join(b.TempDir(), "db")
		b.StartTimer()
		res, err := Replay(db, ents, ReplayOptions{CommitIndex: n})
		if err != nil || res.Applied[KindPut] != n {
			b.Fatal(err, res.Applied)
		}
		b.StopTimer()
		os.Remove(db)
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
}
