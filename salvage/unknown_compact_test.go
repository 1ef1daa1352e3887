package salvage

import (
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
	db, truth, _, _ := kubeKeyTree(t, 1)
	dmg, err := fixtures.ZeroRootLeaves(db)
	if err != nil {
		t.Fatal(err)
	}
	// The held records are judged in conservative mode against the
	// history's real compaction: nothing it removed comes back.
	rep, _ := salvageJudged(t, db, truth)
	t.Logf("%s; compaction %d (%s); records %+v", dmg, rep.CompactRevision, rep.CompactSource, rep.Records)
	if rep.CompactSource != unknownCompactSource {
		t.Fatalf("compaction source %q: the damage left a copy of the meta bucket", rep.CompactSource)
	}
	if rep.Records.Uncertain == 0 || rep.Complete {
		t.Errorf("want uncertain records and an incomplete salvage, got uncertain %d complete %v", rep.Records.Uncertain, rep.Complete)
	}
}
