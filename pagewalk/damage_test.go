package pagewalk

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"os"
	"testing"
)

func findingsOf(r *Result, kind Kind) []Finding {
	var out []Finding
	for _, f := range r.Report.Findings {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

func hasPage(fs []Finding, page uint64) bool {
	for _, f := range fs {
		if f.Page != nil && *f.Page == page {
			return true
		}
	}
	return false
}

// The seed case: the key bucket's root branch has its second half zeroed.
func TestHalfZeroedBranch(t *testing.T) {
	path := buildDB(t, 20000, true)
	healthy := scanPath(t, path, Options{})
	kb := healthy.Bucket("key")
	ps := pageSizeOf(t, path)
	root := kb.Root
	n, err := healthy.File.ReadNode(root)
	if err != nil || n.Flags != FlagBranch || n.Count < 4 {
		t.Fatalf("key root %d is not a branch with elements: %+v %v", root, n.Header, err)
	}
	// Zero from the middle of the element array to the end of the page, so
	// the later elements hold pgid 0, as in the field report.
	mid := int64(PageHeaderSize + BranchElementSize*(int(n.Count)/2))
	patch(t, path, int64(root)*int64(ps)+mid, make([]byte, int64(ps)-mid))
	r := scanPath(t, path, Options{})
	if r.Report.Clean {
		t.Fatal("damage not found")
	}
	fs := findingsOf(r, KindChildIsMeta)
	if len(fs) != 1 || *fs[0].Page != root {
		t.Fatalf("want one child-is-meta finding on page %d, got %+v", root, r.Report.Findings)
	}
	f := fs[0]
	if f.Elements == nil || f.Elements[1] != int(n.Count)-1 {
		t.Fatalf("elements %v, want run ending at %d", f.Elements, n.Count-1)
	}
	if f.Lost == nil || f.Lost.After == nil || f.Lost.Before != nil || f.Lost.Revisions == nil || f.Lost.Revisions.To != 0 {
		t.Fatalf("lost range: %+v", f.Lost)
	}
	// Everything at or below After survived; the records above it are gone.
	after := f.Lost.After.Revision.Main
	kr := r.Bucket("key")
	if got, want := kr.Records, int(after-1); got != want {
		t.Fatalf("reached %d records, want %d (revisions 2..%d)", got, want, after)
	}
	if len(f.Chain) == 0 || f.Chain[len(f.Chain)-1] != root {
		t.Fatalf("chain %v does not end at %d", f.Chain, root)
	}
}

func TestGarbageLeaf(t *testing.T) {
	path := buildDB(t, 5000, true)
	healthy := scanPath(t, path, Options{})
	kb := healthy.Bucket("key")
	ps := pageSizeOf(t, path)
	victim := kb.Leaves[len(kb.Leaves)/2]
	junk := make([]byte, ps)
	rand.New(rand.NewSource(7)).Read(junk)
	patch(t, path, int64(victim)*int64(ps), junk)
	r := scanPath(t, path, Options{})
	var hit bool
	for _, f := range r.Report.Findings {
		if f.Page != nil && *f.Page == victim && (f.Kind == KindPageType || f.Kind == KindPageIDMismatch) {
			hit = true
			if f.Lost == nil || f.Lost.After == nil || f.Lost.Before == nil {
				t.Fatalf("garbage leaf finding lacks a closed lost range: %+v", f)
			}
			a, b := f.Lost.After.Revision.Main, f.Lost.Before.Revision.Main
			if b-a < 2 || a >= b {
				t.Fatalf("implausible lost revisions %d..%d", a, b)
			}
		}
	}
	if !hit {
		t.Fatalf("garbage leaf %d not reported: %+v", victim, r.Report.Findings)
	}
}

func TestBothMetasBad(t *testing.T) {
	path := buildDB(t, 3000, true)
	healthy := scanPath(t, path, Options{})
	ps := pageSizeOf(t, path)
	patch(t, path, 0, bytes.Repeat([]byte{0xAB}, 2*ps))
	r := scanPath(t, path, Options{})
	if r.Report.Chosen != -1 || len(r.Report.RootCandidates) == 0 {
		t.Fatalf("chosen %d, candidates %v", r.Report.Chosen, r.Report.RootCandidates)
	}
	if !hasPage(findingsOf(r, KindMetaInvalid), 0) || !hasPage(findingsOf(r, KindMetaInvalid), 1) {
		t.Fatalf("meta findings missing: %+v", r.Report.Findings)
	}
	if r.File.PageSize != ps {
		t.Fatalf("page size %d, want %d", r.File.PageSize, ps)
	}
	if got, want := r.Bucket("key").Records, healthy.Bucket("key").Records; got != want {
		t.Fatalf("walked %d key records from the candidate root, want %d", got, want)
	}
}

func TestNewestMetaTorn(t *testing.T) {
	path := buildDB(t, 3000, true)
	healthy := scanPath(t, path, Options{})
	ps := pageSizeOf(t, path)
	newest := uint64(0)
	if healthy.File.Metas[1].Meta.Txid > healthy.File.Metas[0].Meta.Txid {
		newest = 1
	}
	patch(t, path, int64(newest)*int64(ps)+40, make([]byte, 40))
	r := scanPath(t, path, Options{})
	if r.Report.Chosen != int(1-newest) {
		t.Fatalf("chose meta %d, want %d", r.Report.Chosen, 1-newest)
	}
	if !hasPage(findingsOf(r, KindMetaInvalid), newest) {
		t.Fatalf("torn meta not reported: %+v", r.Report.Findings)
	}
}

func TestTruncated(t *testing.T) {
	path := buildDB(t, 5000, true)
	healthy := scanPath(t, path, Options{})
	ps := pageSizeOf(t, path)
	cut := int64(healthy.HWM)*int64(ps)*2/3 + 123
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}
	r := scanPath(t, path, Options{})
	if len(findingsOf(r, KindTruncated)) != 1 {
		t.Fatalf("truncation not reported: %+v", r.Report.Findings)
	}
	// The root is rewritten by every commit, so it sits near the top of the
	// file and a cut usually takes it: then nothing can be walked.
	if len(findingsOf(r, KindChildPastEOF))+len(findingsOf(r, KindPageType))+len(findingsOf(r, KindOverflowPastEOF))+len(findingsOf(r, KindNoUsableMeta)) == 0 {
		t.Fatalf("no lost children reported: %+v", r.Report.Findings)
	}
}

func TestCycleAndPastEOF(t *testing.T) {
	path := buildDB(t, 20000, true)
	healthy := scanPath(t, path, Options{})
	ps := pageSizeOf(t, path)
	root := healthy.Bucket("key").Root
	n, _ := healthy.File.ReadNode(root)
	// Element 1 points back at the root (a cycle); element 2 past EOF.
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], root)
	patch(t, path, int64(root)*int64(ps)+PageHeaderSize+1*BranchElementSize+8, b[:])
	binary.LittleEndian.PutUint64(b[:], 1<<40)
	patch(t, path, int64(root)*int64(ps)+PageHeaderSize+2*BranchElementSize+8, b[:])
	r := scanPath(t, path, Options{})
	if !hasPage(findingsOf(r, KindReachedTwice), root) || !hasPage(findingsOf(r, KindChildOutOfRange), root) {
		t.Fatalf("cycle / past-EOF not reported on %d (count %d): %+v", root, n.Count, r.Report.Findings)
	}
}

func TestRandomDamageNeverPanics(t *testing.T) {
	path := buildDB(t, 3000, false)
	orig, _ := os.ReadFile(path)
	rnd := rand.New(rand.NewSource(3))
	for i := 0; i < 200; i++ {
		b := bytes.Clone(orig)
		for j := 0; j < 1+rnd.Intn(50); j++ {
			p := rnd.Intn(len(b))
			b[p] ^= 1 << rnd.Intn(8)
		}
		if i%10 == 0 {
			b = b[:rnd.Intn(len(b))]
		}
		f, err := NewFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			continue
		}
		if _, err := f.Scan(Options{Deep: true}); err != nil {
			t.Fatal(err)
		}
	}
}
