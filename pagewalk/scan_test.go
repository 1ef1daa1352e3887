package pagewalk

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

func TestScanHealthy(t *testing.T) {
	for _, nfs := range []bool{true, false} {
		path := buildDB(t, 5000, nfs)
		r := scanPath(t, path, Options{Deep: true})
		rep := r.Report
		if !rep.Clean {
			js, _ := json.MarshalIndent(rep.Findings, "", " ")
			t.Fatalf("NoFreelistSync=%v: healthy db not clean: %s", nfs, js)
		}
		kb := r.Bucket("key")
		if kb == nil || kb.Records != 5000 || kb.Depth < 2 {
			t.Fatalf("key bucket: %+v", kb)
		}
		if in := r.Bucket("nested", "inner"); in == nil || in.Records != 300 {
			t.Fatalf("nested/inner: %+v", in)
		}
		if m := r.Bucket("meta"); m == nil || !m.Inline || m.Records != 1 {
			t.Fatalf("meta: %+v", m)
		}
		if rep.Etcd.ConsistentIndex == nil || *rep.Etcd.ConsistentIndex != 5500 {
			t.Fatalf("consistent index: %v", rep.Etcd.ConsistentIndex)
		}
		c := rep.Census
		if c.Overflow == 0 || c.Branch == 0 || c.Leaf == 0 {
			t.Fatalf("census: %+v", c)
		}
		if c.Meta+c.Freelist+c.Branch+c.Leaf+c.Overflow+c.Free+c.Orphan+c.Unreadable+c.PastHWM != rep.Pages {
			t.Fatalf("census does not add up to %d pages: %+v", rep.Pages, c)
		}
		t.Logf("nfs=%v census %+v", nfs, c)
	}
}

// A file that changes while it is read (etcd still running) is reported:
// the report then describes no single state of it.
func TestScanReportsFileChanged(t *testing.T) {
	path := buildDB(t, 500, true)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	r, err := f.Scan(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(findingsOf(r, KindFileChanged)) != 1 || r.Report.Clean {
		t.Fatalf("change not reported: %+v", r.Report.Findings)
	}
}
