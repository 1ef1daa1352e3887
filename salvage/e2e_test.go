package salvage

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/pagewalk"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// salvaged is what a salvaged db holds in its key bucket.
type salvaged struct {
	records map[pagewalk.Revision][]byte // revision -> etcd key
	latest  map[string]fixtures.KV       // live keys as etcd would serve them
}

// readSalvaged reads the output with bbolt (it must be healthy) and
// rebuilds the state etcd would serve: the newest record of each key.
func readSalvaged(t *testing.T, path string) salvaged {
	t.Helper()
	db, err := bolt.Open(path, 0400, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := salvaged{records: map[pagewalk.Revision][]byte{}, latest: map[string]fixtures.KV{}}
	newest := map[string]pagewalk.Revision{}
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("bbolt check: %w", err)
		}
		kb := tx.Bucket([]byte("key"))
		if kb == nil {
			// Nothing of the key bucket was written (a file cut to its
			// first pages): every key is missing, for the judge to weigh.
			return nil
		}
		return kb.ForEach(func(k, v []byte) error {
			rev, ok := pagewalk.ParseRevision(k)
			if !ok {
				return fmt.Errorf("non-revision key %x", k)
			}
			var kv mvccpb.KeyValue
			if err := proto.Unmarshal(v, &kv); err != nil {
				return err
			}
			s.records[rev] = kv.Key
			key := string(kv.Key)
			newest[key] = rev
			if rev.Tombstone {
				delete(s.latest, key)
			} else {
				s.latest[key] = fixtures.KV{Value: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version, Lease: kv.Lease}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func inLost(rep *Report, rev int64) bool {
	for _, r := range rep.LostRevisions {
		if rev >= r[0] && (r[1] == 0 || rev <= r[1]) {
			return true
		}
	}
	return false
}

// judge checks a salvage against the truth: nothing outside the history,
// no silent loss, and (when wantAll) every key back exactly.
func judge(t *testing.T, truth *fixtures.Truth, rep *Report, s salvaged, wantAll bool) {
	judgeOpts(t, truth, rep, s, wantAll, false)
}

// judgeOpts: valueFlips tolerates records whose bytes were changed in place
// but still decode (flipped bits in a value): only the WAL can show those.
func judgeOpts(t *testing.T, truth *fixtures.Truth, rep *Report, s salvaged, wantAll, valueFlips bool, flipped ...map[int64]bool) {
	t.Helper()
	judgeWith(t, truth, rep, s, wantAll, valueFlips, true, flipped...)
}

// judgeWith is judgeOpts; tight says whether the lost ranges must also be
// tight (checkTight).
func judgeWith(t *testing.T, truth *fixtures.Truth, rep *Report, s salvaged, wantAll, valueFlips, tight bool, flipped ...map[int64]bool) {
	t.Helper()
	flippedRev := map[int64]bool{}
	if len(flipped) > 0 {
		flippedRev = flipped[0]
	}
	// Conservative mode brings back no record that compaction deleted:
	// below the compaction, only each key's newest record (not a
	// tombstone) may be there.
	if !rep.Aggressive && truth.CompactRev > 0 {
		kept := map[string]int64{}
		for main, chs := range truth.Revisions {
			if main > truth.CompactRev {
				continue
			}
			for _, ch := range chs {
				if main > kept[ch.Key] {
					kept[ch.Key] = main
				}
				if ch.Delete && main == kept[ch.Key] {
					kept[ch.Key] = -main
				}
			}
		}
		for rev, key := range s.records {
			if rev.Main < truth.CompactRev && kept[string(key)] != rev.Main && !valueFlips {
				t.Errorf("compacted record %s of %q came back", rev, key)
			}
		}
	}
	// Nothing that was not in the original history appears.
	for rev, key := range s.records {
		if valueFlips {
			break
		}
		found := false
		for _, ch := range truth.Revisions[rev.Main] {
			if ch.Key == string(key) && ch.Delete == rev.Tombstone {
				found = true
			}
		}
		if !found {
			t.Errorf("record %s for %q is not in the history", rev, key)
		}
	}
	d := fixtures.Compare(truth, s.latest)
	trueRev := func(k string) int64 {
		if kv, ok := truth.Final[k]; ok {
			return kv.ModRevision
		}
		return truth.Deleted[k]
	}
	// A flip can change the key inside a value too: a record listed under
	// another key at the key's true revision covers it.
	unverified, unverifiedRev := map[string]bool{}, map[int64]bool{}
	for _, u := range rep.Unverified {
		unverified[u.Key], unverifiedRev[u.Revision.Main] = true, true
	}
	noTrace := valueFlips && rep.Findings == 0 && rep.Records.Rejected == 0 && len(rep.Conflicts) == 0 && len(rep.LostRevisions) == 0
	if rep.Complete && !d.OK() && !noTrace {
		// (Flips that leave no trace at all, in values with no second
		// copy, are invisible: values carry no checksum.)
		t.Errorf("complete with keys wrong: %s", d)
	}
	silent := 0
	for _, group := range [][]string{d.Stale, d.Missing, d.Resurrected, d.Wrong} {
		for _, k := range group {
			if (unverified[k] || unverifiedRev[trueRev(k)]) && len(rep.Unverified) == rep.UnverifiedCount {
				continue // reported: no second witness while values may be damaged
			}
			if valueFlips && flippedRev[trueRev(k)] && (noTrace || len(rep.Unverified) < rep.UnverifiedCount) {
				continue // invisible flips, or the unverified list was capped
			}
			if !inLost(rep, trueRev(k)) {
				if silent++; silent > 3 {
					continue
				}
				t.Errorf("silent loss: %q (true revision %d) is not inside a reported lost range nor listed unverified (%d ranges, reasons %v)", k, trueRev(k), len(rep.LostRevisions), rep.LostReasons[:min(3, len(rep.LostReasons))])
			}
		}
	}
	if silent > 3 {
		t.Errorf("... %d silent losses in all", silent)
	}
	if !valueFlips && tight {
		checkTight(t, truth, rep.LostRevisions, s.records, append(append(append(append([]string(nil), d.Stale...), d.Missing...), d.Resurrected...), d.Wrong...))
	}
	// A missing key whose records were seen and left out is named.
	leftOut := map[string]bool{}
	for _, l := range rep.LeftOut {
		leftOut[l.Key] = true
	}
	if len(rep.LeftOut) == rep.LeftOutCount {
		for _, u := range rep.Uncertain {
			if _, live := s.latest[u.Key]; !live && !u.Kept && !leftOut[u.Key] && !hasRecordOf(s, u.Key) {
				t.Errorf("key %q was seen (record %s left out) but is not named in left_out", u.Key, u.Revision)
			}
		}
	}
	if len(d.Extra) > 0 && !valueFlips {
		t.Errorf("keys that never existed: %v", d.Extra)
	}
	if wantAll && !d.OK() {
		t.Errorf("want every key back exactly: %s", d)
	}
	t.Logf("diff: %s; lost %v; records %+v", d, rep.LostRevisions, rep.Records)
}

// checkTight fails t when the lost ranges overstate the loss
// (fixtures.LossTightness): at most twice what is really lost, plus a
// small constant.
func checkTight(t *testing.T, truth *fixtures.Truth, lost [][2]int64, have map[pagewalk.Revision][]byte, wrongKeys []string) {
	t.Helper()
	haveMain := map[int64]int{}
	for rev := range have {
		haveMain[rev.Main]++
	}
	covered, really := fixtures.LossTightness(truth, lost, haveMain, wrongKeys)
	if covered > 2*really+tightSlack {
		t.Errorf("loss report not tight: %d revisions inside the %d reported ranges, %d really lost (allowed: 2x + %d)", covered, len(lost), really, tightSlack)
	}
	t.Logf("tightness: %d revisions inside reported ranges, %d really lost", covered, really)
}

// tightSlack is the constant of checkTight.
const tightSlack = 20

func hasRecordOf(s salvaged, key string) bool {
	for _, k := range s.records {
		if string(k) == key {
			return true
		}
	}
	return false
}

// recordsOnUndamagedLeaves lists the key-bucket records on leaves of the
// healthy db that the damage did not touch: all must come back.
func recordsOnUndamagedLeaves(t *testing.T, db string) map[uint64][][]byte {
	t.Helper()
	f, err := pagewalk.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := f.Scan(pagewalk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64][][]byte{}
	kb := res.Bucket("key")
	for _, pg := range kb.Leaves {
		n, err := f.ReadNode(pg)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < int(n.Count); i++ {
			e, fe := n.Leaf(i)
			if fe != nil {
				continue
			}
			// Overflow pages hold the same records' bytes: a flip there
			// hits them too.
			for o := uint64(0); o <= uint64(n.Overflow); o++ {
				out[pg+o] = append(out[pg+o], bytes.Clone(e.Key))
			}
		}
	}
	return out
}

func TestSalvageDamageClasses(t *testing.T) {
	cases := []struct {
		name    string
		damage  func(db string) (fixtures.Damage, error)
		wantAll bool // the pages are still on disk: every key must come back
		flips   bool // values changed in place: only the WAL can tell
	}{
		{"half-zeroed-root-branch", func(db string) (fixtures.Damage, error) { return fixtures.HalfZeroBranch(db, "key", 0) }, true, false},
		{"half-zeroed-inner-branch", func(db string) (fixtures.Damage, error) { return fixtures.HalfZeroBranch(db, "key", 1) }, true, false},
		{"both-metas-bad", fixtures.BothMetasBad, true, false},
		{"newest-meta-torn", fixtures.NewestMetaTorn, true, false},
		{"garbage-leaves", func(db string) (fixtures.Damage, error) { return fixtures.GarbageLeaves(db, 3, 7) }, false, false},
		{"truncated", func(db string) (fixtures.Damage, error) { return fixtures.Truncate(db, 0.7) }, false, false},
		{"bit-flips", func(db string) (fixtures.Damage, error) { return fixtures.BitFlips(db, 40, 11) }, false, true},
		{"root-bucket-page-garbage", func(db string) (fixtures.Damage, error) { return fixtures.GarbageRootPage(db, 5) }, false, false},
		{"cycle", fixtures.CycleBranch, false, false},
		{"past-eof", fixtures.PastEOF, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, truth := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
			db := fixtures.DBPath(dir)
			before := recordsOnUndamagedLeaves(t, db)
			dmg, err := tc.damage(db)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "new.db")
			rep, err := Run(db, out, Options{})
			if err != nil {
				t.Fatalf("%s: %v", dmg, err)
			}
			// readSalvaged runs bbolt's check on the published file (the
			// report's Verified flag is true in every report Run returns).
			s := readSalvaged(t, out)
			// Revisions with a record on a page the damage changed.
			hit := map[int64]bool{}
			for _, p := range dmg.Pages {
				for _, k := range before[p] {
					if rev, ok := pagewalk.ParseRevision(k); ok {
						hit[rev.Main] = true
					}
				}
			}
			judgeOpts(t, truth, rep, s, tc.wantAll, tc.flips, hit)
			damaged := map[uint64]bool{}
			hitKey := map[string]bool{} // records with a byte on a damaged page
			for _, p := range dmg.Pages {
				damaged[p] = true
				for _, k := range before[p] {
					hitKey[string(k)] = true
				}
			}
			have := map[string]bool{}
			for rev := range s.records {
				have[string(pagewalk.RevisionKey(rev))] = true
			}
			for pg, keys := range before {
				if damaged[pg] {
					continue
				}
				for _, k := range keys {
					rev, _ := pagewalk.ParseRevision(k)
					// Uncertain records are left out: below the compaction,
					// or anywhere when the compaction point is unknown.
					held := rev.Main < truth.CompactRev || rep.CompactSource == unknownCompactSource
					if !have[string(k)] && !hitKey[string(k)] && !(held && rep.Records.Uncertain > 0) {
						t.Errorf("record %x on undamaged page %d was not recovered", k, pg)
					}
				}
			}
		})
	}
}

func TestSalvageHealthyIsComplete(t *testing.T) {
	dir, truth := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	out := filepath.Join(t.TempDir(), "new.db")
	rep, err := Run(fixtures.DBPath(dir), out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Complete || len(rep.LostRevisions) != 0 {
		t.Fatalf("healthy db: complete=%v lost=%v reasons=%v", rep.Complete, rep.LostRevisions, rep.LostReasons)
	}
	judge(t, truth, rep, readSalvaged(t, out), true)
}

func TestSalvageRefusesToHarmInput(t *testing.T) {
	dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
	db := fixtures.DBPath(dir)
	if _, err := Run(db, db, Options{Force: true}); err != ErrOutputIsInput {
		t.Fatalf("output == input: got %v", err)
	}
	if _, err := Run(db, filepath.Join(dir, "member", "snap", "..", "snap", "db"), Options{Force: true}); err != ErrOutputIsInput {
		t.Fatalf("output == input via another path: got %v", err)
	}
}
