package salvage

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/pagewalk"
	bolt "go.etcd.io/bbolt"
)

// boltState is every record of a bbolt file by "pathhex/.../|keyhex".
type boltState struct {
	recs      map[string]string // id -> value hex
	topLevel  []string          // hex, sorted
	lostFound int
	// found are the lost+found entries by record id -> value hex.
	found map[string]string
}

func recID(path []string, key string) string { return strings.Join(path, "/") + "|" + key }

// readBolt reads a healthy bbolt file (it must pass bbolt's check) whole;
// records under lost+found are counted, not kept.
func readBolt(t *testing.T, path, lostFound string) boltState {
	t.Helper()
	db, err := bolt.Open(path, 0400, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := boltState{recs: map[string]string{}, found: map[string]string{}}
	var walk func(b *bolt.Bucket, path []string)
	walk = func(b *bolt.Bucket, path []string) {
		b.ForEach(func(k, v []byte) error {
			if v == nil {
				walk(b.Bucket(k), append(slices.Clone(path), hex.EncodeToString(k)))
				return nil
			}
			s.recs[recID(path, hex.EncodeToString(k))] = hex.EncodeToString(v)
			return nil
		})
	}
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("bbolt check: %w", err)
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			s.topLevel = append(s.topLevel, hex.EncodeToString(name))
			if string(name) == lostFound {
				s.lostFound = b.Stats().KeyN
				return b.ForEach(func(k, v []byte) error {
					var e LostFoundEntry
					if err := json.Unmarshal(v, &e); err != nil {
						return fmt.Errorf("lost+found %s: %w", k, err)
					}
					s.found[recID(e.BucketHex, e.KeyHex)] = e.ValueHex
					return nil
				})
			}
			walk(b, []string{hex.EncodeToString(name)})
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(s.topLevel)
	return s
}

// judgeGeneric compares a generic salvage with the ground truth: every
// value in the live buckets is the final one (nothing stale, nothing
// deleted brought back, nothing invented); the top-level buckets are the
// input's (plus lost+found when used); every final record is back (wantAll)
// or lies in a lost range the report names (its key, or the name of a
// bucket it is under). It returns the counts.
func judgeGeneric(t *testing.T, truth *fixtures.BoltTruth, rep *Report, got boltState, wantAll bool) (exact, missing int) {
	t.Helper()
	final := map[string]string{}
	for _, r := range truth.Records {
		final[recID(r.Path, r.Key)] = r.Value
	}
	deleted := map[string]bool{}
	for _, r := range truth.Deleted {
		deleted[recID(r.Path, r.Key)] = true
	}
	stale := map[string]bool{}
	for _, r := range truth.Stale {
		stale[recID(r.Path, r.Key)+"="+r.Value] = true
	}
	bad := 0
	for id, v := range got.recs {
		want, ok := final[id]
		switch {
		case ok && want == v:
			continue
		case ok && stale[id+"="+v]:
			t.Errorf("stale value at %s", id)
		case ok:
			t.Errorf("wrong value at %s", id)
		case deleted[id]:
			t.Errorf("deleted record brought back: %s", id)
		default:
			t.Errorf("invented record: %s", id)
		}
		if bad++; bad > 10 {
			t.Fatal("too many bad records")
		}
	}
	for _, r := range truth.Records {
		id := recID(r.Path, r.Key)
		if got.recs[id] == final[id] {
			exact++
			continue
		}
		missing++
		if wantAll {
			if missing <= 10 {
				t.Errorf("record missing: %s", id)
			}
			continue
		}
		if !namedLost(rep, r.Path, r.Key) && got.found[id] != r.Value && missing <= 10 {
			t.Errorf("record missing and no lost range names it: %s", id)
		}
	}
	var top []string
	for _, b := range truth.Buckets {
		if len(b) == 1 {
			top = append(top, b[0])
		}
	}
	if got.lostFound > 0 || rep.Generic.LostFound.Records > 0 {
		top = append(top, hex.EncodeToString([]byte(rep.Generic.LostFound.Bucket)))
	}
	slices.Sort(top)
	if !reflect.DeepEqual(top, got.topLevel) {
		t.Errorf("top-level buckets %v, want %v", got.topLevel, top)
	}
	if got.lostFound != rep.Generic.LostFound.Records {
		t.Errorf("lost+found holds %d records, report says %d", got.lostFound, rep.Generic.LostFound.Records)
	}
	return exact, missing
}

// namedLost reports whether a lost range of the report holds the record:
// its key in its bucket, or the name of one of its enclosing buckets.
func namedLost(rep *Report, pathHex []string, keyHex string) bool {
	for i := range pathHex {
		elem := keyHex
		if i+1 < len(pathHex) {
			elem = pathHex[i+1]
		}
		k, _ := hex.DecodeString(elem)
		for _, l := range rep.Generic.Lost {
			if l.Recovered || len(l.Bucket) != i+1 {
				continue
			}
			match := true
			for j, p := range l.Bucket {
				b, _ := hex.DecodeString(pathHex[j])
				match = match && printableKey(b) == p
			}
			if !match {
				continue
			}
			if inRange(l.After, l.Before, k) {
				return true
			}
		}
	}
	return false
}

func inRange(after, before *pagewalk.Key, k []byte) bool {
	if after != nil {
		a, _ := hex.DecodeString(after.Hex)
		if bytes.Compare(k, a) <= 0 {
			return false
		}
	}
	if before != nil {
		b, _ := hex.DecodeString(before.Hex)
		if bytes.Compare(k, b) >= 0 {
			return false
		}
	}
	return true
}

func salvageGeneric(t *testing.T, db string) (*Report, boltState) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.db")
	rep, err := Run(db, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Generic == nil || rep.Layout == nil || rep.Layout.Kind != pagewalk.KindBboltFile {
		t.Fatalf("not salvaged as a generic bbolt file: layout %+v", rep.Layout)
	}
	// Nothing etcd-specific.
	if len(rep.LostRevisions)+len(rep.Ledger)+len(rep.PossiblyStale) > 0 || rep.ConsistentIndex != nil || rep.Records != (RecordCounts{}) {
		t.Errorf("etcd-specific report fields for a generic file: %+v %+v", rep.LostRevisions, rep.Records)
	}
	for _, n := range rep.Next {
		if strings.Contains(n, "WAL") || strings.Contains(n, "etcd") {
			t.Errorf("etcd advice for a generic file: %s", n)
		}
	}
	return rep, readBolt(t, out, rep.Generic.LostFound.Bucket)
}

var imagesPath = []string{"v1", "default", "images"}

func TestGenericContainerdHalfZeroNestedBranch(t *testing.T) {
	db, truth := fixtures.CachedBolt(t, fixtures.WriterContainerd, 4)
	bin := fixtures.BoltWritersBinary(t)
	before, err := fixtures.ListContainerd(bin, db)
	if err != nil {
		t.Fatal(err)
	}
	d, err := fixtures.HalfZeroBranchPath(db, imagesPath, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(d)
	if len(d.Orphaned) == 0 {
		t.Fatal("the damage orphaned nothing")
	}
	rep, got := salvageGeneric(t, db)
	if rep.Layout.Application != "containerd-metadata" {
		t.Errorf("layout %+v", rep.Layout)
	}
	if rep.Generic.Proof != "synced-freelist" {
		t.Errorf("proof %q: %s", rep.Generic.Proof, rep.Generic.ProofMissing)
	}
	exact, missing := judgeGeneric(t, truth, rep, got, true)
	t.Logf("%d of %d records exact, %d missing; restored %d, lost+found %d, unreached %+v", exact, len(truth.Records), missing, rep.Generic.Restored, rep.Generic.LostFound.Records, rep.Generic.Unreached)
	if rep.Generic.Restored == 0 || !rep.Complete || rep.Generic.LostFound.Records != 0 {
		t.Errorf("restored %d, complete %v, lost+found %d: want the orphaned half back in place, complete", rep.Generic.Restored, rep.Complete, rep.Generic.LostFound.Records)
	}
	after, err := fixtures.ListContainerd(bin, rep.Output)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("containerd lists differently after salvage:\nbefore %+v\nafter  %+v", before, after)
	}
	if n := len(after.Namespaces["default"].Images); n == 0 {
		t.Error("containerd lists no images")
	}
}

func TestGenericContainerdBothMetasBad(t *testing.T) {
	db, truth := fixtures.CachedBolt(t, fixtures.WriterContainerd, 4)
	if _, err := fixtures.BothMetasBad(db); err != nil {
		t.Fatal(err)
	}
	rep, got := salvageGeneric(t, db)
	exact, missing := judgeGeneric(t, truth, rep, got, true)
	t.Logf("%d of %d exact, %d missing; proof %q", exact, len(truth.Records), missing, rep.Generic.ProofMissing)
	if rep.Generic.Proof != "none" || rep.Generic.ProofMissing == "" {
		t.Errorf("no meta, yet proof %q", rep.Generic.Proof)
	}
}

func TestGenericContainerdGarbageLeaves(t *testing.T) {
	db, truth := fixtures.CachedBolt(t, fixtures.WriterContainerd, 4)
	if _, err := fixtures.GarbageLeavesPath(db, imagesPath, 2, 7); err != nil {
		t.Fatal(err)
	}
	rep, got := salvageGeneric(t, db)
	exact, missing := judgeGeneric(t, truth, rep, got, false)
	t.Logf("%d of %d exact, %d missing (named lost); lost ranges %d open %d; lost+found %d; unreached %+v", exact, len(truth.Records), missing, len(rep.Generic.Lost), rep.Generic.OpenRanges, rep.Generic.LostFound.Records, rep.Generic.Unreached)
	if missing == 0 || rep.Complete || rep.Generic.OpenRanges == 0 {
		t.Errorf("garbage leaves lose records: missing %d, complete %v, open ranges %d", missing, rep.Complete, rep.Generic.OpenRanges)
	}
}

func TestGenericRaftHalfZeroBranch(t *testing.T) {
	db, truth := fixtures.CachedBolt(t, fixtures.WriterRaft, 4)
	if _, err := fixtures.HalfZeroBranch(db, "logs", 0); err != nil {
		t.Fatal(err)
	}
	rep, got := salvageGeneric(t, db)
	if rep.Layout.Application != "raft-boltdb" {
		t.Errorf("layout %+v", rep.Layout)
	}
	exact, missing := judgeGeneric(t, truth, rep, got, true)
	t.Logf("%d of %d exact, %d missing; restored %d", exact, len(truth.Records), missing, rep.Generic.Restored)
	if !rep.Complete {
		t.Errorf("not complete: %+v", rep.Generic.Lost)
	}
}

// A raft store's last commits alternate between two sets of pages (bbolt
// reuses the pages the previous commit freed at once): with both metas gone
// two trees fit their freelists equally and nothing in bbolt's format
// orders them. The larger is walked; what only the other holds is in
// lost+found, with its exact path, never in the live buckets.
func TestGenericRaftBothMetasBad(t *testing.T) {
	db, truth := fixtures.CachedBolt(t, fixtures.WriterRaft, 4)
	if _, err := fixtures.BothMetasBad(db); err != nil {
		t.Fatal(err)
	}
	rep, got := salvageGeneric(t, db)
	exact, missing := judgeGeneric(t, truth, rep, got, false)
	inFound := 0
	for _, r := range truth.Records {
		id := recID(r.Path, r.Key)
		if got.recs[id] == r.Value {
			continue
		}
		if got.found[id] != r.Value {
			t.Errorf("record %s neither in place nor in lost+found", id)
		}
		inFound++
	}
	t.Logf("%d of %d exact in place, %d missing, all of them exact in lost+found (%d entries)", exact, len(truth.Records), missing, got.lostFound)
	if missing > 3 {
		t.Errorf("%d records not in place: more than the last commit", missing)
	}
}

func TestGenericRaftGarbageLeaves(t *testing.T) {
	db, truth := fixtures.CachedBolt(t, fixtures.WriterRaft, 4)
	if _, err := fixtures.GarbageLeavesPath(db, []string{"logs"}, 1, 3); err != nil {
		t.Fatal(err)
	}
	rep, got := salvageGeneric(t, db)
	_, missing := judgeGeneric(t, truth, rep, got, false)
	if missing == 0 || rep.Complete {
		t.Errorf("missing %d complete %v", missing, rep.Complete)
	}
}
