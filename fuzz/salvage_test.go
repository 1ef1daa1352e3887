package fuzz

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/salvage"
	bolt "go.etcd.io/bbolt"
)

// FuzzSalvage salvages seed dbs damaged by structured edits (the same
// edits as FuzzScanEdits): salvage never panics, fails only on a file with
// no bbolt structure at all, and whatever it writes opens in bbolt and
// passes tx.Check. Selectors from genericSeedFirst up pick a bbolt file
// that is not etcd's (the generic path: orphaned subtrees, lost+found).
func FuzzSalvage(f *testing.F) {
	f.Add(uint8(0), []byte{})
	f.Add(uint8(0), []byte{1, 0, 5, 0, 3, 0, 0, 0})
	f.Add(uint8(2), []byte{2, 0, 4, 0, 0, 0, 0, 0})
	f.Add(uint8(1), []byte{3, 2, 6, 0, 7, 0, 0, 0})
	f.Add(uint8(0), []byte{4, 12, 3, 0, 0xff, 0xff, 0, 0})
	f.Add(uint8(3), []byte{0, 1, 2, 0, 40, 0, 0xAB, 0, 5, 0})
	f.Add(uint8(genericSeedFirst), []byte{})
	f.Add(uint8(genericSeedFirst), []byte{1, 0, 5, 0, 3, 0, 0, 0})
	f.Add(uint8(genericSeedFirst+1), []byte{2, 0, 4, 0, 0, 0, 0, 0})
	f.Add(uint8(genericSeedFirst), []byte{0, 1, 2, 0, 40, 0, 0xAB, 0, 5, 0})
	f.Fuzz(func(t *testing.T, which uint8, edits []byte) {
		dbs := builtSeeds(t)
		if which >= genericSeedFirst {
			dbs, which = builtGenericSeeds(t), which-genericSeedFirst
		}
		b := applyEdits(dbs[int(which)%len(dbs)], edits)
		if len(b) > maxInput {
			t.Skip()
		}
		stop := watchdog("Salvage", len(b))
		defer stop()
		dir := t.TempDir()
		in, out := filepath.Join(dir, "in.db"), filepath.Join(dir, "out.db")
		if err := os.WriteFile(in, b, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := salvage.Run(in, out, salvage.Options{})
		if err != nil {
			if errors.Is(err, pagewalk.ErrNotBolt) {
				return
			}
			t.Fatalf("salvage: %v", err)
		}
		checkSalvageOutput(t, out, rep)
	})
}

// checkSalvageOutput opens the published output with bbolt and runs its
// check: the file itself, since rep.Verified is true in every report
// salvage.Run returns.
func checkSalvageOutput(t *testing.T, out string, rep *salvage.Report) {
	t.Helper()
	db, err := bolt.Open(out, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("output does not open in bbolt: %v", err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("output fails bbolt's check: %v (complete %v)", err, rep.Complete)
	}
}
