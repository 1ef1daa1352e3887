package salvage

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
)

// TestSalvageUnknownCompaction: every copy of the root bucket's leaf (the
// live one and the stale ones on free pages) is zeroed, so the meta bucket,
// and with it the compaction revision, is nowhere. Any carved record may
// then be compaction garbage: nothing compacted may come back (judge's
// "came back"), what is not proven is listed uncertain, and its revision
// reported lost. Before, every carved record was written as if above the
// compaction, and deleted keys came back.
func TestSalvageUnknownCompaction(t *testing.T) {
	db, truth, l, _ := kubeKeyTree(t, 1)
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	ps := l.PageSize
	zeroed := 0
	for id := 2; (id+1)*ps <= len(raw); id++ {
		if rootLeafCopy(raw[id*ps : (id+1)*ps]) {
			clear(raw[id*ps : (id+1)*ps])
			zeroed++
		}
	}
	if zeroed == 0 {
		t.Fatal("no copy of the root bucket's leaf found")
	}
	if err := os.WriteFile(db, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	// The held records are judged in conservative mode against the
	// history's real compaction: nothing it removed comes back.
	rep, _ := salvageJudged(t, db, truth)
	t.Logf("zeroed %d copies of the root leaf; compaction %d (%s); records %+v", zeroed, rep.CompactRevision, rep.CompactSource, rep.Records)
	if rep.CompactSource != unknownCompactSource {
		t.Fatalf("compaction source %q: the damage left a copy of the meta bucket", rep.CompactSource)
	}
	if rep.Records.Uncertain == 0 || rep.Complete {
		t.Errorf("want uncertain records and an incomplete salvage, got uncertain %d complete %v", rep.Records.Uncertain, rep.Complete)
	}
}

// rootLeafCopy reports whether page p is a leaf holding the "meta" and
// "key" buckets: a copy of the root bucket's leaf (etcd writes a new one
// at every commit).
func rootLeafCopy(p []byte) bool {
	if binary.LittleEndian.Uint16(p[8:]) != 0x02 {
		return false
	}
	count := int(binary.LittleEndian.Uint16(p[10:]))
	found := 0
	for i := 0; i < count; i++ {
		flags, k, _, _ := rawLeafElement(p, i)
		if flags&1 != 0 && (bytes.Equal(k, []byte("meta")) || bytes.Equal(k, []byte("key"))) {
			found++
		}
	}
	return found == 2
}
