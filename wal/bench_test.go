package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/raft/v3/raftpb"
)

// putWAL writes n committed puts of valueSize-byte values over keys keys
// with etcd's own WAL writer, 1000 entries a Save, and returns the WAL dir.
func putWAL(tb testing.TB, n, valueSize, keys int) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "member", "wal")
	md, _ := proto.Marshal(&pb.Metadata{NodeID: new(uint64(1)), ClusterID: new(uint64(2))})
	w, err := etcdwal.Create(zap.NewNop(), dir, md)
	if err != nil {
		tb.Fatal(err)
	}
	val := make([]byte, valueSize)
	ents := make([]*raftpb.Entry, 0, 1000)
	for i := 1; i <= n; i++ {
		key := fmt.Appendf(nil, "/registry/pods/default/pod-%05d", i%keys)
		val[0], val[1] = byte(i), byte(i>>8)
		data, _ := proto.Marshal(&pb.InternalRaftRequest{ID: uint64(i), Put: &pb.PutRequest{Key: key, Value: val}})
		ents = append(ents, &raftpb.Entry{Index: new(uint64(i)), Term: new(uint64(1)), Type: raftpb.EntryNormal.Enum(), Data: data})
		if len(ents) == cap(ents) || i == n {
			if err := w.Save(&raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(i))}, ents); err != nil {
				tb.Fatal(err)
			}
			ents = ents[:0]
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// benchWAL writes n committed puts (200-byte values, 1000 keys).
func benchWAL(b *testing.B, n int) string { return putWAL(b, n, 200, 1000) }

func BenchmarkRead(b *testing.B) {
	const n = 50000
	dir := benchWAL(b, n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, err := Read(dir)
		if err != nil || len(l.Entries) != n {
			b.Fatal(err, len(l.Entries))
		}
		l.Close()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
}

func BenchmarkReplay(b *testing.B) {
	const n = 20000
	dir := benchWAL(b, n)
	l, err := Read(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ents := l.ReplayEntries(0, false)
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
