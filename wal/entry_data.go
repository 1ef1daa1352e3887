package wal

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"go.etcd.io/raft/v3/raftpb"
)

// Entry is one raft entry the reader found: its index, term and type, and
// where its record lies, but not its data. A busy member's WAL is five
// 64 MB segments of entry data; a Log that held it would hold all of it
// for as long as a repair runs. Each consumer loads an entry's data when
// it gets to it (Load, DecodeEntry) and drops it after: replay, the audit,
// dump and the membership all walk the entries in order, one at a time.
type Entry struct {
	Index uint64
	Term  uint64
	Type  raftpb.EntryType
	// Size is the length of the entry's data (raftpb.Entry.Data).
	Size    int
	Segment string
	Offset  int64
	Flag    Flag

	seg    *segFile      // where the record is; nil for an entry held in memory
	recLen int64         // bytes of the marshalled walpb.Record after the frame's length field
	sum    uint32        // CRC32-Castagnoli of the record's data (the marshalled raftpb.Entry) as first read
	mem    *raftpb.Entry // NewEntry's entry, with its data
}

// NewEntry wraps an entry held in memory (tests, and logs not read from
// disk): Load returns e itself.
func NewEntry(e *raftpb.Entry) *Entry {
	return &Entry{Index: e.GetIndex(), Term: e.GetTerm(), Type: e.GetType(), Size: len(e.GetData()), mem: e}
}

// GetIndex, GetTerm and GetType read as raftpb.Entry's getters do.
func (e *Entry) GetIndex() uint64          { return e.Index }
func (e *Entry) GetTerm() uint64           { return e.Term }
func (e *Entry) GetType() raftpb.EntryType { return e.Type }

// segFile is a segment the Log keeps open after Read, so that an entry's
// data can be read again later from the same file: a running etcd that
// purges old segments unlinks them, and the open descriptor still reads
// the bytes Read saw.
type segFile struct {
	name string
	f    *os.File
	win  *window // the Log's, shared by its segments
}

// window is the part of a segment last read for Load. Consumers walk the
// entries in order, so one read of a window serves the many records in
// it (one pread per record was a tenth of a replay's time); one window per
// Log bounds what it holds however many segments there are.
type window struct {
	mu  sync.Mutex
	seg *segFile
	off int64
	buf []byte
}

// windowSize is what one read brings in: about 500 entries of a
// Kubernetes-shaped WAL.
const windowSize = 1 << 20

// bytes returns n bytes of s at off, from the window (read again when it
// does not hold them). The caller holds w.mu and is done with the bytes
// before it lets go of it.
func (w *window) bytes(s *segFile, off, n int64) ([]byte, error) {
	if w.seg == s && off >= w.off && off+n <= w.off+int64(len(w.buf)) {
		return w.buf[off-w.off : off-w.off+n], nil
	}
	size := max(n, windowSize)
	if int64(cap(w.buf)) < size {
		w.buf = make([]byte, size)
	}
	w.seg, w.buf = nil, w.buf[:size]
	got, err := s.f.ReadAt(w.buf, off)
	if got < int(n) {
		if err == nil || errors.Is(err, io.EOF) {
			err = ErrEntryChanged // the segment is shorter than when it was read
		}
		return nil, err
	}
	w.seg, w.off, w.buf = s, off, w.buf[:got]
	return w.buf[:n], nil
}

// ErrEntryChanged: an entry's record no longer holds the bytes Read found
// there (the segment was overwritten or truncated since).
var ErrEntryChanged = errors.New("wal: entry record changed since the WAL was read")

// LoadError says which entry's data could not be read again.
type LoadError struct {
	Index   uint64
	Segment string
	Offset  int64
	Err     error
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("wal: entry %d (segment %s, byte 0x%x): %v", e.Index, e.Segment, e.Offset, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

// Load reads the entry's record again from its segment and returns the
// entry with its data. The record must be the one Read found (same
// checksum), else the error is a *LoadError wrapping ErrEntryChanged. The
// entry returned is the caller's: nothing else keeps it.
func (e *Entry) Load() (*raftpb.Entry, error) {
	if e.mem != nil {
		return e.mem, nil
	}
	if e.seg == nil {
		return nil, &LoadError{Index: e.Index, Segment: e.Segment, Offset: e.Offset, Err: errors.New("no segment to read from")}
	}
	fail := func(err error) (*raftpb.Entry, error) {
		return nil, &LoadError{Index: e.Index, Segment: e.Segment, Offset: e.Offset, Err: err}
	}
	w := e.seg.win
	w.mu.Lock()
	defer w.mu.Unlock()
	buf, err := w.bytes(e.seg, e.Offset+frameHeader, e.recLen)
	if err != nil {
		return fail(err)
	}
	data, ok := entryRecordData(buf)
	if !ok || crc32.Checksum(data, crcTable) != e.sum {
		return fail(ErrEntryChanged)
	}
	// Unmarshal copies: the entry does not keep the window.
	re := &raftpb.Entry{}
	if err := proto.Unmarshal(data, re); err != nil || re.GetIndex() != e.Index || re.GetTerm() != e.Term {
		return fail(ErrEntryChanged)
	}
	return re, nil
}

// entryRecordData returns the data of the marshalled walpb.Record in b
// (field 3) without copying it, and whether the record is an entry record
// (field 1). Read decoded the same bytes with proto.Unmarshal; this is the
// same wire format walked by hand so that loading an entry does not copy
// its data twice.
func entryRecordData(b []byte) ([]byte, bool) {
	var typ uint64
	var data []byte
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		switch {
		case num == 1 && wt == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, false
			}
			typ, b = v, b[n:]
		case num == 3 && wt == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false
			}
			data, b = v, b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, wt, b)
			if n < 0 {
				return nil, false
			}
			b = b[n:]
		}
	}
	return data, RecordType(typ) == RecordEntry
}

// KindUnreadable: the entry's data could not be read again (DecodeEntry's
// Err is then a *LoadError).
const KindUnreadable = "unreadable"

// DecodeEntry loads e's data and decodes it (Decode). An entry whose data
// cannot be read again decodes as KindUnreadable with the *LoadError: a
// consumer that treats undecodable entries as damage treats it the same.
func DecodeEntry(e *Entry) DecodedEntry {
	re, err := e.Load()
	if err != nil {
		return DecodedEntry{Kind: KindUnreadable, Err: err}
	}
	return Decode(re)
}

// Close closes the segment files the Log keeps open for Load. Entries
// read from them cannot be loaded after.
func (l *Log) Close() error {
	var errs []error
	for _, s := range l.files {
		errs = append(errs, s.f.Close())
	}
	l.files = nil
	return errors.Join(errs...)
}
