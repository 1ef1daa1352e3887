package pagewalk

import (
	"errors"
	"fmt"
)

// Sentinel errors, reachable through FormatError.Unwrap so callers can use
// errors.Is. They name classes of failure; the FormatError says where.
var (
	// Meta page checks.
	ErrBadMagic   = errors.New("bad magic")
	ErrBadVersion = errors.New("unsupported version")
	ErrChecksum   = errors.New("checksum mismatch")
	ErrPageSize   = errors.New("implausible page size")

	// Page checks.
	ErrPageID      = errors.New("page id mismatch")
	ErrPageType    = errors.New("invalid page type")
	ErrOutOfBounds = errors.New("out of bounds")
	ErrPastEOF     = errors.New("past end of file")

	// File-level failures: the input cannot be read as a bbolt file at all.
	ErrNotBolt = errors.New("no bbolt structure found (no valid meta page and no well-formed page)")
)

// FormatError reports bytes on disk that break the bbolt format. It carries
// the page and the byte offset of the offending record and the bad value.
type FormatError struct {
	Page   uint64 // the page that holds the bad bytes
	Offset int64  // byte offset in the file
	Msg    string
	Val    any   // the offending value, or nil
	Err    error // one of the sentinels above, or nil
}

func (e *FormatError) Error() string {
	s := fmt.Sprintf("page %d (byte %#x): %s", e.Page, e.Offset, e.Msg)
	if e.Val != nil {
		s += fmt.Sprintf(" '%v'", e.Val)
	}
	return s
}

func (e *FormatError) Unwrap() error { return e.Err }

func formatErr(page uint64, off int64, sentinel error, val any, format string, args ...any) *FormatError {
	return &FormatError{Page: page, Offset: off, Msg: fmt.Sprintf(format, args...), Val: val, Err: sentinel}
}
