package fuzz

import (
	"encoding/binary"
	"hash/fnv"
)

// Hand-built hostile files for the regression tests: a valid pair of metas
// and pages laid out by the caller.

const craftPS = 512

// craftMeta writes a valid meta page at page id (0 or 1) of b.
func craftMeta(b []byte, id, root, hwm, txid uint64) {
	p := b[id*craftPS:]
	binary.LittleEndian.PutUint64(p, id)
	binary.LittleEndian.PutUint16(p[8:], 0x04)
	body := p[16:]
	binary.LittleEndian.PutUint32(body[0:], 0xED0CDAED)
	binary.LittleEndian.PutUint32(body[4:], 2)
	binary.LittleEndian.PutUint32(body[8:], craftPS)
	binary.LittleEndian.PutUint64(body[16:], root)
	binary.LittleEndian.PutUint64(body[32:], 0xFFFFFFFFFFFFFFFF) // NoFreelistSync
	binary.LittleEndian.PutUint64(body[40:], hwm)
	binary.LittleEndian.PutUint64(body[48:], txid)
	h := fnv.New64a()
	h.Write(body[:56])
	binary.LittleEndian.PutUint64(body[56:], h.Sum64())
}

// craftHeader writes a page header at page id.
func craftHeader(b []byte, id uint64, flags uint16, count uint16, overflow uint32) {
	p := b[id*craftPS:]
	binary.LittleEndian.PutUint64(p, id)
	binary.LittleEndian.PutUint16(p[8:], flags)
	binary.LittleEndian.PutUint16(p[10:], count)
	binary.LittleEndian.PutUint32(p[12:], overflow)
}

// overlappingKeysFile: one branch page (the root) whose overflow claims the
// whole file and whose count elements all point at one key that spans the
// rest of it. Each element's key is legal on its own; together they name
// count x keyLen bytes from a file of n bytes.
func overlappingKeysFile(n int, count uint16) []byte {
	b := make([]byte, n)
	pages := uint64(n / craftPS)
	craftMeta(b, 0, 2, pages, 2)
	craftMeta(b, 1, 2, pages, 1)
	craftHeader(b, 2, 0x01, count, uint32(pages-3))
	base := 2 * craftPS
	keyAt := base + 16 + int(count)*16
	keyLen := n - keyAt
	for i := 0; i < int(count); i++ {
		e := b[base+16+16*i:]
		binary.LittleEndian.PutUint32(e[0:], uint32(keyAt-(base+16+16*i)))
		binary.LittleEndian.PutUint32(e[4:], uint32(keyLen))
		binary.LittleEndian.PutUint64(e[8:], 0) // child 0: a finding, not followed
	}
	return b
}

// stackedOverflowFile: every page from 2 on is a well-formed leaf of its
// own id whose overflow claims the rest of the file and whose one element's
// key spans it. Each node is legal alone; the census reads n/ps nodes of up
// to n bytes each and keeps each first key.
func stackedOverflowFile(n int) []byte {
	b := make([]byte, n)
	pages := uint64(n / craftPS)
	craftMeta(b, 0, 2, pages, 2)
	craftMeta(b, 1, 2, pages, 1)
	for id := uint64(2); id < pages; id++ {
		craftHeader(b, id, 0x02, 1, uint32(pages-id-1))
		e := b[id*craftPS+16:]
		keyLen := uint64(n) - id*craftPS - 32
		binary.LittleEndian.PutUint32(e[0:], 0)  // flags
		binary.LittleEndian.PutUint32(e[4:], 16) // pos: right after the element
		binary.LittleEndian.PutUint32(e[8:], uint32(keyLen))
		binary.LittleEndian.PutUint32(e[12:], 0)
	}
	return b
}

// rootCandidatesFile: both metas invalid, and every page a leaf of its own
// id holding one bucket element named "meta" whose bucket root is the next
// page, with an overflow claim to the end of the file: each root candidate
// makes consistentIndexUnder read two nodes of up to n bytes.
func rootCandidatesFile(n int) []byte {
	b := make([]byte, n)
	pages := uint64(n / craftPS)
	for id := uint64(2); id < pages; id++ {
		craftHeader(b, id, 0x02, 1, uint32(pages-id-1))
		e := b[id*craftPS+16:]
		binary.LittleEndian.PutUint32(e[0:], 1)  // bucket
		binary.LittleEndian.PutUint32(e[4:], 16) // pos
		binary.LittleEndian.PutUint32(e[8:], 4)
		binary.LittleEndian.PutUint32(e[12:], 16)
		copy(e[32:], "meta")
		binary.LittleEndian.PutUint64(e[36:], min(id+1, pages-1)) // bucket root
	}
	return b
}

// stackedBranchFile: every page from 2 on is a well-formed branch of its
// own id, count 0xFFFF, whose overflow claims the rest of the file: the
// elements of all of them together are quadratic in the file size.
func stackedBranchFile(n int) []byte {
	b := make([]byte, n)
	pages := uint64(n / craftPS)
	craftMeta(b, 0, 2, pages, 2)
	craftMeta(b, 1, 2, pages, 1)
	for id := uint64(2); id < pages; id++ {
		craftHeader(b, id, 0x01, 0xFFFF, uint32(pages-id-1))
	}
	return b
}

// badLeafElementsFile: the root is one leaf whose overflow spans the file
// and whose count elements all point past the node: count element
// problems on one reached leaf.
func badLeafElementsFile(n int, count uint16) []byte {
	b := make([]byte, n)
	pages := uint64(n / craftPS)
	craftMeta(b, 0, 2, pages, 2)
	craftMeta(b, 1, 2, pages, 1)
	craftHeader(b, 2, 0x02, count, uint32(pages-3))
	base := 2 * craftPS
	for i := 0; i < int(count); i++ {
		e := b[base+16+16*i:]
		binary.LittleEndian.PutUint32(e[4:], uint32(n)) // pos: past the node
		binary.LittleEndian.PutUint32(e[8:], 17)
		binary.LittleEndian.PutUint32(e[12:], 100)
	}
	return b
}

// emptyKeysLeafFile: the root is one leaf spanning the file whose elements
// are all zero: records with empty keys, each "not above the key before
// it", one key-order problem per 16 bytes.
func emptyKeysLeafFile(n int) []byte {
	b := make([]byte, n)
	pages := uint64(n / craftPS)
	craftMeta(b, 0, 2, pages, 2)
	craftMeta(b, 1, 2, pages, 1)
	craftHeader(b, 2, 0x02, uint16(min(0xFFFF, (n-3*craftPS)/16)), uint32(pages-3))
	return b
}
