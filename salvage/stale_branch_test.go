package salvage

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/pagewalk"
)

// TestSalvageStaleBranchReusedChild: a stale branch page names a child
// page that has since been reused for another leaf. Its separator says the
// child began with the next sub-revision of a transaction; the page now
// begins far later. Read as "nothing lay between the left child's last
// record and the right child's first", it closes the transaction early, and
// the sub-revisions after it, lost with their leaf, vanish from the report
// (seen as a rare silent loss in TestSalvageKubeHistory/truncated: one key
// at a revision of two records). A child proves adjacency only when it
// begins with its separator, as every child of a branch bbolt wrote does.
//
// The damage is built from the fixture's own pages: a branch of the key
// bucket is zeroed (its leaves are carved), the leaf that holds the rest of
// a transaction split across two leaves is zeroed, and a free page is made
// into a stale branch pairing the transaction's first leaf with the leaf
// after the zeroed one, under the lost leaf's separator.
func TestSalvageStaleBranchReusedChild(t *testing.T) {
	db, truth, l, kt := kubeKeyTree(t, 3)
	f, err := pagewalk.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	edges := func(pgid uint64) (first, last []byte) {
		n, err := f.ReadNode(pgid)
		if err != nil || n.Count == 0 {
			t.Fatalf("leaf %d: %v", pgid, err)
		}
		a, fe := n.Leaf(0)
		b, fe2 := n.Leaf(int(n.Count) - 1)
		if fe != nil || fe2 != nil {
			t.Fatalf("leaf %d: %v %v", pgid, fe, fe2)
		}
		return append([]byte(nil), a.Key...), append([]byte(nil), b.Key...)
	}
	// A parent with three consecutive leaf children A, B, C where A ends
	// inside a transaction, above the compaction, that B continues.
	var parent, a, b, c uint64
	var sep []byte
	for _, p := range kt.Levels[len(kt.Levels)-2] {
		var kids []uint64
		for _, id := range kt.Levels[len(kt.Levels)-1] {
			if kt.Nodes[id].Parent == p {
				kids = append(kids, id)
			}
		}
		for i := 0; i+2 < len(kids) && parent == 0; i++ {
			_, aLast := edges(kids[i])
			bFirst, _ := edges(kids[i+1])
			ar, ok1 := pagewalk.ParseRevision(aLast)
			br, ok2 := pagewalk.ParseRevision(bFirst)
			// Above the compaction every record of the transaction is
			// written without a verdict: only its end can report it.
			if ok1 && ok2 && ar.Main == br.Main && ar.Main > truth.CompactRev && !br.Tombstone {
				parent, a, b, c, sep = p, kids[i], kids[i+1], kids[i+2], bFirst
			}
		}
	}
	f.Close()
	if parent == 0 {
		t.Fatal("no transaction split across two leaves of one parent: the workload's multi-record transactions should give one")
	}
	aFirst, _ := func() ([]byte, []byte) { f, _ = pagewalk.Open(db); defer f.Close(); return edges(a) }()
	// A free page below the high-water mark becomes the stale branch.
	reach := map[uint64]bool{}
	for _, id := range l.Reachable() {
		reach[id] = true
	}
	var free uint64
	for id := l.HWM - 1; id > 1 && free == 0; id-- {
		if !reach[id] {
			free = id
		}
	}
	if free == 0 {
		t.Fatal("no free page")
	}
	ps := int64(l.PageSize)
	page := make([]byte, ps)
	binary.LittleEndian.PutUint64(page[0:], free)
	binary.LittleEndian.PutUint16(page[8:], 0x01) // branch
	binary.LittleEndian.PutUint16(page[10:], 2)
	off := 16 + 2*16
	for i, e := range []struct {
		key   []byte
		child uint64
	}{{aFirst, a}, {sep, c}} {
		el := 16 + i*16
		binary.LittleEndian.PutUint32(page[el:], uint32(off-el))
		binary.LittleEndian.PutUint32(page[el+4:], uint32(len(e.key)))
		binary.LittleEndian.PutUint64(page[el+8:], e.child)
		off += copy(page[off:], e.key)
	}
	fh, err := os.OpenFile(db, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, ps)
	for _, w := range []struct {
		at   uint64
		data []byte
	}{{parent, zero}, {b, zero}, {free, page}} {
		if _, err := fh.WriteAt(w.data, int64(w.at)*ps); err != nil {
			t.Fatal(err)
		}
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	sr, _ := pagewalk.ParseRevision(sep)
	t.Logf("zeroed branch %d and leaf %d (begins with %s); stale branch at page %d pairs leaf %d with leaf %d", parent, b, sr, free, a, c)
	rep, _ := salvageJudged(t, db, truth)
	for i, r := range rep.LostRevisions {
		if r[0] <= sr.Main && (r[1] == 0 || sr.Main <= r[1]) {
			t.Logf("revision %d in lost range %v: %s", sr.Main, r, rep.LostReasons[i])
		}
	}
	if !inLost(rep, sr.Main) {
		t.Errorf("revision %d lost its sub-revisions from %d on with leaf %d, but is not reported lost: %v", sr.Main, sr.Sub, b, rep.LostRevisions)
	}
}

// TestSalvageCarvedLeafSkippedElement: on a carved leaf, two records with
// an undecodable one between them are not neighbours. Taken as such, the
// first closes its transaction, and the undecodable record, the next
// sub-revision of it, is dropped with no range reported.
func TestSalvageCarvedLeafSkippedElement(t *testing.T) {
	db, truth, l, kt := kubeKeyTree(t, 2)
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	ps := l.PageSize
	// A leaf holding the last sub-revision (at least 1) of a transaction
	// above the compaction followed by another revision on the same page.
	var leaf uint64
	var elem int
	var rev pagewalk.Revision
	for _, id := range kt.Leaves() {
		p := raw[int(id)*ps : int(id+1)*ps]
		count := int(binary.LittleEndian.Uint16(p[10:]))
		key := func(i int) pagewalk.Revision {
			_, k, _, _ := rawLeafElement(p, i)
			r, _ := pagewalk.ParseRevision(k)
			return r
		}
		for i := 1; i+1 < count && leaf == 0; i++ {
			r, next := key(i), key(i+1)
			if r.Main > truth.CompactRev && r.Sub >= 1 && next.Main != r.Main && !r.Tombstone {
				leaf, elem, rev = id, i, r
			}
		}
		if leaf != 0 {
			break
		}
	}
	if leaf == 0 {
		t.Fatal("no leaf ends a multi-record transaction above the compaction before another revision")
	}
	fh, err := os.OpenFile(db, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Its parent is zeroed so that the leaf is carved, and the record's
	// value overwritten so that it no longer decodes.
	_, _, vat, vs := rawLeafElement(raw[int(leaf)*ps:int(leaf+1)*ps], elem)
	junk := make([]byte, vs)
	for i := range junk {
		junk[i] = 0xff
	}
	for _, w := range []struct {
		at   int64
		data []byte
	}{{int64(kt.Nodes[leaf].Parent) * int64(ps), make([]byte, ps)}, {int64(int(leaf)*ps + vat), junk}} {
		if _, err := fh.WriteAt(w.data, w.at); err != nil {
			t.Fatal(err)
		}
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("zeroed branch %d; record %s on leaf %d (element %d) no longer decodes", kt.Nodes[leaf].Parent, rev, leaf, elem)
	rep, s := salvageJudged(t, db, truth)
	if _, back := s.records[rev]; !back && !inLost(rep, rev.Main) {
		t.Errorf("revision %d lost sub-revision %d (undecodable on leaf %d), but is not reported lost: %v", rev.Main, rev.Sub, leaf, rep.LostRevisions)
	}
}

// kubeKeyTree gives a fresh copy of the Kubernetes-shaped history's db, its
// truth, its layout and its key bucket's tree, which must be at least
// levels deep.
func kubeKeyTree(t *testing.T, levels int) (db string, truth *fixtures.Truth, l *fixtures.Layout, kt *fixtures.Tree) {
	t.Helper()
	dir, truth := fixtures.Cached(t, "kube", fixtures.KubeWorkload())
	db = fixtures.DBPath(dir)
	l, err := fixtures.Inspect(db)
	if err != nil {
		t.Fatal(err)
	}
	kt = l.Buckets["key"]
	if kt == nil || len(kt.Levels) < levels {
		t.Fatalf("want a key bucket at least %d levels deep, got %+v", levels, kt)
	}
	return db, truth, l, kt
}

// rawLeafElement decodes element i of leaf page p by hand (bbolt's leaf
// element: flags, pos, ksize, vsize): its flags, key, and where its value
// lies in p and how long it is. A key past the page comes back nil.
func rawLeafElement(p []byte, i int) (flags uint32, key []byte, valueAt, valueLen int) {
	el := 16 + i*16
	if el+16 > len(p) {
		return 0, nil, 0, 0
	}
	flags = binary.LittleEndian.Uint32(p[el:])
	pos, ks, vs := int(binary.LittleEndian.Uint32(p[el+4:])), int(binary.LittleEndian.Uint32(p[el+8:])), int(binary.LittleEndian.Uint32(p[el+12:]))
	if el+pos+ks+vs > len(p) {
		return flags, nil, 0, 0
	}
	return flags, p[el+pos : el+pos+ks], el + pos + ks, vs
}

// salvageJudged salvages db and judges the output against truth (no
// silent loss, nothing compacted or invented back; tightness not held).
func salvageJudged(t *testing.T, db string, truth *fixtures.Truth) (*Report, salvaged) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "new.db")
	rep, err := Run(db, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := readSalvaged(t, out)
	judgeWith(t, truth, rep, s, false, false, false)
	return rep, s
}
