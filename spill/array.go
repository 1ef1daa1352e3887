package spill

import (
	"reflect"
	"unsafe"
)

// chunkBytes is the size of one chunk of an Array or Bytes in a spill
// file: large enough that a table of millions of entries is a few dozen
// mappings, small enough that a small table wastes little.
const chunkBytes = 4 << 20

// Array is an append-only array of T that grows in chunks which never
// move: a pointer from At stays valid across Append when d spills. When d
// does not spill it is one heap slice, and (as with any Go slice) Append
// may move it: callers must not keep a pointer across an Append.
type Array[T any] struct {
	d      *Dir
	per    int // elements per spilled chunk
	chunks [][]T
	n      int
}

// NewArray returns an empty Array spilling into d (nil or disabled: the
// heap). T must hold no pointers; NewArray panics if it does.
func NewArray[T any](d *Dir) *Array[T] {
	var zero T
	if hasPointers(reflect.TypeOf(zero)) {
		panic("spill: array element holds pointers")
	}
	per := 1
	if sz := int(unsafe.Sizeof(zero)); sz > 0 {
		per = max(1, chunkBytes/sz)
	}
	return &Array[T]{d: d, per: per}
}

// Len is the number of elements appended.
func (a *Array[T]) Len() int { return a.n }

// Append adds v and returns its index.
func (a *Array[T]) Append(v T) int {
	if !a.d.Enabled() {
		if len(a.chunks) == 0 {
			a.chunks = append(a.chunks, nil)
		}
		a.chunks[0] = append(a.chunks[0], v)
		a.n++
		return a.n - 1
	}
	c := a.n / a.per
	if c == len(a.chunks) {
		ch := Slice[T](a.d, a.per)
		if ch == nil {
			ch = make([]T, 0, a.per)
		}
		a.chunks = append(a.chunks, ch)
	}
	a.chunks[c] = append(a.chunks[c], v)
	a.n++
	return a.n - 1
}

// At returns a pointer to element i (0 <= i < Len).
func (a *Array[T]) At(i int) *T {
	if !a.d.Enabled() {
		return &a.chunks[0][i]
	}
	return &a.chunks[i/a.per][i%a.per]
}

// Bytes is an append-only arena of byte strings in chunks that never move
// when spilled (see Array).
type Bytes struct {
	d      *Dir
	chunks [][]byte
	size   int64
}

// Ref names a string in a Bytes.
type Ref struct {
	chunk, off, n uint32
}

// NewBytes returns an empty arena spilling into d.
func NewBytes(d *Dir) *Bytes { return &Bytes{d: d} }

// Size is the number of bytes stored.
func (b *Bytes) Size() int64 { return b.size }

// Add stores a copy of p.
func (b *Bytes) Add(p []byte) Ref {
	if !b.d.Enabled() {
		// One heap chunk per string would cost a slice header each: pack
		// them into growing chunks instead, started afresh when full (the
		// old ones never move).
		const heapChunk = 64 << 10
		last := len(b.chunks) - 1
		if last < 0 || len(b.chunks[last])+len(p) > cap(b.chunks[last]) {
			b.chunks = append(b.chunks, make([]byte, 0, max(heapChunk, len(p))))
			last++
		}
		return b.put(last, p)
	}
	last := len(b.chunks) - 1
	if last < 0 || len(b.chunks[last])+len(p) > cap(b.chunks[last]) {
		n := max(chunkBytes, len(p))
		ch := Slice[byte](b.d, n)
		if ch == nil {
			ch = make([]byte, 0, n)
		}
		b.chunks = append(b.chunks, ch)
		last++
	}
	return b.put(last, p)
}

func (b *Bytes) put(c int, p []byte) Ref {
	off := len(b.chunks[c])
	b.chunks[c] = append(b.chunks[c], p...)
	b.size += int64(len(p))
	return Ref{chunk: uint32(c), off: uint32(off), n: uint32(len(p))}
}

// Get returns the string r names; it aliases the arena.
func (b *Bytes) Get(r Ref) []byte {
	return b.chunks[r.chunk][r.off : r.off+r.n : r.off+r.n]
}
