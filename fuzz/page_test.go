package fuzz

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"testing"

	"github.com/boltfix/boltfix/pagewalk"
)

// addPageSeeds seeds f with real pages of every type from the built dbs.
func addPageSeeds(f *testing.F, flags ...uint16) {
	for _, db := range builtSeeds(f) {
		for _, fl := range flags {
			for _, p := range pages(db, fl, 3) {
				f.Add(p)
			}
		}
	}
}

var allFlags = []uint16{pagewalk.FlagBranch, pagewalk.FlagLeaf, pagewalk.FlagMeta, pagewalk.FlagFreelist}

// FuzzPageHeader checks the header decoder against an independent decode
// and the type rule (exactly one known flag), then reads the page as a node.
func FuzzPageHeader(f *testing.F) {
	addPageSeeds(f, allFlags...)
	f.Add([]byte{})
	f.Add(make([]byte, 15))
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxInput {
			t.Skip()
		}
		h, ok := pagewalk.ParseHeader(b)
		if ok != (len(b) >= pagewalk.PageHeaderSize) {
			t.Fatalf("ParseHeader ok=%v on %d bytes", ok, len(b))
		}
		if !ok {
			return
		}
		want := pagewalk.Header{
			ID:       binary.LittleEndian.Uint64(b),
			Flags:    binary.LittleEndian.Uint16(b[8:]),
			Count:    binary.LittleEndian.Uint16(b[10:]),
			Overflow: binary.LittleEndian.Uint32(b[12:]),
		}
		if h != want {
			t.Fatalf("ParseHeader = %+v, want %+v", h, want)
		}
		known := h.Flags&^(pagewalk.FlagBranch|pagewalk.FlagLeaf|pagewalk.FlagMeta|pagewalk.FlagFreelist) == 0
		if valid := h.Type() != pagewalk.TypeInvalid; valid != (known && bits.OnesCount16(h.Flags) == 1) {
			t.Fatalf("flags %#x: Type() = %v", h.Flags, h.Type())
		}
		if h.Type().String() == "" {
			t.Fatal("empty type name")
		}
		checkNode(t, b, 0)
	})
}

// FuzzNode reads arbitrary bytes as a node: every branch and leaf accessor
// for each i < Count (and a few past it), ParseBucket on every leaf value,
// and FreelistIDs. Nothing may panic; every accessor that succeeds must
// agree with an independent decode of the element; allocation stays within
// the input's size.
func FuzzNode(f *testing.F) {
	addPageSeeds(f, pagewalk.FlagBranch, pagewalk.FlagLeaf, pagewalk.FlagFreelist)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxInput {
			t.Skip()
		}
		stop := watchdog("Node accessors", len(b))
		defer stop()
		checkAlloc(t, b, allocBudget(len(b)), "Node accessors", func() { checkNode(t, b, 0) })
	})
}

// checkNode exercises every accessor of b read as a node at page 9.
func checkNode(t *testing.T, b []byte, depth int) {
	t.Helper()
	h, ok := pagewalk.ParseHeader(b)
	if !ok {
		return
	}
	n := &pagewalk.Node{Pgid: 9, Offset: 9 * 4096, Header: h, Data: b}
	// Every i < Count that can lie in b, and two past that: the rest only
	// repeat the out-of-node error and make the fuzzer slow.
	last := min(int(n.Count)+1, (len(b)-pagewalk.PageHeaderSize)/pagewalk.BranchElementSize+2)
	for i := -1; i <= last; i++ {
		be, bfe := n.Branch(i)
		at := pagewalk.PageHeaderSize + i*pagewalk.BranchElementSize
		if i < 0 || at+16 > len(b) {
			if bfe == nil {
				t.Fatalf("Branch(%d) on %d bytes: no error", i, len(b))
			}
		} else {
			pos := uint64(binary.LittleEndian.Uint32(b[at:]))
			ksize := uint64(binary.LittleEndian.Uint32(b[at+4:]))
			fits := uint64(at)+pos+ksize <= uint64(len(b))
			if fits != (bfe == nil) {
				t.Fatalf("Branch(%d): pos %d ksize %d in %d bytes: err %v", i, pos, ksize, len(b), bfe)
			}
			if bfe == nil && (uint64(len(be.Key)) != ksize || !bytes.Equal(be.Key, b[uint64(at)+pos:uint64(at)+pos+ksize]) ||
				be.Child != binary.LittleEndian.Uint64(b[at+8:])) {
				t.Fatalf("Branch(%d) decoded wrong: %+v", i, be)
			}
		}
		if bfe != nil && bfe.Error() == "" {
			t.Fatal("empty error")
		}

		le, lfe := n.Leaf(i)
		if i < 0 || at+16 > len(b) {
			if lfe == nil {
				t.Fatalf("Leaf(%d) on %d bytes: no error", i, len(b))
			}
			continue
		}
		pos := uint64(binary.LittleEndian.Uint32(b[at+4:]))
		ksize := uint64(binary.LittleEndian.Uint32(b[at+8:]))
		vsize := uint64(binary.LittleEndian.Uint32(b[at+12:]))
		start := uint64(at) + pos
		if fits := start+ksize+vsize <= uint64(len(b)); fits != (lfe == nil) {
			t.Fatalf("Leaf(%d): pos %d ksize %d vsize %d in %d bytes: err %v", i, pos, ksize, vsize, len(b), lfe)
		}
		if lfe != nil {
			continue
		}
		if !bytes.Equal(le.Key, b[start:start+ksize]) || !bytes.Equal(le.Value, b[start+ksize:start+ksize+vsize]) {
			t.Fatalf("Leaf(%d) decoded wrong", i)
		}
		if le.IsBucket() && depth < 2 {
			checkBucketValue(t, le.Value, depth+1)
		}
	}
	checkFreelist(t, n)
}

// FuzzBucketValue decodes arbitrary bucket values, inline pages included,
// and reads every element of an inline page.
func FuzzBucketValue(f *testing.F) {
	for _, db := range builtSeeds(f) {
		vs := bucketValues(db)
		for i := 0; i < len(vs) && i < 8; i++ {
			f.Add(vs[i])
		}
	}
	f.Add(make([]byte, 16))
	f.Add(append(make([]byte, 16), 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0xFF, 0xFF, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, v []byte) {
		if len(v) > maxInput {
			t.Skip()
		}
		checkAlloc(t, v, allocBudget(len(v)), "ParseBucket", func() { checkBucketValue(t, v, 0) })
	})
}

func checkBucketValue(t *testing.T, v []byte, depth int) {
	t.Helper()
	h, inl, fe := pagewalk.ParseBucket(v, 5, 5*4096+100)
	if len(v) < pagewalk.BucketHeaderSize {
		if fe == nil {
			t.Fatalf("ParseBucket on %d bytes: no error", len(v))
		}
		return
	}
	if h.Root != binary.LittleEndian.Uint64(v) || h.Sequence != binary.LittleEndian.Uint64(v[8:]) {
		t.Fatalf("bucket header decoded wrong: %+v", h)
	}
	if h.Root != 0 {
		if inl != nil || fe != nil {
			t.Fatalf("root %d: inline %v err %v", h.Root, inl != nil, fe)
		}
		return
	}
	if fe != nil {
		if inl != nil {
			t.Fatal("inline node with an error")
		}
		return
	}
	if inl == nil || inl.Flags != pagewalk.FlagLeaf || &inl.Data[0] != &v[pagewalk.BucketHeaderSize] ||
		pagewalk.PageHeaderSize+int(inl.Count)*pagewalk.LeafElementSize > len(inl.Data) {
		t.Fatalf("inline page accepted but malformed: %+v", inl)
	}
	checkNode(t, inl.Data, depth)
}

// FuzzFreelist decodes arbitrary bytes as a freelist page (the flags are
// forced to freelist) and checks that the ids are the page's own u64s and
// that nothing is allocated past the page's size, whatever the count says.
func FuzzFreelist(f *testing.F) {
	for _, db := range builtSeeds(f) {
		for _, p := range pages(db, pagewalk.FlagFreelist, 2) {
			f.Add(p)
		}
	}
	big := make([]byte, 64)
	binary.LittleEndian.PutUint16(big[8:], pagewalk.FlagFreelist)
	binary.LittleEndian.PutUint16(big[10:], 0xFFFF)
	binary.LittleEndian.PutUint64(big[16:], 1<<60) // a count no page can hold
	f.Add(big)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxInput || len(b) < pagewalk.PageHeaderSize {
			t.Skip()
		}
		n := &pagewalk.Node{Pgid: 3, Offset: 3 * 4096, Header: mustHeader(b), Data: b}
		n.Flags = pagewalk.FlagFreelist
		checkAlloc(t, b, uint64(len(b))+64<<10, "FreelistIDs", func() { checkFreelist(t, n) })
	})
}

func checkFreelist(t *testing.T, n *pagewalk.Node) {
	t.Helper()
	ids, fe := pagewalk.FreelistIDs(n)
	if n.Flags != pagewalk.FlagFreelist {
		if fe == nil {
			t.Fatalf("FreelistIDs on flags %#x: no error", n.Flags)
		}
		return
	}
	if fe != nil {
		return
	}
	body := n.Data[pagewalk.PageHeaderSize:]
	if n.Count == 0xFFFF {
		body = body[8:]
	}
	if len(ids)*8 > len(body) {
		t.Fatalf("%d ids from a %d-byte body", len(ids), len(body))
	}
	if n.Count != 0xFFFF && len(ids) != int(n.Count) {
		t.Fatalf("%d ids, count %d", len(ids), n.Count)
	}
	for i, id := range ids {
		if id != binary.LittleEndian.Uint64(body[8*i:]) {
			t.Fatalf("id %d decoded wrong", i)
		}
	}
}
