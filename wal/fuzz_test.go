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
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0x80, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			t.Skip("not testing the allocator")
		}
		for _, last := range []bool{true, false} {
			r := &reader{log: &Log{}}
			seg := &Segment{Name: "fuzz.wal", Size: int64(len(data))}
			r.readSegment(seg, data, last)
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
