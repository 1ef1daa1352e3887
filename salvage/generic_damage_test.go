package salvage

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/pagewalk"
	bolt "go.etcd.io/bbolt"
)

// An undamaged file comes back whole: every record exact, complete, no
// lost+found. It also proves the ground truth matches the file.
func TestGenericClean(t *testing.T) {
	for _, w := range []string{fixtures.WriterContainerd, fixtures.WriterRaft} {
		t.Run(w, func(t *testing.T) {
			db, truth := fixtures.CachedBolt(t, w, 4)
			rep, got := salvageGeneric(t, db)
			exact, _ := judgeGeneric(t, truth, rep, got, true)
			if !rep.Complete || rep.Findings != 0 || rep.Generic.LostFound.Records != 0 || exact != len(truth.Records) {
				t.Errorf("complete %v findings %d lost+found %d exact %d/%d", rep.Complete, rep.Findings, rep.Generic.LostFound.Records, exact, len(truth.Records))
			}
			if len(truth.Deleted) == 0 || len(truth.Stale) == 0 {
				t.Errorf("the workload deleted %d and overwrote %d records: the judge's stale and deleted checks would not bite", len(truth.Deleted), len(truth.Stale))
			}
		})
	}
}

// Truncation and bit flips: the salvage runs, writes a file bbolt checks
// clean, invents nothing and brings nothing deleted back (bit flips may
// change a value in place: only keys are judged there).
func TestGenericTruncateAndBitFlips(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(string) (fixtures.Damage, error)
		values bool
	}{
		{"truncate", func(db string) (fixtures.Damage, error) { return fixtures.Truncate(db, 0.7) }, true},
		{"bitflips", func(db string) (fixtures.Damage, error) { return fixtures.BitFlips(db, 40, 9) }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, truth := fixtures.CachedBolt(t, fixtures.WriterContainerd, 4)
			if _, err := c.damage(db); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "out.db")
			rep, err := Run(db, out, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := readBolt(t, out, "")
			if rep.Generic == nil {
				t.Skipf("damage left no generic file (layout %+v)", rep.Layout)
			}
			got = readBolt(t, out, rep.Generic.LostFound.Bucket)
			final := map[string]string{}
			for _, r := range truth.Records {
				final[recID(r.Path, r.Key)] = r.Value
			}
			deleted := map[string]bool{}
			for _, r := range truth.Deleted {
				deleted[recID(r.Path, r.Key)] = true
			}
			wrong := 0
			for id, v := range got.recs {
				want, ok := final[id]
				switch {
				case deleted[id]:
					t.Errorf("deleted record back: %s", id)
				case !ok:
					wrong++ // a flipped key byte makes a key of its own
				case c.values && want != v:
					t.Errorf("value at %s differs", id)
				}
			}
			if c.values && wrong > 0 {
				t.Errorf("%d records not in the truth", wrong)
			}
			t.Logf("%s: %d of %d records in place, complete %v, open ranges %d, lost+found %d", c.name, len(got.recs), len(truth.Records), rep.Complete, rep.Generic.OpenRanges, got.lostFound)
			if rep.Complete && len(got.recs) < len(truth.Records) {
				t.Error("records missing but the salvage says complete")
			}
		})
	}
}

// Without a synced freelist (bbolt's NoFreelistSync, as etcd runs it) no
// page proves itself current: a torn branch in a nested bucket leaves its
// cut-off records out of the live buckets, and every one of them is in
// lost+found, exact, under its real bucket path.
func TestGenericNoFreelistSyncToLostFound(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nofreelist.db")
	bdb, err := bolt.Open(db, 0o600, &bolt.Options{NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	err = bdb.Update(func(tx *bolt.Tx) error {
		items, err := tx.CreateBucket([]byte("app"))
		if err != nil {
			return err
		}
		if items, err = items.CreateBucket([]byte("items")); err != nil {
			return err
		}
		for i := 0; i < 600; i++ {
			k, v := fmt.Sprintf("item-%04d", i), fmt.Sprintf("value %d %040d", i, i)
			if err := items.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
			want[recID([]string{hex.EncodeToString([]byte("app")), hex.EncodeToString([]byte("items"))}, hex.EncodeToString([]byte(k)))] = hex.EncodeToString([]byte(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := fixtures.HalfZeroBranchPath(db, []string{"app", "items"}, 0); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.db")
	rep, err := Run(db, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Generic == nil || rep.Generic.Proof != "none" || rep.Generic.Restored != 0 || rep.Complete {
		t.Fatalf("proof %q restored %d complete %v", rep.Generic.Proof, rep.Generic.Restored, rep.Complete)
	}
	got := readBolt(t, out, rep.Generic.LostFound.Bucket)
	inPlace, inFound := 0, 0
	for id, v := range want {
		switch {
		case got.recs[id] == v:
			inPlace++
		case got.found[id] == v:
			inFound++
		default:
			t.Errorf("%s neither in place nor in lost+found", id)
		}
	}
	if len(got.recs) != inPlace {
		t.Errorf("%d records in the live buckets, %d of them right", len(got.recs), inPlace)
	}
	if inFound == 0 || got.lostFound != inFound {
		t.Errorf("lost+found holds %d entries, %d of them the cut-off records", got.lostFound, inFound)
	}
	t.Logf("%d in place, %d in lost+found (of %d)", inPlace, inFound, len(want))
}

// TestGenericZeroedPageSweep zeroes pages of a containerd and a raft-boltdb
// file one at a time (every branch page, every fifth page besides): a
// salvage that says complete has every record exact, and none panics.
func TestGenericZeroedPageSweep(t *testing.T) {
	for _, writer := range []string{fixtures.WriterContainerd, fixtures.WriterRaft} {
		db, truth := fixtures.CachedBolt(t, writer, 2)
		orig, err := os.ReadFile(db)
		if err != nil {
			t.Fatal(err)
		}
		ps := pageSizeFromMeta(orig)
		every := 5
		if testing.Short() {
			every = 25
		}
		for p := 2; p < len(orig)/ps; p++ {
			h, ok := pagewalk.ParseHeader(orig[p*ps:])
			branch := ok && h.ID == uint64(p) && h.Type() == pagewalk.TypeBranch
			if !branch && p%every != 0 {
				continue
			}
			b := append([]byte(nil), orig...)
			clear(b[p*ps : (p+1)*ps])
			t.Run(fmt.Sprintf("%s-page-%d", writer, p), func(t *testing.T) {
				in := filepath.Join(t.TempDir(), "db")
				if err := os.WriteFile(in, b, 0o600); err != nil {
					t.Fatal(err)
				}
				rep, got := salvageGeneric(t, in)
				if rep.Complete {
					judgeGeneric(t, truth, rep, got, true)
				}
			})
		}
	}
}

// pageSizeFromMeta reads the page size from meta 0 of a healthy file.
func pageSizeFromMeta(b []byte) int {
	return int(binary.LittleEndian.Uint32(b[pagewalk.PageHeaderSize+8:]))
}

// TestGenericZeroedValueBlock zeroes a 4 KiB block of a large value in a
// bbolt file that is not etcd's: the record is written as found (the zeros
// may be its own), and the salvage is not complete.
func TestGenericZeroedValueBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blobs.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("blobs"))
		if err != nil {
			return err
		}
		for i := 0; i < 3; i++ {
			v := make([]byte, 9000)
			for j := range v {
				v[j] = byte(j*7 + i + 1)
			}
			if err := b.Put([]byte(fmt.Sprintf("blob-%d", i)), v); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps := pageSizeFromMeta(orig)
	// The second page of a leaf that spans several.
	block := -1
	for p := 2; p < len(orig)/ps && block < 0; p++ {
		if h, ok := pagewalk.ParseHeader(orig[p*ps:]); ok && h.ID == uint64(p) && h.Type() == pagewalk.TypeLeaf && h.Overflow > 0 {
			block = p + 1
		}
	}
	if block < 0 {
		t.Fatal("no leaf with overflow pages")
	}
	clear(orig[block*ps : (block+1)*ps])
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, _ := salvageGeneric(t, path)
	if rep.Complete || rep.Findings == 0 {
		t.Fatalf("zeroed block %d: complete %v, %d findings, notes %v", block, rep.Complete, rep.Findings, rep.Notes)
	}
}
