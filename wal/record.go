package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"google.golang.org/protobuf/proto"

	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
)

// RecordType is a walpb.Record type. The values are etcd's
// (server/storage/wal: MetadataType ... SnapshotType).
type RecordType int64

// Record types, as etcd writes them.
const (
	RecordMetadata = RecordType(etcdwal.MetadataType)
	RecordEntry    = RecordType(etcdwal.EntryType)
	RecordState    = RecordType(etcdwal.StateType)
	RecordCRC      = RecordType(etcdwal.CrcType)
	RecordSnapshot = RecordType(etcdwal.SnapshotType)
)

func (t RecordType) String() string {
	switch t {
	case RecordMetadata:
		return "metadata"
	case RecordEntry:
		return "entry"
	case RecordState:
		return "state"
	case RecordCRC:
		return "crc"
	case RecordSnapshot:
		return "snapshot"
	}
	return fmt.Sprintf("unknown<%d>", int64(t))
}

const (
	// frameHeader is the u64 length field before every record.
	frameHeader = 8
	// sectorSize is the unit etcd's torn-write detection works in
	// (server/storage/wal/decoder.go minSectorSize).
	sectorSize = 512
)

// crcTable is etcd's: CRC32-Castagnoli (server/storage/wal/wal.go).
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// frame is one decoded length-prefixed record at a given offset.
type frame struct {
	off     int64 // offset of the length field
	recLen  int64 // bytes of the marshalled walpb.Record
	padLen  int64 // zero padding after it
	rec     *walpb.Record
	torn    bool // some 512-byte sector of the record is all zeros
	zero    bool // length field is 0: end of records
	pastEOF bool // length runs past the end of the buffer
}

// end is the offset just after the frame (and its padding).
func (f *frame) end() int64 { return f.off + frameHeader + f.recLen + f.padLen }

// parseFrame decodes the frame at off in buf without trusting anything in it.
// It returns a frame and nil when a walpb.Record of a known type decoded, or
// the frame as far as it got plus the Cause that stopped it. Every length is
// checked against len(buf) before any slice or allocation, so hostile bytes
// cost no more memory than the segment itself.
func parseFrame(buf []byte, off int64) (*frame, Cause) {
	f := &frame{off: off}
	size := int64(len(buf))
	if off < 0 || off > size {
		f.pastEOF = true
		return f, CauseLengthPastEOF
	}
	if size-off < frameHeader {
		// Fewer than 8 bytes left: zeros are the end of a segment that was
		// truncated at a record boundary, anything else a torn length field.
		if allZero(buf[off:]) {
			f.zero = true
			return f, ""
		}
		f.pastEOF = true
		return f, CauseLengthPastEOF
	}
	lenField := binary.LittleEndian.Uint64(buf[off:])
	if lenField == 0 {
		f.zero = true
		return f, ""
	}
	// etcd's encodeFrameSize: the low 56 bits are the record size; when the
	// record is not a multiple of 8, the top byte is 0x80|padding.
	top := byte(lenField >> 56)
	f.recLen = int64(lenField & (1<<56 - 1))
	switch {
	case top == 0:
		if f.recLen%8 != 0 {
			return f, CauseBadLength
		}
	case top&0xF8 == 0x80 && top&0x07 != 0:
		f.padLen = int64(top & 0x07)
		if (f.recLen+f.padLen)%8 != 0 {
			return f, CauseBadLength
		}
	default:
		return f, CauseBadLength
	}
	if f.recLen == 0 {
		return f, CauseBadLength
	}
	if f.recLen+f.padLen > size-off-frameHeader {
		f.pastEOF = true
		return f, CauseLengthPastEOF
	}
	data := buf[off+frameHeader : off+frameHeader+f.recLen+f.padLen]
	f.torn = hasZeroSector(data, off+frameHeader)
	rec := &walpb.Record{}
	if err := proto.Unmarshal(data[:f.recLen], rec); err != nil {
		return f, CauseUndecodable
	}
	f.rec = rec
	if rec.Type == nil {
		return f, CauseUndecodable
	}
	switch RecordType(rec.GetType()) {
	case RecordMetadata, RecordEntry, RecordState, RecordCRC, RecordSnapshot:
	default:
		return f, CauseUnknownType
	}
	return f, ""
}

// chainCRC is the rolling CRC a record of this type carries when the
// previous record carried prev. CRC records carry the chain value itself.
func chainCRC(prev uint32, rec *walpb.Record) uint32 {
	if RecordType(rec.GetType()) == RecordCRC {
		return prev
	}
	return crc32.Update(prev, crcTable, rec.GetData())
}

// hasZeroSector reports whether any part of data that falls in its own
// 512-byte disk sector is entirely zero: the mark of a torn write, as in etcd's
// decoder.isTornEntry. fileOff is data's offset in the file.
func hasZeroSector(data []byte, fileOff int64) bool {
	for cur := 0; cur < len(data); {
		n := int(sectorSize - fileOff%sectorSize)
		if n > len(data)-cur {
			n = len(data) - cur
		}
		if allZero(data[cur : cur+n]) {
			return true
		}
		cur += n
		fileOff += int64(n)
	}
	return false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// firstNonZero returns the offset of the first non-zero byte at or after off,
// or -1.
func firstNonZero(buf []byte, off int64) int64 {
	for i := off; i < int64(len(buf)); i++ {
		if buf[i] != 0 {
			return i
		}
	}
	return -1
}
