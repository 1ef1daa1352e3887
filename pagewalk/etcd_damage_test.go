package pagewalk_test

import (
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/pagewalk"
)

// Every class of db damage, on data a real etcd wrote: the scan does not
// panic, is not clean, and names the damaged pages (or, where no page holds
// the damage, the class of finding that says so).
func TestScanRealEtcdDamage(t *testing.T) {
	cases := []struct {
		name   string
		damage func(db string) (fixtures.Damage, error)
		// kinds that may carry the damage when its pages are not named
		// (a cut file has no page holding the damage).
		pageless []pagewalk.Kind
	}{
		{"half-zeroed-root-branch", func(db string) (fixtures.Damage, error) { return fixtures.HalfZeroBranch(db, "key", 0) }, nil},
		{"half-zeroed-inner-branch", func(db string) (fixtures.Damage, error) { return fixtures.HalfZeroBranch(db, "key", 1) }, nil},
		{"garbage-leaves", func(db string) (fixtures.Damage, error) { return fixtures.GarbageLeaves(db, 3, 9) }, nil},
		{"both-metas-bad", fixtures.BothMetasBad, nil},
		{"root-page-garbage", func(db string) (fixtures.Damage, error) { return fixtures.GarbageRootPage(db, 1) }, nil},
		{"newest-meta-torn", fixtures.NewestMetaTorn, nil},
		{"truncated", func(db string) (fixtures.Damage, error) { return fixtures.Truncate(db, 0.8) }, []pagewalk.Kind{pagewalk.KindTruncated}},
		{"bit-flips", func(db string) (fixtures.Damage, error) { return fixtures.BitFlips(db, 300, 4) }, nil},
		{"cycle", fixtures.CycleBranch, nil},
		{"past-eof", fixtures.PastEOF, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := fixtures.Cached(t, "default", fixtures.DefaultWorkload())
			db := fixtures.DBPath(dir)
			dmg, err := tc.damage(db)
			if err != nil {
				t.Fatal(err)
			}
			f, err := pagewalk.Open(db)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res, err := f.Scan(pagewalk.Options{Deep: true})
			if err != nil {
				t.Fatal(err)
			}
			rep := res.Report
			if rep.Clean {
				t.Fatalf("%s: scan is clean", dmg)
			}
			damaged := map[uint64]bool{}
			for _, p := range dmg.Pages {
				damaged[p] = true
			}
			named := false
			for _, fd := range rep.Findings {
				if fd.Page != nil && damaged[*fd.Page] {
					named = true
				}
				for _, k := range tc.pageless {
					if fd.Kind == k {
						named = true
					}
				}
			}
			if !named {
				t.Errorf("%s: no finding names a damaged page %v; findings: %d, first %+v", dmg, dmg.Pages, len(rep.Findings), rep.Findings[0])
			}
		})
	}
}
