package wal

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadSegment feeds arbitrary bytes to the reader as the only segment
// (and as a middle one): nothing may panic, every stop must lie inside the
// file, and the reader must not report more records than bytes justify.
func FuzzReadSegment(f *testing.F) {
	if seeds, err := filepath.Glob(filepath.Join("testdata", "*.wal")); err == nil {
		for _, s := range seeds {
			if b, err := os.ReadFile(s); err == nil && len(b) < 1<<20 {
				f.Add(b)
			}
		}
	}
	// A segment etcd's WAL writer wrote, with entries (without its
	// preallocated zeros): the seed that takes Load's path.
	if segs, err := filepath.Glob(filepath.Join(putWAL(f, 20, 64, 10), "*.wal")); err == nil && len(segs) == 1 {
		if b, err := os.ReadFile(segs[0]); err == nil {
			end := len(b)
			for end > 0 && b[end-1] == 0 {
				end--
			}
			f.Add(b[:min(len(b), (end+7)&^7)])
		}
	}
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0x80, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			t.Skip("not testing the allocator")
		}
		// The hand-walked record parser Load uses must not panic either,
		// and what it returns lies inside the bytes it was given.
		if d, _ := entryRecordData(data); len(d) > len(data) {
			t.Fatalf("entryRecordData returned %d bytes from %d", len(d), len(data))
		}
		// Entries are read again from the segment file (Load): with the
		// file unchanged, every entry the reader kept loads, as it was read.
		path := filepath.Join(t.TempDir(), "fuzz.wal")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		file, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		for _, last := range []bool{true, false} {
			r := &reader{log: &Log{}, seg: &segFile{name: "fuzz.wal", f: file, win: &window{}}}
			seg := &Segment{Name: "fuzz.wal", Size: int64(len(data))}
			r.readSegment(seg, data, last)
			for _, e := range r.log.Entries {
				re, err := e.Load()
				if err != nil {
					t.Fatalf("entry %d read from an unchanged segment does not load: %v", e.Index, err)
				}
				if re.GetIndex() != e.Index || re.GetTerm() != e.Term || len(re.GetData()) != e.Size {
					t.Fatalf("entry %d loads as index %d term %d, %d bytes", e.Index, re.GetIndex(), re.GetTerm(), len(re.GetData()))
				}
			}
			for _, st := range seg.Stops {
				if st.Offset < 0 || st.Offset > int64(len(data)) || st.ResumedAt > int64(len(data)) {
					t.Fatalf("stop out of file: %v", st)
				}
			}
			n := seg.Records.Metadata + seg.Records.Entry + seg.Records.State + seg.Records.CRC + seg.Records.Snapshot
			if n*16 > len(data) {
				t.Fatalf("%d records from %d bytes", n, len(data))
			}
			r.log.Report(true)
		}
	})
}
