package fuzz

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"testing"

	"github.com/boltfix/boltfix/pagewalk"
)

// FuzzMeta opens the bytes as a file (typically the two meta pages, or
// their start) and checks the page size and both meta verdicts against an
// independent implementation of bbolt's meta checks.
func FuzzMeta(f *testing.F) {
	for _, db := range builtSeeds(f) {
		f.Add(append([]byte(nil), db.data[:2*db.ps]...))
		f.Add(append([]byte(nil), db.data[:db.ps+100]...))
		// Meta 0 torn: the page size must come from meta 1.
		b := append([]byte(nil), db.data[:2*db.ps]...)
		clear(b[16:80])
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxInput {
			t.Skip()
		}
		stop := watchdog("NewFile", len(b))
		defer stop()
		var file *pagewalk.File
		var err error
		checkAlloc(t, b, allocBudget(len(b)), "NewFile", func() {
			file, err = pagewalk.NewFile(bytes.NewReader(b), int64(len(b)))
		})
		if err != nil {
			if !errors.Is(err, pagewalk.ErrNotBolt) {
				t.Fatalf("NewFile on a bytes.Reader: unexpected error %v", err)
			}
			return
		}
		checkFile(t, file, b)
	})
}

// metaValid is bbolt's meta check, written again: magic, version, FNV-1a
// checksum over the body before the checksum field.
func metaValid(page []byte) bool {
	if len(page) < 80 {
		return false
	}
	body := page[16:80]
	if binary.LittleEndian.Uint32(body) != pagewalk.Magic || binary.LittleEndian.Uint32(body[4:]) != pagewalk.Version {
		return false
	}
	h := fnv.New64a()
	h.Write(body[:56])
	return h.Sum64() == binary.LittleEndian.Uint64(body[56:])
}

// checkFile checks what NewFile decided about the page size and the metas.
func checkFile(t *testing.T, file *pagewalk.File, b []byte) {
	t.Helper()
	ps := file.PageSize
	if ps < pagewalk.MinPageSize || ps > pagewalk.MaxPageSize || ps&(ps-1) != 0 {
		t.Fatalf("implausible page size %d (%s)", ps, file.PageSizeSource)
	}
	if file.Size() != int64(len(b)) || file.PageCount() != uint64((len(b)+ps-1)/ps) {
		t.Fatalf("size %d pages %d for %d bytes at page size %d", file.Size(), file.PageCount(), len(b), ps)
	}
	for i, mi := range file.Metas {
		if mi.Page != uint64(i) {
			t.Fatalf("meta %d says page %d", i, mi.Page)
		}
		off := i * ps
		readable := off+80 <= len(b)
		if mi.Readable != readable {
			t.Fatalf("meta %d readable=%v, file of %d bytes at page size %d", i, mi.Readable, len(b), ps)
		}
		if !readable {
			if mi.Valid || mi.Usable {
				t.Fatalf("unreadable meta %d judged valid", i)
			}
			continue
		}
		page := b[off:]
		if want := metaValid(page); mi.Valid != want {
			t.Fatalf("meta %d valid=%v, independent check says %v", i, mi.Valid, want)
		}
		m, _ := pagewalk.ParseMeta(page)
		if mi.Meta != m {
			t.Fatalf("meta %d decoded as %+v, ParseMeta says %+v", i, mi.Meta, m)
		}
		if mi.Valid != (mi.Err == nil) {
			t.Fatalf("meta %d valid=%v err=%v", i, mi.Valid, mi.Err)
		}
		if mi.Usable {
			flags := binary.LittleEndian.Uint16(page[8:])
			if !mi.Valid || flags != pagewalk.FlagMeta || int(m.PageSize) != ps || m.Pgid < 3 || m.Root < 2 || m.Root >= m.Pgid ||
				(m.Freelist != pagewalk.NoFreelist && (m.Freelist < 2 || m.Freelist >= m.Pgid)) ||
				int64(m.Root)*int64(ps) >= int64(len(b)) {
				t.Fatalf("meta %d judged usable: %+v (flags %#x, file page size %d, %d bytes)", i, m, flags, ps, len(b))
			}
		} else if mi.Valid && len(mi.Problems) == 0 {
			t.Fatalf("meta %d valid, unusable, and no problem named", i)
		}
	}
	// Meta 0 decides the page size whenever it is valid and plausible.
	if m0 := file.Metas[0]; m0.Valid && m0.Meta.PageSize >= pagewalk.MinPageSize && m0.Meta.PageSize <= pagewalk.MaxPageSize &&
		m0.Meta.PageSize&(m0.Meta.PageSize-1) == 0 && ps != int(m0.Meta.PageSize) {
		t.Fatalf("valid meta 0 says page size %d, file uses %d (%s)", m0.Meta.PageSize, ps, file.PageSizeSource)
	}
}
