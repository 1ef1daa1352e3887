package wal

import (
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func mkLog(commit uint64, ents ...*raftpb.Entry) *Log {
	l := &Log{HardState: &HardState{Commit: commit}}
	for _, e := range ents {
		l.Entries = append(l.Entries, NewEntry(e))
	}
	l.Gaps = gaps(l.Entries)
	return l
}

func ent(index, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Index: &index, Term: &term, Data: []byte(data)}
}

// The union fills one member's purged prefix and another's torn tail, takes
// the highest commit, prefers a committed entry over a stale uncommitted
// one, and reports two committed copies that differ.
func TestMerge(t *testing.T) {
	a := mkLog(4, ent(3, 1, "c"), ent(4, 1, "d"))                                 // prefix purged
	b := mkLog(2, ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c"), ent(4, 2, "x")) // 4 never committed here
	m, conflicts := Merge([]*Log{a, b}, []string{"a", "b"})
	if m.FirstIndex() != 1 || m.LastIndex() != 4 || m.CommitIndex() != 4 || len(m.Gaps) != 0 || len(conflicts) != 0 {
		t.Fatalf("first %d last %d commit %d gaps %v conflicts %v", m.FirstIndex(), m.LastIndex(), m.CommitIndex(), m.Gaps, conflicts)
	}
	if got := string(m.Entries[3].mem.GetData()); got != "d" {
		t.Errorf("entry 4 %q: want a's committed copy, not b's uncommitted one", got)
	}

	c := mkLog(4, ent(3, 1, "c"), ent(4, 1, "D"))
	_, conflicts = Merge([]*Log{a, c}, []string{"a", "c"})
	if len(conflicts) != 1 || !strings.Contains(conflicts[0], "entry 4") || !strings.Contains(conflicts[0], "a and c") {
		t.Errorf("conflicts %v", conflicts)
	}
	if m, _ := Merge([]*Log{nil, a}, nil); m.FirstIndex() != 3 {
		t.Errorf("a nil log: first %d", m.FirstIndex())
	}
}
