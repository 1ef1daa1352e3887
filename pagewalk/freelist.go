package pagewalk

import "encoding/binary"

// FreelistIDs decodes a freelist node: sorted u64 page ids after the header,
// or, when the header count is 0xFFFF, a u64 count first. The ids are
// bounded by the node's bytes, never by the count on disk alone.
func FreelistIDs(n *Node) ([]uint64, *FormatError) {
	if n.Flags != FlagFreelist {
		return nil, formatErr(n.Pgid, n.Offset, ErrPageType, n.Flags, "not a freelist page")
	}
	body := n.Data[min(len(n.Data), PageHeaderSize):]
	count := uint64(n.Count)
	if n.Count == freelistCountOverflow {
		if len(body) < 8 {
			return nil, formatErr(n.Pgid, n.Offset+PageHeaderSize, ErrOutOfBounds, len(body), "freelist count missing")
		}
		count = binary.LittleEndian.Uint64(body[:8])
		body = body[8:]
	}
	if count > uint64(len(body)/8) {
		return nil, formatErr(n.Pgid, n.Offset+PageHeaderSize, ErrOutOfBounds, count,
			"freelist count exceeds its %d bytes", len(body))
	}
	ids := make([]uint64, count)
	for i := range ids {
		ids[i] = binary.LittleEndian.Uint64(body[8*i:])
	}
	return ids, nil
}
