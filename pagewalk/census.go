package pagewalk

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/boltfix/boltfix/spill"
)

// The census is the one sequential pass over the file. It reads the file in
// large aligned chunks (as fast as cat) and keeps, per page, only what the
// tree walk needs afterwards: the header, branch elements with their keys,
// each leaf's first and last key and its bucket elements, and page-local
// problems. The walk then runs in memory, so the file is read once.

// pageState is what a page's own bytes say, before the walk.
type pageState uint8

const (
	stateShort      pageState = iota // the file ends inside the page header
	stateZero                        // the header is all zeros: never written, or wiped
	stateGarbage                     // no valid type flag
	stateIDMismatch                  // valid type, but the id is another page's
	stateWellFormed                  // valid type and its own id
)

// pageSum is the census entry of one page.
type pageSum struct {
	id       uint64 // the id its header claims
	overflow uint32
	count    uint16
	typ      PageType
	state    pageState
	info     int32 // index into census.branches or census.leaves, or -1
}

// keyRef locates a key in the census arena.
type keyRef struct{ off, n uint32 }

type branchElem struct {
	key   keyRef
	child uint64
	// bad: the element or its key is out of the node; the message is
	// census.belemErrs[bad-1] (an index, not a pointer: the table may live
	// in a spill file the collector does not see).
	bad  int32
	zero bool // the 16-byte element is all zeros (a torn or wiped page)
}

type branchInfo struct {
	first, n int32 // range in census.belems
}

type leafBucket struct {
	elem     int
	name     keyRef
	hdr      BucketHeader
	inline   bool
	records  int    // inline buckets: elements
	first    keyRef // inline buckets: first and last key
	last     keyRef
	hasFirst bool
}

type leafInfo struct {
	records     int // elements that are not buckets
	first, last keyRef
	hasKeys     bool
	bfirst, bn  int32 // range in census.lbuckets
}

// localProblem is damage visible in one page alone. It becomes a finding
// only if the walk reaches the page: problems in free pages are history,
// not damage.
type localProblem struct {
	kind    Kind
	elem    int
	off     int64
	msg     string
	keyOnly bool // only damage if the page belongs to etcd's key bucket
}

// arenaLimit bounds the memory spent on keys by the file's size: real files
// keep each key at most twice (a leaf's first and last), while a hostile
// file of overlapping keys could ask for the square of its size.
func (c *census) arenaLimit() int64 {
	return min(maxArena, 2*c.f.size+64<<10)
}

// nodeBudget bounds the node bytes the census reads and decodes. In a real
// file nodes do not overlap, so their sizes add up to at most the file; a
// hostile file whose every page claims the rest of the file as overflow
// would otherwise cost the square of its size. Past the budget a node is
// read as its first page only.
func (c *census) nodeBudget() int64 { return 2*c.f.size + 64<<10 }

// maxArena bounds the memory spent on keys. Past it, keys are not kept and
// key ranges in findings come out open.
const maxArena = 1 << 30

type census struct {
	f        *File
	sums     []pageSum
	branches []branchInfo
	belems   []branchElem
	// belemErrs are the errors of bad branch elements (branchElem.bad).
	belemErrs []*FormatError
	leaves    []leafInfo
	lbuckets  []leafBucket
	arena     []byte
	arenaCut  bool
	// nodeBytes counts node bytes read so far (see nodeBudget).
	nodeBytes int64
	problems  map[uint64][]localProblem
	deep      bool
	ctx       context.Context // nil: never cancelled
	// keyValueOK decodes an etcd key-bucket value for --deep; nil otherwise.
	keyValueOK func(v []byte) error
	// spill, if enabled, holds the tables that grow with the file.
	spill *spill.Dir
	// noMap reads the file with pread even where it could be mapped (the
	// mapping faulted once).
	noMap bool
}

func (c *census) keep(k []byte) keyRef {
	if int64(len(c.arena))+int64(len(k)) > c.arenaLimit() {
		c.arenaCut = true
		return keyRef{}
	}
	r := keyRef{off: uint32(len(c.arena)), n: uint32(len(k))}
	c.arena = append(c.arena, k...)
	return r
}

// elemErr keeps fe for a branchElem; 0 for none.
func (c *census) elemErr(fe *FormatError) int32 {
	if fe == nil {
		return 0
	}
	c.belemErrs = append(c.belemErrs, fe)
	return int32(len(c.belemErrs))
}

// errOf returns e's error, or nil.
func (c *census) errOf(e *branchElem) *FormatError {
	if e.bad == 0 {
		return nil
	}
	return c.belemErrs[e.bad-1]
}

func (c *census) key(r keyRef) []byte { return c.arena[r.off : r.off+r.n] }

func (c *census) problem(pgid uint64, p localProblem) {
	if c.problems == nil {
		c.problems = make(map[uint64][]localProblem)
	}
	c.problems[pgid] = append(c.problems[pgid], p)
}

// chunkBytes is the read size of the census pass.
const chunkBytes = 4 << 20

// run reads every page of the file once: through a read-only mapping of
// the file where it can, else with pread; the two halves of the file on
// two goroutines.
//
// The mapping is the faster way by far: a pread copies every byte of the
// file into the process (cat's cost, the floor a scan is judged against),
// a mapping lets the census read the page cache itself. Nothing of a
// chunk is kept past it (keys are copied into the arena), so no slice of
// the mapping outlives run. What is left is waiting on memory for each
// page's header and keys, which two cores do in half the time: each half
// builds tables of its own, and the second half's are appended to the
// first's (merge), which gives the tables one census in file order
// builds.
func (c *census) run(counter Counter) (err error) {
	f := c.f
	npages := f.PageCount()
	c.sums = spill.Zeroed[pageSum](c.spill, int(npages))
	c.allocTables(npages, f.size)
	var m []byte
	if fh, ok := f.r.(*os.File); ok && !c.noMap {
		if m = mapFile(fh, f.size); m != nil {
			defer unmapFile(m)
		}
	}
	if npages < 2*minCensusHalf {
		return c.runRange(0, npages, m, counter, nil)
	}
	mid := npages / 2
	other := &census{f: f, sums: c.sums, deep: c.deep, ctx: c.ctx, keyValueOK: c.keyValueOK, spill: c.spill, noMap: c.noMap}
	other.allocTables(npages-mid, int64(npages-mid)*int64(f.PageSize))
	counter = &lockedCounter{c: counter}
	// Whichever half fails first stops the other; its error is the one
	// returned (the other's is errCensusStopped, or its own).
	var stop atomic.Bool
	half := func(h *census, lo, hi uint64) error {
		err := h.runRange(lo, hi, m, counter, &stop)
		if err != nil {
			stop.Store(true)
		}
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- half(other, mid, npages) }()
	err = half(c, 0, mid)
	for _, e := range []error{err, <-errc} {
		if e != nil && e != errCensusStopped {
			return e
		}
	}
	c.merge(other, mid)
	return nil
}

// minCensusHalf is the fewest pages a half of the census reads: a file
// under 32 MiB (of 4 KiB pages) is read on one goroutine, where a second
// set of tables, and the copy into the first, would cost more than the
// second core gains. A variable for the tests, which split small files
// to compare the halves' tables with one census's.
var minCensusHalf uint64 = 4096

// errCensusStopped: a half stopped because the other failed.
var errCensusStopped = errors.New("census stopped")

// lockedCounter lets the census's two halves tell one Counter.
type lockedCounter struct {
	mu sync.Mutex
	c  Counter
}

func (l *lockedCounter) Add(n int64) {
	if l.c == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.c.Add(n)
}

// allocTables makes the tables for npages pages of size bytes. Every
// table grows with the file: in a spill file when asked (their capacity
// there is what the file could need at most, reserved but not written),
// else on the heap presized for a typical etcd db (most pages leaves, a
// few branches, two short keys a leaf): growing these by doubling cost a
// copy of everything kept so far, several times.
func (c *census) allocTables(npages uint64, size int64) {
	if c.spill.Enabled() {
		c.leaves = spill.Slice[leafInfo](c.spill, int(npages))
		c.branches = spill.Slice[branchInfo](c.spill, int(npages))
		c.belems = spill.Slice[branchElem](c.spill, int(size/BranchElementSize)+1)
		c.lbuckets = spill.Slice[leafBucket](c.spill, int(size/LeafElementSize)+1)
		c.arena = spill.Slice[byte](c.spill, int(c.arenaLimit()))
	}
	if c.leaves == nil {
		c.leaves = make([]leafInfo, 0, npages/2+1)
	}
	if c.belems == nil {
		c.belems = make([]branchElem, 0, npages/8+1)
	}
	if c.arena == nil {
		c.arena = make([]byte, 0, min(c.arenaLimit(), int64(npages)*40))
	}
}

// merge appends the tables of other, which read the pages from mid on,
// to c's, which read the pages before mid: every index and key reference
// of other's moves by the length of c's table it points into. The arena
// keeps its bound: keys past it are cut as keep cuts them.
func (c *census) merge(other *census, mid uint64) {
	nb, nl := int32(len(c.branches)), int32(len(c.leaves))
	for pgid := mid; pgid < uint64(len(c.sums)); pgid++ {
		s := &c.sums[pgid]
		if s.info < 0 {
			continue
		}
		if s.typ == TypeBranch {
			s.info += nb
		} else {
			s.info += nl
		}
	}
	base := int64(len(c.arena))
	room := max(0, c.arenaLimit()-base)
	fix := func(r keyRef) keyRef {
		if r.n == 0 {
			return keyRef{}
		}
		if int64(r.off)+int64(r.n) > room {
			c.arenaCut = true
			return keyRef{}
		}
		return keyRef{off: r.off + uint32(base), n: r.n}
	}
	c.arena = append(c.arena, other.arena[:min(int64(len(other.arena)), room)]...)
	ne, nerr, nlb := int32(len(c.belems)), int32(len(c.belemErrs)), int32(len(c.lbuckets))
	for _, b := range other.branches {
		b.first += ne
		c.branches = append(c.branches, b)
	}
	for _, e := range other.belems {
		e.key = fix(e.key)
		if e.bad > 0 {
			e.bad += nerr
		}
		c.belems = append(c.belems, e)
	}
	c.belemErrs = append(c.belemErrs, other.belemErrs...)
	for _, l := range other.leaves {
		l.first, l.last = fix(l.first), fix(l.last)
		l.bfirst += nlb
		c.leaves = append(c.leaves, l)
	}
	for _, b := range other.lbuckets {
		b.name, b.first, b.last = fix(b.name), fix(b.first), fix(b.last)
		c.lbuckets = append(c.lbuckets, b)
	}
	for pgid, ps := range other.problems {
		for _, p := range ps {
			c.problem(pgid, p)
		}
	}
	c.arenaCut = c.arenaCut || other.arenaCut
	c.nodeBytes += other.nodeBytes
}

// runRange reads pages lo to hi, from the mapping m when it is set, else
// with pread. stop, if set, is shared with the other half: runRange stops
// at its next chunk once it is set.
func (c *census) runRange(lo, hi uint64, m []byte, counter Counter, stop *atomic.Bool) (err error) {
	f := c.f
	ps := f.PageSize
	npages := hi - lo
	chunkPages := max(1, min(chunkBytes/ps, int(npages))) // no 4 MiB buffer for a small file
	var chunks chunkSource
	if m != nil {
		// A file cut shorter while it is mapped faults on the pages past
		// its new end: a panic here, not a crash, turned into
		// errMappingFault (Scan then reads the file again with pread).
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if r := recover(); r != nil {
				if _, fault := r.(interface{ Addr() uintptr }); !fault {
					panic(r)
				}
				err = errMappingFault
			}
		}()
		// The file's last page may be short: the mapping ends with it.
		end := min(hi*uint64(ps), uint64(len(m)))
		chunks = mapAhead(m[lo*uint64(ps):end], npages, chunkPages, ps)
	} else {
		chunks = readAhead(f, lo, hi, chunkPages)
	}
	defer chunks.stop()
	var scratch []byte
	for start := lo; start < hi; start += uint64(chunkPages) {
		if c.ctx != nil && c.ctx.Err() != nil {
			return c.ctx.Err()
		}
		if stop != nil && stop.Load() {
			return errCensusStopped
		}
		ch, err := chunks.take()
		if err != nil {
			return err
		}
		buf, n := ch.buf, ch.n
		for i := 0; i < chunkPages && start+uint64(i) < hi; i++ {
			pgid := start + uint64(i)
			off := i * ps
			s := &c.sums[pgid]
			s.info = -1
			h, ok := ParseHeader(buf[min(off, n):min(n, off+ps)]) // a short read: the file shrank
			if !ok {
				s.state = stateShort
				continue
			}
			s.id, s.overflow, s.count, s.typ = h.ID, h.Overflow, h.Count, h.Type()
			switch {
			case h == (Header{}):
				s.state = stateZero
			case s.typ == TypeInvalid:
				s.state = stateGarbage
			case h.ID != pgid:
				s.state = stateIDMismatch
			default:
				s.state = stateWellFormed
			}
			if s.state != stateWellFormed || (s.typ != TypeBranch && s.typ != TypeLeaf) {
				continue
			}
			// The node's bytes: in the chunk when they fit, else read apart.
			// Bounded by the file, never by the overflow count alone.
			want := int64(ps) * (int64(h.Overflow) + 1)
			if rest := f.size - int64(pgid)*int64(ps); want > rest {
				want = rest
				c.problem(pgid, localProblem{kind: KindOverflowPastEOF, elem: -1, off: int64(pgid) * int64(ps),
					msg: "node's overflow pages run past the end of the file"})
			}
			var node *Node
			if c.nodeBytes+want > c.nodeBudget() && want > int64(ps) {
				want = int64(ps)
				c.problem(pgid, localProblem{kind: KindOverflowPastEOF, elem: -1, off: int64(pgid) * int64(ps),
					msg: "overflow claim overlaps other nodes beyond what the file can hold: read as one page"})
			}
			c.nodeBytes += want
			if int64(off)+want <= int64(n) {
				node = &Node{Pgid: pgid, Offset: int64(pgid) * int64(ps), Header: h, Data: buf[off : int64(off)+want]}
			} else {
				var err error
				node, scratch, err = f.readNodeLimit(pgid, scratch, want)
				if err != nil {
					return err
				}
			}
			if s.typ == TypeBranch {
				c.summarizeBranch(s, node)
			} else {
				c.summarizeLeaf(s, node)
			}
		}
		chunks.release(ch)
		if counter != nil {
			counter.Add(int64(min(uint64(chunkPages), hi-start)))
		}
	}
	return nil
}

// chunk is one read of the census pass.
type chunk struct {
	buf []byte
	n   int
}

// chunkSource hands the census the file's chunks in order: read ahead
// with pread (reader) or mapped ahead (mapper).
type chunkSource interface {
	take() (chunk, error)
	release(chunk)
	stop()
}

// errMappingFault: the mapped file faulted under the census (it was cut
// shorter while it was read).
var errMappingFault = errors.New("the file's mapping faulted (the file was cut shorter while it was read)")

// mapper maps the census's chunks in ahead of it, on a goroutine of its
// own, up to mapAheadChunks chunks, and takes each back out of the
// process once the census is done with it.
type mapper struct {
	m          []byte
	chunkBytes int
	ready      chan int // chunk indexes, in order, mapped in
	quit       chan struct{}
	done       chan struct{}
}

// mapAheadChunks is how many chunks the mapper keeps mapped in ahead: the
// census never waits for the page tables, and the process holds a few
// chunks of the file, not all of it.
const mapAheadChunks = 4

func mapAhead(m []byte, npages uint64, chunkPages, ps int) *mapper {
	mp := &mapper{m: m, chunkBytes: chunkPages * ps, ready: make(chan int, mapAheadChunks), quit: make(chan struct{}), done: make(chan struct{})}
	nchunks := int((npages + uint64(chunkPages) - 1) / uint64(chunkPages))
	go func() {
		defer close(mp.done)
		defer close(mp.ready)
		for i := range nchunks {
			populateMapped(mp.bytes(i))
			select {
			case mp.ready <- i:
			case <-mp.quit:
				return
			}
		}
	}()
	return mp
}

// bytes is chunk i of the mapping (the last one may be short).
func (mp *mapper) bytes(i int) []byte {
	lo := i * mp.chunkBytes
	return mp.m[lo:min(lo+mp.chunkBytes, len(mp.m)):min(lo+mp.chunkBytes, len(mp.m))]
}

func (mp *mapper) take() (chunk, error) {
	i, ok := <-mp.ready
	if !ok {
		return chunk{}, io.ErrUnexpectedEOF
	}
	b := mp.bytes(i)
	return chunk{buf: b, n: len(b)}, nil
}

func (mp *mapper) release(ch chunk) { dropMapped(ch.buf) }

func (mp *mapper) stop() {
	close(mp.quit)
	<-mp.done
}

// readers is how many goroutines read chunks: copying the file in is the
// census's largest cost, and with two readers it is spread over the two
// cores a node has at least (cat, the floor scan is judged against, copies
// on one).
const readers = 2

// reader reads the census's chunks ahead of it on readers goroutines,
// chunk i on goroutine i%readers, so that copying the file in and parsing
// it overlap. Each goroutine has buffers of its own, so one that runs
// ahead never takes the buffer the other needs for the chunk the census
// waits for.
type reader struct {
	full [readers]chan chunk
	free [readers]chan []byte
	errs [readers]error // set before full[i] is closed
	next int            // the chunk the census takes next
	quit chan struct{}
}

func readAhead(f *File, lo, hi uint64, chunkPages int) *reader {
	ps := f.PageSize
	npages := hi - lo
	// Two buffers per goroutine: one being read into while the other
	// waits to be parsed.
	const perReader = 2
	r := &reader{quit: make(chan struct{})}
	nchunks := (npages + uint64(chunkPages) - 1) / uint64(chunkPages)
	for g := range readers {
		r.full[g] = make(chan chunk, perReader)
		r.free[g] = make(chan []byte, perReader)
		for i := uint64(0); i < perReader && uint64(g)+i*readers < nchunks; i++ {
			r.free[g] <- make([]byte, chunkPages*ps)
		}
		go func() {
			defer close(r.full[g])
			for idx := uint64(g); idx < nchunks; idx += readers {
				var buf []byte
				select {
				case buf = <-r.free[g]:
				case <-r.quit:
					return
				}
				n, err := f.readAt(buf, int64(lo)*int64(ps)+int64(idx)*int64(chunkPages)*int64(ps))
				if err != nil {
					r.errs[g] = err
					return
				}
				select {
				case r.full[g] <- chunk{buf: buf, n: n}:
				case <-r.quit:
					return
				}
			}
		}()
	}
	return r
}

// take returns the next chunk in file order; a read error, or
// io.ErrUnexpectedEOF if the readers stopped short.
func (r *reader) take() (chunk, error) {
	g := r.next % readers
	ch, ok := <-r.full[g]
	if !ok {
		if r.errs[g] != nil {
			return chunk{}, r.errs[g]
		}
		return chunk{}, io.ErrUnexpectedEOF
	}
	r.next++
	return ch, nil
}

// release gives a parsed chunk's buffer back to the goroutine it came
// from (the one before the next to take).
func (r *reader) release(ch chunk) {
	r.free[(r.next-1)%readers] <- ch.buf
}

// stop ends the readers early (the census returned an error) or after
// the last chunk.
func (r *reader) stop() {
	close(r.quit)
	for g := range readers {
		for range r.full[g] {
		}
	}
}

var zeroElement [BranchElementSize]byte

func (c *census) summarizeBranch(s *pageSum, n *Node) {
	s.info = int32(len(c.branches))
	bi := branchInfo{first: int32(len(c.belems))}
	if !n.elementsFit(BranchElementSize) {
		c.problem(n.Pgid, localProblem{kind: KindElementBounds, elem: -1, off: n.Offset + 10,
			msg: "branch element count " + itoa(int(n.Count)) + " exceeds the node"})
	}
	if n.Count == 0 {
		c.problem(n.Pgid, localProblem{kind: KindEmptyBranch, elem: -1, off: n.Offset + 10, msg: "branch page with no elements"})
	}
	for i := 0; i < int(n.Count) && PageHeaderSize+i*BranchElementSize <= len(n.Data); i++ { // one error element for the rest, not Count of them
		at := PageHeaderSize + i*BranchElementSize
		if at+BranchElementSize > len(n.Data) {
			// Elements that do not fit are lost; the walk reports them.
			c.belems = append(c.belems, branchElem{bad: c.elemErr(formatErr(n.Pgid, n.Offset+int64(at), ErrOutOfBounds, i, "branch element %d outside the node", i))})
			continue
		}
		e, fe := n.Branch(i)
		be := branchElem{child: e.Child, bad: c.elemErr(fe), zero: bytes.Equal(n.Data[at:at+BranchElementSize], zeroElement[:])}
		if fe == nil {
			be.key = c.keep(e.Key)
		}
		c.belems = append(c.belems, be)
	}
	bi.n = int32(len(c.belems)) - bi.first
	c.branches = append(c.branches, bi)
}

func (c *census) summarizeLeaf(s *pageSum, n *Node) {
	s.info = int32(len(c.leaves))
	li := leafInfo{bfirst: int32(len(c.lbuckets))}
	if !n.elementsFit(LeafElementSize) {
		c.problem(n.Pgid, localProblem{kind: KindElementBounds, elem: -1, off: n.Offset + 10,
			msg: "leaf element count " + itoa(int(n.Count)) + " exceeds the node"})
	}
	var prev []byte
	for i := 0; i < int(n.Count); i++ {
		e, fe := n.Leaf(i)
		if fe != nil {
			if PageHeaderSize+i*LeafElementSize+LeafElementSize > len(n.Data) {
				break // reported once above
			}
			c.problem(n.Pgid, localProblem{kind: KindElementBounds, elem: i, off: fe.Offset, msg: fe.Msg})
			continue
		}
		if prev != nil && bytes.Compare(e.Key, prev) <= 0 {
			c.problem(n.Pgid, localProblem{kind: KindKeyOrder, elem: i, off: n.Offset + int64(PageHeaderSize+i*LeafElementSize),
				msg: "leaf key not above the key before it"})
		}
		if !li.hasKeys {
			li.first, li.hasKeys = c.keep(e.Key), true
		}
		prev = e.Key
		if !e.IsBucket() {
			li.records++
			if c.keyValueOK != nil && isRevisionKey(e.Key) {
				if err := c.keyValueOK(e.Value); err != nil {
					c.problem(n.Pgid, localProblem{kind: KindValueUndecodable, elem: i, keyOnly: true,
						off: n.Offset + int64(PageHeaderSize+i*LeafElementSize), msg: "value is not an mvccpb.KeyValue: " + err.Error()})
				}
			}
			continue
		}
		lb := leafBucket{elem: i, name: c.keep(e.Key)}
		hdr, inl, fe := ParseBucket(e.Value, n.Pgid, n.Offset+int64(PageHeaderSize+i*LeafElementSize))
		lb.hdr = hdr
		if fe != nil {
			c.problem(n.Pgid, localProblem{kind: KindInlineBucket, elem: i, off: fe.Offset, msg: fe.Msg})
			lb.inline = true // unreadable: walk counts it lost
			lb.records = -1
		} else if inl != nil {
			lb.inline = true
			c.summarizeInline(&lb, inl, n, i)
		}
		c.lbuckets = append(c.lbuckets, lb)
	}
	if prev != nil {
		li.last = c.keep(prev)
	}
	li.bn = int32(len(c.lbuckets)) - li.bfirst
	c.leaves = append(c.leaves, li)
	c.zeroedBlocks(n)
}

// A file's bytes are lost in whole filesystem blocks: a hole left by a
// crash before delayed allocation, an unwritten extent, a discarded SSD
// block, a write the disk never made all read back as 4 KiB of zeros. A
// node's first block holds its header, which then fails to parse; the
// blocks after it (a node with overflow pages, or pages larger than 4 KiB)
// hold only keys and values, which parse whatever they hold. So a whole
// zero block among a record's bytes is reported: values carry no checksum,
// and nothing else shows it. (A record can hold 4 KiB of zeros, a raw tar
// file in a Secret can; that record is then reported unverified, not
// dropped.)
const (
	fsBlock = 4096
	// minZeroedRecordBytes is how many of a record's bytes a zero block
	// must cover. A node's last block ends in unused bytes that bbolt left
	// zero, so a zero block that covers only the last bytes of the node's
	// last record changed nothing if those bytes were zeros already. A
	// Kubernetes protobuf value ends in one zero byte (its empty
	// contentType: 0x22 0x00), so one byte proves nothing. Two prove a
	// change for every Kubernetes and etcd record. Nodes just over a page
	// are common (bbolt does not split a node of four elements or fewer),
	// so a zero page often covers only a few bytes of one: a larger
	// threshold missed a zeroed page with 4 of a value's bytes on it
	// (found by a sweep zeroing every page of a real db in turn).
	minZeroedRecordBytes = 2
)

// zeroedBlocks records a problem for each element whose key and value
// bytes overlap a whole zero block of the node (past its first block) by
// minZeroedRecordBytes or more.
func (c *census) zeroedBlocks(n *Node) {
	end := n.Offset + int64(len(n.Data))
	for b := (n.Offset/fsBlock + 1) * fsBlock; b+fsBlock <= end; b += fsBlock {
		lo := b - n.Offset
		if !allZero(n.Data[lo : lo+fsBlock]) {
			continue
		}
		for i := 0; i < int(n.Count); i++ {
			sp, ok := n.leafSpan(i)
			if !ok {
				break
			}
			if sp.end() > uint64(len(n.Data)) {
				continue // reported as out of bounds
			}
			start, ksize, stop := int64(sp.start), int64(sp.ksize), int64(sp.end())
			if min(stop, lo+fsBlock)-max(start, lo) < minZeroedRecordBytes {
				continue
			}
			where := "the 4 KiB block at file offset " + strconv.FormatInt(b, 10)
			if max(start, lo) < min(start+ksize, lo+fsBlock) {
				// The key is gone: which record this was, only its
				// neighbours tell (the walk reports the range between).
				c.problem(n.Pgid, localProblem{kind: KindZeroedKey, elem: i, off: b,
					msg: where + " reads as zeros over this record's key (a hole or a lost write): the record is lost"})
				continue
			}
			c.problem(n.Pgid, localProblem{kind: KindZeroedBlock, elem: i, off: b,
				msg: where + " inside this record's value reads as zeros (a hole or a lost write): nothing in the page shows what was there"})
		}
	}
}

// allZero reports whether b holds only zeros; it looks at the first word
// first, so a block that is not zero costs one load.
func allZero(b []byte) bool {
	if len(b) >= 8 && binary.LittleEndian.Uint64(b) != 0 {
		return false
	}
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// summarizeInline checks an inline bucket's embedded leaf. bbolt never
// inlines a bucket that holds buckets, so a bucket element inside is damage.
func (c *census) summarizeInline(lb *leafBucket, inl *Node, holder *Node, elem int) {
	var prev []byte
	for j := 0; j < int(inl.Count); j++ {
		e, fe := inl.Leaf(j)
		if fe != nil {
			c.problem(holder.Pgid, localProblem{kind: KindInlineBucket, elem: elem, off: fe.Offset,
				msg: "inline bucket element " + itoa(j) + ": " + fe.Msg})
			continue
		}
		if e.IsBucket() {
			c.problem(holder.Pgid, localProblem{kind: KindInlineBucket, elem: elem, off: inl.Offset,
				msg: "inline bucket holds a nested bucket element " + itoa(j)})
			continue
		}
		if prev != nil && bytes.Compare(e.Key, prev) <= 0 {
			c.problem(holder.Pgid, localProblem{kind: KindInlineBucket, elem: elem, off: inl.Offset,
				msg: "inline bucket key " + itoa(j) + " out of order"})
		}
		if !lb.hasFirst {
			lb.first, lb.hasFirst = c.keep(e.Key), true
		}
		prev = e.Key
		lb.records++
	}
	if prev != nil {
		lb.last = c.keep(prev)
	}
}
