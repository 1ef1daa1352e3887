package pagewalk

import (
	"fmt"
	"io"
	"os"
	"time"
)

// File is a bbolt file opened for raw, read-only inspection. It never hands
// the file to bbolt: every page is read through the io.ReaderAt and checked
// against the file size before it is used.
type File struct {
	r      io.ReaderAt
	size   int64
	closer io.Closer

	// path, modTime: set by Open, so Changed can tell a file that moved
	// under the reader (etcd may still be running).
	path    string
	modTime time.Time

	PageSize       int
	PageSizeSource string // how the page size was found
	Metas          [2]MetaInfo
}

// MetaInfo is what one meta page says and whether it can be trusted.
type MetaInfo struct {
	Page     uint64       `json:"page"`
	Meta     Meta         `json:"meta"`
	Readable bool         `json:"readable"` // the file holds the whole meta body
	Err      *FormatError `json:"-"`        // bbolt's own check that failed (magic, version, checksum)
	Problems []string     `json:"problems"` // why it is invalid or unusable, in words
	Valid    bool         `json:"valid"`    // passes bbolt's checks
	Usable   bool         `json:"usable"`   // valid and its pointers are sane for this file
}

// Open opens path read-only, without any lock (etcd may hold one).
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		fh.Close()
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	f, err := NewFile(fh, st.Size())
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.closer, f.path, f.modTime = fh, path, st.ModTime()
	return f, nil
}

// NewFile reads the bbolt file in r, which holds size bytes. It fails only
// when no page size can be found (ErrNotBolt) or r cannot be read; damaged
// metas are reported in Metas, not as an error.
func NewFile(r io.ReaderAt, size int64) (*File, error) {
	f := &File{r: r, size: size}
	if err := f.findPageSize(); err != nil {
		return nil, err
	}
	for i := range f.Metas {
		f.Metas[i] = f.readMeta(uint64(i))
	}
	return f, nil
}

// Close closes the file if Open opened it.
func (f *File) Close() error {
	if f.closer != nil {
		return f.closer.Close()
	}
	return nil
}

// Size is the file's size in bytes when it was opened.
func (f *File) Size() int64 { return f.size }

// Path is the path given to Open, or "".
func (f *File) Path() string { return f.path }

// PageCount is the number of page slots the file holds, a final partial
// page included.
func (f *File) PageCount() uint64 {
	return uint64((f.size + int64(f.PageSize) - 1) / int64(f.PageSize))
}

// Changed reports whether the file's size or modification time differ from
// when it was opened: a report on a file that changed under the reader
// describes no single state of it.
func (f *File) Changed() bool {
	if f.path == "" {
		return false
	}
	st, err := os.Stat(f.path)
	return err != nil || st.Size() != f.size || !st.ModTime().Equal(f.modTime)
}

// readAt reads up to len(b) bytes at off and returns how many the file held.
// A short read at EOF is not an error.
func (f *File) readAt(b []byte, off int64) (int, error) {
	if off >= f.size {
		return 0, nil
	}
	if rest := f.size - off; int64(len(b)) > rest {
		b = b[:rest]
	}
	n, err := f.r.ReadAt(b, off)
	if err == io.EOF && n == len(b) {
		err = nil
	}
	if err == io.EOF {
		// The file shrank under us; report what was read.
		err = nil
	}
	return n, err
}

// findPageSize takes the page size from a valid meta 0, else from a valid
// meta 1 probed at every plausible size, else from well-formed page headers.
func (f *File) findPageSize() error {
	var buf [PageHeaderSize + metaBodySize]byte
	if n, err := f.readAt(buf[:], 0); err != nil {
		return err
	} else if n == len(buf) {
		if m, ok := ParseMeta(buf[:]); ok && validateMeta(m, buf[:], 0) == nil && plausiblePageSize(uint64(m.PageSize)) {
			f.PageSize, f.PageSizeSource = int(m.PageSize), "meta page 0"
			return nil
		}
	}
	for ps := MinPageSize; ps <= MaxPageSize; ps <<= 1 {
		n, err := f.readAt(buf[:], int64(ps))
		if err != nil {
			return err
		}
		if n < len(buf) {
			break
		}
		h, _ := ParseHeader(buf[:])
		if m, ok := ParseMeta(buf[:]); ok && h.ID == 1 && validateMeta(m, buf[:], 1) == nil && int(m.PageSize) == ps {
			f.PageSize, f.PageSizeSource = ps, "meta page 1 (meta page 0 is invalid)"
			return nil
		}
	}
	ps, err := f.guessPageSizeFromHeaders()
	if err != nil {
		return err
	}
	f.PageSize, f.PageSizeSource = ps, "well-formed page headers (both meta pages are invalid)"
	return nil
}

// guessPageSizeFromHeaders counts, for every plausible page size, the pages
// among the first few thousand whose header names their own position and
// has exactly one type flag. A page of size p at index i sits at index 2i
// for size p/2, where its self-id i no longer matches, so the counts
// separate cleanly.
func (f *File) guessPageSizeFromHeaders() (int, error) {
	const probe = 4096
	best, bestScore := 0, 0
	var hb [PageHeaderSize]byte
	for ps := MinPageSize; ps <= MaxPageSize; ps <<= 1 {
		score := 0
		for i := int64(2); i < probe && i*int64(ps)+PageHeaderSize <= f.size; i++ {
			if _, err := f.readAt(hb[:], i*int64(ps)); err != nil {
				return 0, err
			}
			h, _ := ParseHeader(hb[:])
			if h.ID == uint64(i) && h.Type() != TypeInvalid && h.Type() != TypeMeta {
				score++
			}
		}
		if score > bestScore {
			best, bestScore = ps, score
		}
	}
	if bestScore == 0 {
		return 0, ErrNotBolt
	}
	return best, nil
}

// readMeta reads and judges meta page id (0 or 1) at the chosen page size.
func (f *File) readMeta(id uint64) MetaInfo {
	mi := MetaInfo{Page: id, Problems: []string{}}
	buf := make([]byte, PageHeaderSize+metaBodySize)
	n, err := f.readAt(buf, int64(id)*int64(f.PageSize))
	if err != nil || n < len(buf) {
		mi.Problems = append(mi.Problems, "file too short to hold this meta page")
		return mi
	}
	mi.Readable = true
	m, _ := ParseMeta(buf)
	mi.Meta = m
	h, _ := ParseHeader(buf)
	if fe := validateMeta(m, buf, id); fe != nil {
		mi.Err = fe
		mi.Problems = append(mi.Problems, fe.Msg+": "+fe.Err.Error())
		return mi
	}
	mi.Valid = true
	if h.Flags != FlagMeta {
		mi.Problems = append(mi.Problems, fmt.Sprintf("page flags %#x are not meta", h.Flags))
	}
	if int(m.PageSize) != f.PageSize {
		mi.Problems = append(mi.Problems, fmt.Sprintf("page size %d differs from the file's %d", m.PageSize, f.PageSize))
	}
	if m.Pgid < 3 {
		mi.Problems = append(mi.Problems, fmt.Sprintf("high-water mark %d leaves no room for a root", m.Pgid))
	}
	if m.Root < 2 || m.Root >= m.Pgid {
		mi.Problems = append(mi.Problems, fmt.Sprintf("root page %d outside [2, high-water mark %d)", m.Root, m.Pgid))
	}
	if m.Freelist != NoFreelist && (m.Freelist < 2 || m.Freelist >= m.Pgid) {
		mi.Problems = append(mi.Problems, fmt.Sprintf("freelist page %d outside [2, high-water mark %d)", m.Freelist, m.Pgid))
	}
	if m.Root < m.Pgid && int64(m.Root)*int64(f.PageSize) >= f.size {
		mi.Problems = append(mi.Problems, fmt.Sprintf("root page %d is past the end of the file", m.Root))
	}
	mi.Usable = len(mi.Problems) == 0
	return mi
}

// readNode reads the node at pgid: its page and the overflow pages the
// header claims, clipped to the end of the file. buf is reused when large
// enough. The caller must have checked pgid against the file.
func (f *File) readNode(pgid uint64, buf []byte) (*Node, []byte, error) {
	return f.readNodeLimit(pgid, buf, 1<<62)
}

// readNodeLimit is readNode reading at most limit bytes of the node.
func (f *File) readNodeLimit(pgid uint64, buf []byte, limit int64) (*Node, []byte, error) {
	ps := int64(f.PageSize)
	off := int64(pgid) * ps
	if pgid >= f.PageCount() {
		return nil, buf, formatErr(pgid, off, ErrPastEOF, pgid, "page past the end of the file (%d pages)", f.PageCount())
	}
	if cap(buf) < int(ps) {
		buf = make([]byte, ps)
	}
	buf = buf[:ps]
	n, err := f.readAt(buf, off)
	if err != nil {
		return nil, buf, err
	}
	h, ok := ParseHeader(buf[:n])
	if !ok {
		return &Node{Pgid: pgid, Offset: off, Data: buf[:n]}, buf, nil
	}
	// Bound the node by the file, never by the overflow count on disk.
	want := ps * (int64(h.Overflow) + 1)
	if rest := f.size - off; want > rest {
		want = rest
	}
	want = min(want, max(limit, ps))
	if want > int64(n) && n == int(ps) {
		if int64(cap(buf)) < want {
			nb := make([]byte, want)
			copy(nb, buf[:n])
			buf = nb
		}
		buf = buf[:want]
		m, err := f.readAt(buf[n:], off+int64(n))
		if err != nil {
			return nil, buf, err
		}
		n += m
	}
	return &Node{Pgid: pgid, Offset: off, Header: h, Data: buf[:n]}, buf, nil
}

// ReadNode reads the node at pgid into a fresh buffer.
func (f *File) ReadNode(pgid uint64) (*Node, error) {
	n, _, err := f.readNode(pgid, nil)
	return n, err
}

// ReadNodeInto reads at most limit bytes of the node at pgid (at least its
// first page), reusing buf when it is large enough, and returns the buffer
// for the next call. The node aliases it. The limit keeps a page whose
// overflow count is garbage from costing a read of the rest of the file.
func (f *File) ReadNodeInto(pgid uint64, buf []byte, limit int64) (*Node, []byte, error) {
	return f.readNodeLimit(pgid, buf, limit)
}
