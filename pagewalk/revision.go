package pagewalk

import (
	"encoding/binary"
	"fmt"
)

// Revision is an etcd key-bucket key: main and sub revision, and whether
// the record is a tombstone.
type Revision struct {
	Main      int64 `json:"main"`
	Sub       int64 `json:"sub"`
	Tombstone bool  `json:"tombstone,omitempty"`
}

func (r Revision) String() string {
	s := fmt.Sprintf("%d_%d", r.Main, r.Sub)
	if r.Tombstone {
		s += "t"
	}
	return s
}

// isRevisionKey reports whether k has the exact shape of an etcd key-bucket
// key, so that mvcc's decoders (which panic on anything else) are safe.
func isRevisionKey(k []byte) bool {
	if len(k) != 17 && len(k) != 18 {
		return false
	}
	if k[8] != '_' || k[0]&0x80 != 0 || k[9]&0x80 != 0 {
		return false
	}
	return len(k) == 17 || k[17] == 't'
}

// IsRevisionKey reports whether k is a well-formed etcd key-bucket key.
func IsRevisionKey(k []byte) bool { return isRevisionKey(k) }

// ParseRevision decodes an etcd key-bucket key.
func ParseRevision(k []byte) (Revision, bool) {
	if !isRevisionKey(k) {
		return Revision{}, false
	}
	// etcd's mvcc.BytesToBucketKey, without its panics (the shape was
	// checked above) and without tying the raw walker to etcd's server
	// module: 8-byte big-endian main, '_', 8-byte big-endian sub, and a
	// trailing 't' for a tombstone (docs/format.md).
	return Revision{Main: int64(binary.BigEndian.Uint64(k[0:8])), Sub: int64(binary.BigEndian.Uint64(k[9:17])), Tombstone: len(k) == 18}, true
}

// RevisionKey encodes r as etcd does.
func RevisionKey(r Revision) []byte {
	b := make([]byte, 17, 18)
	binary.BigEndian.PutUint64(b, uint64(r.Main))
	b[8] = '_'
	binary.BigEndian.PutUint64(b[9:], uint64(r.Sub))
	if r.Tombstone {
		b = append(b, 't')
	}
	return b
}

// CompareRevisions orders a and b as their revision keys' bytes compare
// (RevisionKey: main, then sub, then a put before a tombstone); -1, 0, 1.
// Main and sub of a decoded key are never negative, so the numbers order
// as the big-endian bytes do.
func CompareRevisions(a, b Revision) int {
	switch {
	case a.Main != b.Main:
		return cmpInt(a.Main, b.Main)
	case a.Sub != b.Sub:
		return cmpInt(a.Sub, b.Sub)
	case a.Tombstone == b.Tombstone:
		return 0
	case b.Tombstone:
		return -1
	}
	return 1
}

func cmpInt(a, b int64) int {
	if a < b {
		return -1
	}
	return 1
}
