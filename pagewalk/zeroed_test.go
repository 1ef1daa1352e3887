package pagewalk

import (
	"encoding/binary"
	"os"
	"testing"
)

// TestZeroedBlocks zeroes a whole 4 KiB block past a leaf's first page (a
// hole, a lost write): the structure still parses, so only the zero block
// itself can show it. Over a value it is zeroed-block (the record is
// suspect, not lost); over a key it is zeroed-key, with the lost range
// between the record's neighbours. A healthy file has neither.
func TestZeroedBlocks(t *testing.T) {
	healthy := buildDB(t, 600, false)
	r := scanPath(t, healthy, Options{})
	if n := len(findingsOf(r, KindZeroedBlock)) + len(findingsOf(r, KindZeroedKey)); n != 0 || !r.Report.Clean {
		t.Fatalf("healthy file: %d zeroed findings, clean %v", n, r.Report.Clean)
	}
	ps := int64(pageSizeOf(t, healthy))
	orig, err := os.ReadFile(healthy)
	if err != nil {
		t.Fatal(err)
	}
	// A reached key-bucket leaf with overflow pages, and per block past its
	// first which element's key or value lies there.
	kb := r.Bucket("key")
	var valueBlock, keyBlock int64
	var valueElem, keyElem int
	var keyRev int64
	for _, pg := range kb.Leaves {
		s := r.c.sums[pg]
		if s.overflow == 0 {
			continue
		}
		node := orig[int64(pg)*ps : (int64(pg)+int64(s.overflow)+1)*ps]
		for i := 0; i < int(s.count); i++ {
			e := node[PageHeaderSize+i*LeafElementSize:]
			start := int64(PageHeaderSize+i*LeafElementSize) + int64(binary.LittleEndian.Uint32(e[4:8]))
			ksize := int64(binary.LittleEndian.Uint32(e[8:12]))
			stop := start + ksize + int64(binary.LittleEndian.Uint32(e[12:16]))
			for b := fsBlock; b+fsBlock <= len(node); b += fsBlock {
				lo, hi := int64(b), int64(b+fsBlock)
				switch {
				case valueBlock == 0 && start+ksize <= lo && stop >= hi:
					valueBlock, valueElem = int64(pg)*ps+lo, i
				case keyBlock == 0 && start >= lo && start+ksize <= hi && stop-start >= 64:
					keyBlock, keyElem = int64(pg)*ps+lo, i
					keyRev = int64(binary.BigEndian.Uint64(node[start:]))
				}
			}
		}
	}
	if valueBlock == 0 || keyBlock == 0 {
		t.Fatalf("no leaf block holding only a value (%d) or a key (%d)", valueBlock, keyBlock)
	}
	zero := func(off int64) *Result {
		dmg := healthy + ".dmg"
		if err := os.WriteFile(dmg, orig, 0o600); err != nil {
			t.Fatal(err)
		}
		patch(t, dmg, off, make([]byte, fsBlock))
		return scanPath(t, dmg, Options{})
	}
	r = zero(valueBlock)
	fs := findingsOf(r, KindZeroedBlock)
	if len(fs) != 1 || *fs[0].Offset != valueBlock || *fs[0].Element != valueElem || fs[0].Lost != nil || r.Report.Clean {
		t.Fatalf("value block at %d (element %d): findings %+v", valueBlock, valueElem, r.Report.Findings)
	}
	r = zero(keyBlock)
	fs = findingsOf(r, KindZeroedKey)
	if len(fs) != 1 || *fs[0].Element != keyElem || fs[0].Lost == nil || fs[0].Lost.Revisions == nil ||
		keyRev < fs[0].Lost.Revisions.From || (fs[0].Lost.Revisions.To != 0 && keyRev > fs[0].Lost.Revisions.To) {
		t.Fatalf("key block at %d (element %d, revision %d): findings %+v", keyBlock, keyElem, keyRev, r.Report.Findings)
	}
}

// TestLeafMayBeLost: in a healthy file no leaf can be gone; a zeroed
// branch page whose sibling walks as a branch hides no leaf; a zeroed leaf
// or a cut file may.
func TestLeafMayBeLost(t *testing.T) {
	healthy := buildDB(t, 6000, true)
	r := scanPath(t, healthy, Options{})
	if why := r.LeafMayBeLost(); why != "" {
		t.Fatalf("healthy file: %s", why)
	}
	ps := int64(pageSizeOf(t, healthy))
	orig, err := os.ReadFile(healthy)
	if err != nil {
		t.Fatal(err)
	}
	// A branch under the key bucket's root (the tree is three levels
	// deep), and a leaf.
	kb := r.Bucket("key")
	if kb.Depth < 3 {
		t.Fatalf("key bucket %d levels deep, the test needs 3", kb.Depth)
	}
	var branch, leaf uint64
	for p := range r.c.sums {
		s := &r.c.sums[p]
		if b, ok := r.Reached(uint64(p)); !ok || b != kb || s.state != stateWellFormed || uint64(p) == kb.Root {
			continue
		}
		switch {
		case s.typ == TypeBranch && branch == 0:
			branch = uint64(p)
		case s.typ == TypeLeaf && leaf == 0:
			leaf = uint64(p)
		}
	}
	zero := func(pgid uint64) *Result {
		dmg := healthy + ".dmg"
		if err := os.WriteFile(dmg, orig, 0o600); err != nil {
			t.Fatal(err)
		}
		patch(t, dmg, int64(pgid)*ps, make([]byte, ps))
		return scanPath(t, dmg, Options{})
	}
	if why := zero(branch).LeafMayBeLost(); why != "" {
		t.Errorf("zeroed branch %d: %s", branch, why)
	}
	if why := zero(leaf).LeafMayBeLost(); why == "" {
		t.Errorf("zeroed leaf %d: no leaf may be lost?", leaf)
	}
	if why := zero(kb.Root).LeafMayBeLost(); why == "" {
		t.Errorf("zeroed root %d (no sibling tells its level): no leaf may be lost?", kb.Root)
	}
	// A page of garbage the walk cannot reach (a child of the lost
	// branch): the leftover data of a freed node when all the damage wrote
	// zeros, a possibly lost leaf when some of it wrote garbage.
	child := binary.LittleEndian.Uint64(orig[int64(branch)*ps+PageHeaderSize+8:])
	garbage := make([]byte, ps)
	for i := range garbage {
		garbage[i] = byte(i*131 + 7)
	}
	both := func(branchBytes []byte) *Result {
		dmg := healthy + ".dmg2"
		if err := os.WriteFile(dmg, orig, 0o600); err != nil {
			t.Fatal(err)
		}
		patch(t, dmg, int64(branch)*ps, branchBytes)
		patch(t, dmg, int64(child)*ps, garbage)
		return scanPath(t, dmg, Options{})
	}
	if why := both(make([]byte, ps)).LeafMayBeLost(); why != "" {
		t.Errorf("zeroed branch %d, garbage child %d: %s", branch, child, why)
	}
	if why := both(garbage).LeafMayBeLost(); why == "" {
		t.Errorf("garbage branch %d and child %d: no leaf may be lost?", branch, child)
	}
	cut := healthy + ".cut"
	if err := os.WriteFile(cut, orig[:len(orig)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if why := scanPath(t, cut, Options{}).LeafMayBeLost(); why == "" {
		t.Errorf("cut file: no leaf may be lost?")
	}
}
