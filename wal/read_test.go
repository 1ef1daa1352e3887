package wal

import (
	"testing"
)

func TestReadLive(t *testing.T) {
	dir := t.TempDir()
	le := startEtcd(t, dir, nil)
	le.workload(40)
	id, cid := uint64(le.e.Server.MemberID()), uint64(le.e.Server.Cluster().ID())
	le.stop()
	l, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Clean() || len(l.Gaps) != 0 {
		t.Fatalf("stops %v gaps %v", l.Stops(), l.Gaps)
	}
	if l.Metadata == nil || l.Metadata.NodeID != id || l.Metadata.ClusterID != cid {
		t.Fatalf("metadata %+v, want node %x cluster %x", l.Metadata, id, cid)
	}
	// Every entry etcd wrote was committed (single member) and the WAL starts
	// at index 1 (nothing purged).
	if l.FirstIndex() != 1 || l.LastIndex() != uint64(len(l.Entries)) || l.CommitIndex() != l.LastIndex() {
		t.Fatalf("entries %d first %d last %d commit %d", len(l.Entries), l.FirstIndex(), l.LastIndex(), l.CommitIndex())
	}
	kinds := map[string]int{}
	for _, e := range l.Entries {
		kinds[DecodeEntry(e).Kind]++
	}
	// workload(40): 40 puts + 14 updates + 2 lease puts + 10 events, 8
	// deletes + the events range delete, one txn, two grants, one revoke,
	// one compaction; plus etcd's own conf change, no-op, version and
	// attributes entries.
	want := map[string]int{KindPut: 40 + 14 + 2 + 10, KindDeleteRange: 8 + 1, KindTxn: 1, KindLeaseGrant: 2,
		KindLeaseRevoke: 1, KindCompaction: 1, KindConfChange: 1, KindNoop: 1, KindClusterVersionSet: 1, KindMemberAttrSet: 1}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%s: %d entries, want %d (all: %v)", k, kinds[k], n, kinds)
		}
	}
}
