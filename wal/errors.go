package wal

import (
	"errors"
	"fmt"
)

// Cause names one class of WAL damage. The string values are part of the JSON
// schema (see the package documentation) and never change meaning.
type Cause string

// Causes of a Stop, grouped by where the reader noticed them.
const (
	// CauseTornTail: the last record of the last segment was only partly
	// written (the file ends inside it, or one of its 512-byte sectors is
	// all zeros) and nothing valid follows. etcd never acknowledged it.
	CauseTornTail Cause = "torn-tail"
	// CauseLengthPastEOF: a frame length points past the end of the file in a
	// place where a torn write cannot explain it.
	CauseLengthPastEOF Cause = "length-past-eof"
	// CauseBadLength: the frame length field has bits set that etcd never
	// writes, or a zero-length record.
	CauseBadLength Cause = "bad-length"
	// CauseUndecodable: the frame is in bounds but its bytes are not a
	// walpb.Record.
	CauseUndecodable Cause = "undecodable-record"
	// CauseUnknownType: a walpb.Record with a type outside 1..5.
	CauseUnknownType Cause = "unknown-record-type"
	// CauseCRCMismatch: the record decodes but its CRC does not match the
	// rolling CRC32-Castagnoli chain: its data was altered.
	CauseCRCMismatch Cause = "crc-mismatch"
	// CauseBadPayload: the record frame and CRC are fine but its data does
	// not decode as the entry, HardState, snapshot or metadata it claims to be.
	CauseBadPayload Cause = "bad-payload"
	// CauseDataAfterEnd: non-zero bytes follow the zero frame that ends the
	// records of a segment. etcd's reader stops at the zero frame and never
	// looks further; a zeroed length field mid-segment looks exactly like this.
	CauseDataAfterEnd Cause = "data-after-end"
	// CauseCRCChain: a segment's opening CRC record does not carry the CRC the
	// previous segment ended with: records are missing between them.
	CauseCRCChain Cause = "crc-chain-break"
	// CauseMissingSegment: segment sequence numbers are not consecutive.
	CauseMissingSegment Cause = "missing-segment"
	// CauseMetadataConflict: a metadata record differs from the first one.
	CauseMetadataConflict Cause = "metadata-conflict"
	// CauseIO: the segment could not be read at all.
	CauseIO Cause = "io-error"
)

// Sentinels, one per Cause, reachable from a *Stop with errors.Is.
var (
	ErrTornTail         = errors.New("wal: torn tail")
	ErrLengthPastEOF    = errors.New("wal: record length past end of file")
	ErrBadLength        = errors.New("wal: bad record length field")
	ErrUndecodable      = errors.New("wal: undecodable record")
	ErrUnknownType      = errors.New("wal: unknown record type")
	ErrCRCMismatch      = errors.New("wal: crc mismatch")
	ErrBadPayload       = errors.New("wal: record payload does not decode")
	ErrDataAfterEnd     = errors.New("wal: data after end of records")
	ErrCRCChain         = errors.New("wal: crc chain broken between segments")
	ErrMissingSegment   = errors.New("wal: missing segment")
	ErrMetadataConflict = errors.New("wal: conflicting metadata")
	ErrIO               = errors.New("wal: i/o error")

	// ErrNoWAL means the directory holds no WAL segment at all.
	ErrNoWAL = errors.New("wal: no segment files")
)

var causeErr = map[Cause]error{
	CauseTornTail:         ErrTornTail,
	CauseLengthPastEOF:    ErrLengthPastEOF,
	CauseBadLength:        ErrBadLength,
	CauseUndecodable:      ErrUndecodable,
	CauseUnknownType:      ErrUnknownType,
	CauseCRCMismatch:      ErrCRCMismatch,
	CauseBadPayload:       ErrBadPayload,
	CauseDataAfterEnd:     ErrDataAfterEnd,
	CauseCRCChain:         ErrCRCChain,
	CauseMissingSegment:   ErrMissingSegment,
	CauseMetadataConflict: ErrMetadataConflict,
	CauseIO:               ErrIO,
}

// Err returns the sentinel error for c.
func (c Cause) Err() error {
	if err, ok := causeErr[c]; ok {
		return err
	}
	return fmt.Errorf("wal: %s", string(c))
}

// A Stop is one place where sequential reading of a segment could not go on:
// the segment file, the byte offset of the frame that failed, and why. The
// reader never ends silently: every Stop is listed in Log.Stops, and when the
// reader found its way back to valid records after the damage, ResumedAt says
// where, so the records after the damage are kept (and flagged).
type Stop struct {
	Segment string `json:"segment"` // file name, e.g. 0000000000000002-0000000000004e21.wal
	Offset  int64  `json:"offset"`  // byte offset of the failing frame in Segment
	Cause   Cause  `json:"cause"`
	Detail  string `json:"detail,omitempty"`
	// ResumedAt is the offset of the first record read after the damage, or
	// -1 if nothing valid was found after it in this segment.
	ResumedAt int64 `json:"resumed_at"`
	// Skipped is the number of bytes between Offset and ResumedAt (or the end
	// of the segment's data) that were not read as records.
	Skipped int64 `json:"skipped_bytes"`
}

func (s *Stop) Error() string {
	msg := fmt.Sprintf("wal segment %s (byte 0x%x): %s", s.Segment, s.Offset, s.Cause)
	if s.Detail != "" {
		msg += ": " + s.Detail
	}
	if s.ResumedAt >= 0 {
		msg += fmt.Sprintf(" (resumed at byte 0x%x, %d bytes skipped)", s.ResumedAt, s.Skipped)
	}
	return msg
}

// Unwrap returns the sentinel of the Stop's Cause.
func (s *Stop) Unwrap() error { return s.Cause.Err() }
