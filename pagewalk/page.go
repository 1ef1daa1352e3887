package pagewalk

import "encoding/binary"

// Header is the 16-byte header that starts every page.
type Header struct {
	ID       uint64
	Flags    uint16
	Count    uint16
	Overflow uint32
}

// Type is the page type the flags claim.
func (h Header) Type() PageType { return typeOfFlags(h.Flags) }

// ParseHeader decodes a page header. b must hold at least PageHeaderSize bytes.
func ParseHeader(b []byte) (Header, bool) {
	if len(b) < PageHeaderSize {
		return Header{}, false
	}
	return Header{
		ID:       binary.LittleEndian.Uint64(b[0:8]),
		Flags:    binary.LittleEndian.Uint16(b[8:10]),
		Count:    binary.LittleEndian.Uint16(b[10:12]),
		Overflow: binary.LittleEndian.Uint32(b[12:16]),
	}, true
}

// Node is one bbolt node: a page and its overflow continuation pages, as
// read from the file. Data may be shorter than the header claims when the
// file ends early; every accessor checks bounds against len(Data).
//
// Keys and values returned by the accessors alias Data: copy them to keep
// them past the next read into the same buffer.
type Node struct {
	Pgid   uint64 // the position it was read from (not the header's claim)
	Offset int64  // byte offset of the page in the file
	Header
	Data []byte
}

// BranchElement is one decoded branch element.
type BranchElement struct {
	Key   []byte
	Child uint64
}

// LeafElement is one decoded leaf element.
type LeafElement struct {
	Flags uint32
	Key   []byte
	Value []byte
}

// IsBucket reports whether the element is a nested bucket.
func (e LeafElement) IsBucket() bool { return e.Flags&LeafFlagBucket != 0 }

// elementsFit reports whether count elements of size fit after the header.
func (n *Node) elementsFit(size int) bool {
	return PageHeaderSize+int(n.Count)*size <= len(n.Data)
}

// Elements is how many of the node's elements have their header inside
// it: its count, read from disk, or fewer. Branch and leaf elements are
// both 16 bytes. Loops over a node's elements use it, so that a count
// that claims 65,535 elements in a small page costs nothing past the page.
func (n *Node) Elements() int {
	fit := (len(n.Data) - PageHeaderSize) / LeafElementSize
	return max(0, min(int(n.Count), fit))
}

// Branch decodes branch element i. The key lies at the element's address
// plus pos; a pos or ksize that leaves the node is an ErrOutOfBounds.
func (n *Node) Branch(i int) (BranchElement, *FormatError) {
	at := PageHeaderSize + i*BranchElementSize
	if i < 0 || at+BranchElementSize > len(n.Data) {
		return BranchElement{}, formatErr(n.Pgid, n.Offset+int64(at), ErrOutOfBounds, i, "branch element %d outside the node", i)
	}
	e := n.Data[at : at+BranchElementSize]
	pos := uint64(binary.LittleEndian.Uint32(e[0:4]))
	ksize := uint64(binary.LittleEndian.Uint32(e[4:8]))
	child := binary.LittleEndian.Uint64(e[8:16])
	start := uint64(at) + pos
	if start+ksize > uint64(len(n.Data)) {
		return BranchElement{Child: child}, formatErr(n.Pgid, n.Offset+int64(at), ErrOutOfBounds, ksize,
			"branch element %d key (pos %d, size %d) outside the node of %d bytes", i, pos, ksize, len(n.Data))
	}
	return BranchElement{Key: n.Data[start : start+ksize], Child: child}, nil
}

// Leaf decodes leaf element i; the value follows the key.
func (n *Node) Leaf(i int) (LeafElement, *FormatError) {
	sp, ok := n.leafSpan(i)
	if !ok {
		return LeafElement{}, formatErr(n.Pgid, n.Offset+int64(sp.at), ErrOutOfBounds, i, "leaf element %d outside the node", i)
	}
	if sp.end() > uint64(len(n.Data)) {
		return LeafElement{Flags: sp.flags}, formatErr(n.Pgid, n.Offset+int64(sp.at), ErrOutOfBounds, sp.ksize+sp.vsize,
			"leaf element %d (pos %d, key %d, value %d bytes) outside the node of %d bytes", i, sp.start-uint64(sp.at), sp.ksize, sp.vsize, len(n.Data))
	}
	return LeafElement{
		Flags: sp.flags,
		Key:   n.Data[sp.start : sp.start+sp.ksize],
		Value: n.Data[sp.start+sp.ksize : sp.end()],
	}, nil
}

// leafElementSpan is where a leaf element's header and bytes lie in its
// node's Data: the header at at, the key at start, the value after it.
type leafElementSpan struct {
	at                  int
	flags               uint32
	start, ksize, vsize uint64
}

func (sp leafElementSpan) end() uint64 { return sp.start + sp.ksize + sp.vsize }

// leafSpan decodes leaf element i's header; ok is false when the header
// lies outside the node. The bytes it names may still lie past the node's
// Data (end() > len(Data)): Leaf reports that, zeroedBlocks skips it.
func (n *Node) leafSpan(i int) (sp leafElementSpan, ok bool) {
	sp.at = PageHeaderSize + i*LeafElementSize
	if i < 0 || sp.at+LeafElementSize > len(n.Data) {
		return sp, false
	}
	e := n.Data[sp.at : sp.at+LeafElementSize]
	sp.flags = binary.LittleEndian.Uint32(e[0:4])
	sp.start = uint64(sp.at) + uint64(binary.LittleEndian.Uint32(e[4:8]))
	sp.ksize = uint64(binary.LittleEndian.Uint32(e[8:12]))
	sp.vsize = uint64(binary.LittleEndian.Uint32(e[12:16]))
	return sp, true
}

// BucketHeader is the value of a bucket element.
type BucketHeader struct {
	Root     uint64 // 0 for an inline bucket
	Sequence uint64
}

// ParseBucket decodes a bucket element's value. For an inline bucket
// (Root == 0) it also returns the embedded leaf page, as a Node whose Pgid
// is the page holding it.
func ParseBucket(v []byte, holder uint64, off int64) (BucketHeader, *Node, *FormatError) {
	if len(v) < BucketHeaderSize {
		return BucketHeader{}, nil, formatErr(holder, off, ErrOutOfBounds, len(v), "bucket value shorter than its %d-byte header", BucketHeaderSize)
	}
	h := BucketHeader{Root: binary.LittleEndian.Uint64(v[0:8]), Sequence: binary.LittleEndian.Uint64(v[8:16])}
	if h.Root != 0 {
		return h, nil, nil
	}
	inl := v[BucketHeaderSize:]
	ph, ok := ParseHeader(inl)
	if !ok {
		return h, nil, formatErr(holder, off, ErrOutOfBounds, len(inl), "inline bucket page shorter than a page header")
	}
	if ph.Flags != FlagLeaf {
		return h, nil, formatErr(holder, off, ErrPageType, ph.Flags, "inline bucket page is not a leaf")
	}
	n := &Node{Pgid: holder, Offset: off + BucketHeaderSize, Header: ph, Data: inl}
	if !n.elementsFit(LeafElementSize) {
		return h, nil, formatErr(holder, off, ErrOutOfBounds, ph.Count, "inline bucket element count exceeds its %d bytes", len(inl))
	}
	return h, n, nil
}
