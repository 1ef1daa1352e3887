package wal

import (
	"testing"
)

func TestReadLive(t *testing.T) {
	dir := t.TempDir()
	le := startEtcd(t, dir, nil)
	le.workload(40)
	le.stop()
	l, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Segments {
		t.Logf("%+v", *s)
	}
	t.Logf("hs %+v entries %d first %d last %d gaps %v stops %v", l.HardState, len(l.Entries), l.FirstIndex(), l.LastIndex(), l.Gaps, l.Stops())
}
