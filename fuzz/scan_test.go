package fuzz

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/boltfix/boltfix/pagewalk"
)

// FuzzScan runs the whole-file scan (census, walk, etcd summary, --deep
// decoding) on mutated real dbs and checks the report's bookkeeping: every
// page slot counted once, findings inside the file, the chosen meta usable,
// the report marshals, and ForEach reads back exactly the records the walk
// counted. A call may not allocate more than allocBudget nor run longer
// than hangAfter.
func FuzzScan(f *testing.F) {
	for _, db := range builtSeeds(f) {
		f.Add(db.data)
		for _, c := range corruptions(db) {
			f.Add(c)
		}
		// Single real pages, alone and after the two metas.
		for _, fl := range []uint16{pagewalk.FlagBranch, pagewalk.FlagLeaf, pagewalk.FlagFreelist} {
			for _, p := range pages(db, fl, 1) {
				f.Add(p)
				f.Add(append(append([]byte(nil), db.data[:2*db.ps]...), p...))
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkScan(t, b)
	})
}

// checkScan is FuzzScan's body, shared with the named regression tests.
func checkScan(t *testing.T, b []byte) *pagewalk.Result {
	t.Helper()
	if len(b) > maxInput {
		t.Skip()
	}
	stop := watchdog("Scan", len(b))
	defer stop()
	var res *pagewalk.Result
	var err error
	checkAlloc(t, b, allocBudget(len(b)), "NewFile+Scan", func() {
		var file *pagewalk.File
		file, err = pagewalk.NewFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		res, err = file.Scan(pagewalk.Options{Deep: true})
	})
	if err != nil {
		if errors.Is(err, pagewalk.ErrNotBolt) && res == nil {
			return nil
		}
		t.Fatalf("unexpected error on a bytes.Reader: %v", err)
	}
	checkReport(t, res, b)
	return res
}

func checkReport(t *testing.T, res *pagewalk.Result, b []byte) {
	t.Helper()
	rep := res.Report
	checkFile(t, res.File, b)
	c := rep.Census
	if sum := c.Meta + c.Freelist + c.Branch + c.Leaf + c.Overflow + c.Free + c.Orphan + c.Unreadable + c.PastHWM; sum != rep.Pages {
		t.Fatalf("census counts %d pages of %d: %+v", sum, rep.Pages, c)
	}
	if rep.Chosen < -1 || rep.Chosen > 1 || (rep.Chosen >= 0 && !res.File.Metas[rep.Chosen].Usable) {
		t.Fatalf("chosen meta %d", rep.Chosen)
	}
	if rep.Clean != (len(rep.Findings) == 0) {
		t.Fatalf("clean=%v with %d findings", rep.Clean, len(rep.Findings))
	}
	limit := max(rep.Pages, 2)
	for _, fd := range rep.Findings {
		if fd.Kind == "" || fd.Message == "" {
			t.Fatalf("finding without kind or message: %+v", fd)
		}
		if fd.Page != nil && *fd.Page >= limit {
			t.Fatalf("finding on page %d of a %d-page file: %+v", *fd.Page, rep.Pages, fd)
		}
		for _, p := range fd.Chain {
			if p >= limit {
				t.Fatalf("chain through page %d of a %d-page file: %+v", p, rep.Pages, fd)
			}
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatalf("report does not marshal: %v", err)
	}
	// What salvage does next: read every reached bucket's records back.
	for _, bk := range res.Buckets {
		n := 0
		err := res.ForEach(bk, func(k, v []byte) error { n++; return nil })
		if err == nil && n != bk.Records {
			t.Fatalf("bucket %q: walk counted %d records, ForEach read %d", bk.Name(), bk.Records, n)
		}
		for _, p := range bk.Leaves {
			if owner, ok := res.Reached(p); !ok || owner != bk {
				t.Fatalf("bucket %q leaf %d not reached by it", bk.Name(), p)
			}
		}
	}
}
