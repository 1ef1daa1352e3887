package salvage

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
)

// TestSalvageUnknownCompaction: every copy of the root bucket's leaf (the
// live one and the stale ones on free pages) is zeroed, so the meta bucket,
// and with it the compaction revision, is nowhere. Any carved record may
// then be compaction garbage: nothing compacted may come back (judge's
// "came back"), what is not proven is listed uncertain, and its revision
// reported lost. Before, every carved record was written as if above the
// compaction, and deleted keys came back.
func TestSalvageUnknownCompaction(t *testing.T) {
	dir, truth := fixtures.Cached(t, "kube", fixtures.KubeWorkload())
	db := fixtures.DBPath(dir)
	l, err := fixtures.Inspect(db)
	if err != nil {
		t.Fatal(err)
	}
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
	out := filepath.Join(t.TempDir(), "new.db")
	rep, err := Run(db, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("zeroed %d copies of the root leaf; compaction %d (%s); records %+v", zeroed, rep.CompactRevision, rep.CompactSource, rep.Records)
	if rep.CompactSource != unknownCompactSource {
		t.Fatalf("compaction source %q: the damage left a copy of the meta bucket", rep.CompactSource)
	}
	if rep.Records.Uncertain == 0 || rep.Complete {
		t.Errorf("want uncertain records and an incomplete salvage, got uncertain %d complete %v", rep.Records.Uncertain, rep.Complete)
	}
	// The held records are judged in conservative mode against the
	// history's real compaction: nothing it removed comes back.
	judgeWith(t, truth, rep, readSalvaged(t, out), false, false, false)
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
	for i := 0; i < count && 16+i*16+16 <= len(p); i++ {
		el := 16 + i*16
		flags := binary.LittleEndian.Uint32(p[el:])
		pos, ks := int(binary.LittleEndian.Uint32(p[el+4:])), int(binary.LittleEndian.Uint32(p[el+8:]))
		if flags&1 == 0 || el+pos+ks > len(p) {
			continue
		}
		if k := p[el+pos : el+pos+ks]; bytes.Equal(k, []byte("meta")) || bytes.Equal(k, []byte("key")) {
			found++
		}
	}
	return found == 2
}
