package wal

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.etcd.io/etcd/server/v3/embed"
	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
)

var (
	multiOnce sync.Once
	multiDir  string
	multiErr  error
)

// multiSegmentWAL builds, once per test binary, a data dir whose WAL has
// several segments (64 KiB each), and returns a fresh copy of it.
func multiSegmentWAL(t *testing.T) string {
	t.Helper()
	multiOnce.Do(func() {
		dir, err := os.MkdirTemp("", "boltfix-wal-multi")
		if err != nil {
			multiErr = err
			return
		}
		old := etcdwal.SegmentSizeBytes
		etcdwal.SegmentSizeBytes = 64 * 1024
		le := startEtcd(t, dir, func(c *embed.Config) { c.MaxWalFiles = 0 })
		le.workload(1200)
		le.stop()
		etcdwal.SegmentSizeBytes = old
		multiDir = dir
	})
	if multiErr != nil {
		t.Fatal(multiErr)
	}
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(multiDir)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestMain(m *testing.M) {
	code := m.Run()
	if multiDir != "" {
		os.RemoveAll(multiDir)
	}
	os.Exit(code)
}

func mustRead(t *testing.T, dir string) *Log {
	t.Helper()
	l, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// pick returns an entry in the middle of a segment that is not the last.
func pick(t *testing.T, l *Log) (*Entry, int) {
	t.Helper()
	if len(l.Segments) < 3 {
		t.Fatalf("want several segments, got %d", len(l.Segments))
	}
	seg := l.Segments[1].Name
	var in []int
	for i, e := range l.Entries {
		if e.Segment == seg {
			in = append(in, i)
		}
	}
	i := in[len(in)/2]
	return l.Entries[i], i
}

func overwrite(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestReadCleanMultiSegment(t *testing.T) {
	dir := multiSegmentWAL(t)
	l := mustRead(t, dir)
	if !l.Clean() {
		t.Fatalf("stops: %v", l.Stops())
	}
	if len(l.Segments) < 3 {
		t.Fatalf("%d segments", len(l.Segments))
	}
	if l.FirstIndex() != 1 || l.LastIndex() != uint64(len(l.Entries)) || len(l.Gaps) != 0 {
		t.Fatalf("entries %d first %d last %d gaps %v", len(l.Entries), l.FirstIndex(), l.LastIndex(), l.Gaps)
	}
	if l.CommitIndex() != l.LastIndex() {
		t.Errorf("commit %d, last index %d", l.CommitIndex(), l.LastIndex())
	}
	for i, s := range l.Segments[1:] {
		if s.FirstIndex != s.NameIndex {
			t.Errorf("segment %s first entry %d, name says %d", s.Name, s.FirstIndex, s.NameIndex)
		}
		if s.Records.CRC != 1 || s.Records.Metadata != 1 {
			t.Errorf("segment %d records %+v", i+1, s.Records)
		}
	}
}

// A 3-byte overwrite inside a record's data: the record fails its CRC, the
// stop names its segment and offset, and every later record is kept.
func TestReadOverwriteData(t *testing.T) {
	dir := multiSegmentWAL(t)
	orig := mustRead(t, dir)
	victim, vi := pick(t, orig)
	path := filepath.Join(orig.Dir, victim.Segment)
	overwrite(t, path, victim.Offset+frameHeader+12, []byte{0xde, 0xad, 0xbe})

	l := mustRead(t, dir)
	stops := l.Stops()
	if len(stops) != 1 {
		t.Fatalf("stops: %v", stops)
	}
	st := stops[0]
	if st.Segment != victim.Segment || st.Offset != victim.Offset {
		t.Fatalf("stop at %s:%d, damage at %s:%d", st.Segment, st.Offset, victim.Segment, victim.Offset)
	}
	if !errors.Is(st, ErrCRCMismatch) && !errors.Is(st, ErrUndecodable) {
		t.Fatalf("cause %s", st.Cause)
	}
	if len(l.Entries) != len(orig.Entries)-1 {
		t.Fatalf("%d entries, want %d", len(l.Entries), len(orig.Entries)-1)
	}
	if len(l.Gaps) != 1 || l.Gaps[0].From != victim.GetIndex() || l.Gaps[0].To != victim.GetIndex() {
		t.Fatalf("gaps %v, want the victim %d", l.Gaps, victim.GetIndex())
	}
	after := l.Entries[vi]
	if after.GetIndex() != victim.GetIndex()+1 || after.Flag == FlagNone {
		t.Fatalf("entry after damage: %d flag %q", after.GetIndex(), after.Flag)
	}
	if l.Entries[vi-1].Flag != FlagNone {
		t.Fatalf("entry before damage flagged")
	}
	if last := l.Entries[len(l.Entries)-1]; last.GetIndex() != orig.LastIndex() || last.Flag != FlagAfterDamage {
		t.Fatalf("last entry %d flag %q", last.GetIndex(), last.Flag)
	}
	t.Logf("%v", st)
}

// A 3-byte overwrite of a length field: the frame is lost, the reader
// resynchronises on the next record.
func TestReadOverwriteLength(t *testing.T) {
	dir := multiSegmentWAL(t)
	orig := mustRead(t, dir)
	victim, vi := pick(t, orig)
	path := filepath.Join(orig.Dir, victim.Segment)
	overwrite(t, path, victim.Offset+4, []byte{0x11, 0x22, 0x33})

	l := mustRead(t, dir)
	stops := l.Stops()
	if len(stops) != 1 {
		t.Fatalf("stops: %v", stops)
	}
	st := stops[0]
	if st.Segment != victim.Segment || st.Offset != victim.Offset || st.ResumedAt <= st.Offset {
		t.Fatalf("stop %v, damage at %s:%d", st, victim.Segment, victim.Offset)
	}
	t.Logf("%v", st)
	// The victim's entry record is gone; its HardState record follows, so the
	// reader resyncs there and keeps everything after it.
	if len(l.Entries) != len(orig.Entries)-1 {
		t.Fatalf("%d entries, want %d", len(l.Entries), len(orig.Entries)-1)
	}
	if e := l.Entries[vi]; e.GetIndex() != victim.GetIndex()+1 || e.Flag == FlagNone {
		t.Fatalf("entry after damage %d flag %q", e.GetIndex(), e.Flag)
	}
	if got := len(l.ReplayEntries(0, false)); got != vi {
		t.Errorf("replayable without flagged: %d, want %d", got, vi)
	}
}

// A zeroed length field looks like the end of the segment to etcd's reader,
// which then skips to the next file. boltfix notices the data behind it.
func TestReadZeroedLength(t *testing.T) {
	dir := multiSegmentWAL(t)
	orig := mustRead(t, dir)
	victim, _ := pick(t, orig)
	overwrite(t, filepath.Join(orig.Dir, victim.Segment), victim.Offset, make([]byte, 8))
	l := mustRead(t, dir)
	stops := l.Stops()
	if len(stops) != 1 || stops[0].Cause != CauseDataAfterEnd || stops[0].Offset != victim.Offset || stops[0].ResumedAt < 0 {
		t.Fatalf("stops: %v", stops)
	}
	if len(l.Entries) != len(orig.Entries)-1 {
		t.Fatalf("%d entries, want %d", len(l.Entries), len(orig.Entries)-1)
	}
}

// A last segment cut inside its final record is a torn tail, and nothing
// else.
func TestReadTornTail(t *testing.T) {
	dir := multiSegmentWAL(t)
	orig := mustRead(t, dir)
	lastSeg := orig.Segments[len(orig.Segments)-1]
	lastEnt := orig.Entries[len(orig.Entries)-1]
	if lastEnt.Segment != lastSeg.Name {
		t.Fatal("last entry not in last segment")
	}
	// Cut inside the last entry record (a HardState record may follow it).
	if err := os.Truncate(filepath.Join(orig.Dir, lastSeg.Name), lastEnt.Offset+frameHeader+10); err != nil {
		t.Fatal(err)
	}
	l := mustRead(t, dir)
	stops := l.Stops()
	if len(stops) != 1 || stops[0].Cause != CauseTornTail || stops[0].Segment != lastSeg.Name || stops[0].Offset != lastEnt.Offset {
		t.Fatalf("stops: %v", stops)
	}
	if !errors.Is(stops[0], ErrTornTail) {
		t.Fatal("not ErrTornTail")
	}
	if l.LastIndex() != lastEnt.GetIndex()-1 {
		t.Fatalf("last index %d, want %d", l.LastIndex(), lastEnt.GetIndex()-1)
	}
}

// The same cut in a segment that is not the last is damage, not a torn tail.
func TestReadTruncatedMiddleSegment(t *testing.T) {
	dir := multiSegmentWAL(t)
	orig := mustRead(t, dir)
	victim, _ := pick(t, orig)
	if err := os.Truncate(filepath.Join(orig.Dir, victim.Segment), victim.Offset+frameHeader+10); err != nil {
		t.Fatal(err)
	}
	l := mustRead(t, dir)
	stops := l.Stops()
	if len(stops) < 1 || stops[0].Cause != CauseLengthPastEOF || stops[0].Segment != victim.Segment {
		t.Fatalf("stops: %v", stops)
	}
	if l.LastIndex() != orig.LastIndex() || len(l.Gaps) != 1 {
		t.Fatalf("last %d gaps %v", l.LastIndex(), l.Gaps)
	}
}

func TestReadMissingSegment(t *testing.T) {
	dir := multiSegmentWAL(t)
	orig := mustRead(t, dir)
	gone := orig.Segments[1]
	if err := os.Remove(filepath.Join(orig.Dir, gone.Name)); err != nil {
		t.Fatal(err)
	}
	l := mustRead(t, dir)
	stops := l.Stops()
	if len(stops) != 1 || stops[0].Cause != CauseMissingSegment || stops[0].Segment != orig.Segments[2].Name {
		t.Fatalf("stops: %v", stops)
	}
	if len(l.Gaps) != 1 || l.Gaps[0].From != gone.NameIndex || l.Gaps[0].To != orig.Segments[2].NameIndex-1 {
		t.Fatalf("gaps %v", l.Gaps)
	}
	m := l.Missing(0)
	if len(m) != 1 || m[0] != l.Gaps[0] {
		t.Fatalf("missing %v", m)
	}
}
