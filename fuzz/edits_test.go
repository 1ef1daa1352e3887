package fuzz

import (
	"encoding/binary"
	"testing"
)

// FuzzScanEdits is FuzzScan with structure: it applies a list of edits to
// one of the built seed dbs, so that a few fuzzed bytes make the damage a
// real file gets (a page copied over another, a pointer to another page, a
// zeroed range, a torn write) anywhere in a db of tens of KiB, which
// byte-level mutation of the whole file reaches only slowly.
//
// Each edit is 8 bytes: op u8 | arg u8 | where u16 (page) | val u32.
func FuzzScanEdits(f *testing.F) {
	f.Add(uint8(0), []byte{})
	f.Add(uint8(0), []byte{1, 0, 5, 0, 3, 0, 0, 0})           // copy page 3 over page 5
	f.Add(uint8(2), []byte{2, 0, 4, 0, 0, 0, 0, 0})           // zero page 4 from offset 0
	f.Add(uint8(1), []byte{3, 2, 6, 0, 7, 0, 0, 0})           // element 2 of page 6 -> page 7
	f.Add(uint8(0), []byte{4, 12, 3, 0, 0xff, 0xff, 0, 0})    // overflow of page 3 huge
	f.Add(uint8(3), []byte{0, 1, 2, 0, 40, 0, 0xAB, 0, 5, 0}) // a byte poke and a truncation
	f.Fuzz(func(t *testing.T, which uint8, edits []byte) {
		dbs := builtSeeds(t)
		db := dbs[int(which)%len(dbs)]
		b := applyEdits(db, edits)
		checkScan(t, b)
	})
}

// applyEdits returns a copy of db's bytes with the edits applied.
func applyEdits(db seedDB, edits []byte) []byte {
	b := append([]byte(nil), db.data...)
	ps := db.ps
	for len(edits) >= 8 && len(b) >= ps {
		op, arg := edits[0], int(edits[1])
		pages := len(b) / ps
		pg := int(binary.LittleEndian.Uint16(edits[2:])) % pages
		val := binary.LittleEndian.Uint32(edits[4:])
		edits = edits[8:]
		at := pg * ps
		switch op % 6 {
		case 0: // poke a byte anywhere in the page
			b[at+int(val)%ps] = byte(arg)
		case 1: // copy another page over this one: a stale or misplaced write
			src := int(val) % pages
			copy(b[at:at+ps], b[src*ps:src*ps+ps])
		case 2: // zero the page from an offset: a torn write
			clear(b[at+int(val)%ps : at+ps])
		case 3: // point branch element arg at another page
			off := at + 16 + 16*(arg%((ps-16)/16)) + 8
			binary.LittleEndian.PutUint64(b[off:], uint64(val)%uint64(pages+4))
		case 4: // set a header field: arg picks id (0), flags (8), count (10), overflow (12)
			switch arg % 4 {
			case 0:
				binary.LittleEndian.PutUint64(b[at:], uint64(val))
			case 1:
				binary.LittleEndian.PutUint16(b[at+8:], uint16(val))
			case 2:
				binary.LittleEndian.PutUint16(b[at+10:], uint16(val))
			case 3:
				binary.LittleEndian.PutUint32(b[at+12:], val)
			}
		case 5: // truncate the file
			b = b[:max(1, len(b)-int(val)%len(b))]
		}
	}
	return b
}
