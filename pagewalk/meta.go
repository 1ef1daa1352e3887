package pagewalk

import (
	"encoding/binary"
	"hash/fnv"
)

// Meta is a decoded meta page (pages 0 and 1).
type Meta struct {
	Magic    uint32 `json:"magic"`
	Version  uint32 `json:"version"`
	PageSize uint32 `json:"page_size"`
	Flags    uint32 `json:"flags"`
	Root     uint64 `json:"root"`
	Sequence uint64 `json:"sequence"`
	Freelist uint64 `json:"freelist"`
	Pgid     uint64 `json:"hwm"` // high-water mark: first never-allocated page
	Txid     uint64 `json:"txid"`
	Checksum uint64 `json:"checksum"`
}

// ParseMeta decodes the meta body of a page buffer (the body starts after
// the page header). It checks nothing; see Validate.
func ParseMeta(page []byte) (Meta, bool) {
	if len(page) < PageHeaderSize+metaBodySize {
		return Meta{}, false
	}
	b := page[PageHeaderSize:]
	return Meta{
		Magic:    binary.LittleEndian.Uint32(b[0:4]),
		Version:  binary.LittleEndian.Uint32(b[4:8]),
		PageSize: binary.LittleEndian.Uint32(b[8:12]),
		Flags:    binary.LittleEndian.Uint32(b[12:16]),
		Root:     binary.LittleEndian.Uint64(b[16:24]),
		Sequence: binary.LittleEndian.Uint64(b[24:32]),
		Freelist: binary.LittleEndian.Uint64(b[32:40]),
		Pgid:     binary.LittleEndian.Uint64(b[40:48]),
		Txid:     binary.LittleEndian.Uint64(b[48:56]),
		Checksum: binary.LittleEndian.Uint64(b[56:64]),
	}, true
}

// metaSum is bbolt's checksum: FNV-1a 64 over the meta body before the
// checksum field.
func metaSum(page []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(page[PageHeaderSize : PageHeaderSize+metaChecksummed])
	return h.Sum64()
}

// Validate runs bbolt's own checks (magic, version, checksum) on the meta
// read from page. It returns the first that fails, as bbolt does.
func validateMeta(m Meta, page []byte, pgid uint64) *FormatError {
	off := int64(PageHeaderSize)
	switch {
	case m.Magic != Magic:
		return formatErr(pgid, off, ErrBadMagic, m.Magic, "meta magic")
	case m.Version != Version:
		return formatErr(pgid, off+4, ErrBadVersion, m.Version, "meta version")
	case m.Checksum != metaSum(page):
		return formatErr(pgid, off+56, ErrChecksum, m.Checksum, "meta checksum")
	}
	return nil
}

// plausiblePageSize reports whether ps is a page size bbolt could have
// written: a power of two within [MinPageSize, MaxPageSize].
func plausiblePageSize(ps uint64) bool {
	return ps >= MinPageSize && ps <= MaxPageSize && ps&(ps-1) == 0
}
