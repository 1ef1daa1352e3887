// Package spill keeps large arrays of fixed-size, pointer-free records in
// a mapping of a temp file instead of the Go heap.
//
// A salvage of a multi-GiB db needs per-page and per-key tables whose size
// grows with the db (docs/scale.md). On the heap they grow the process's
// anonymous memory, which a control-plane node with a few GB, or a
// container's memory limit, cannot give: the process is killed. Kept in a
// shared mapping of an unlinked temp file they are page cache: the kernel
// writes them back and drops them under memory pressure, and faults them in
// again when they are read. Nothing is lost either way; only time.
//
// A Region reserves its whole capacity up front in a sparse file (disk
// blocks are taken only where something is written) and never moves, so a
// slice into it stays valid until Close. The capacity is an upper bound the
// caller derives from the input file's real size, never from a count read
// from disk. A slice from Slice that is appended past its capacity moves to
// the Go heap, as any Go slice does: correct, only not spilled.
package spill

import (
	"fmt"
	"os"
	"reflect"
	"sync"
	"unsafe"
)

// Dir is where regions put their temp files; "" keeps every array on the
// Go heap (small inputs, and callers that did not ask for spilling).
type Dir struct {
	path string

	mu      sync.Mutex
	regions []*region
	err     error
}

// New returns a Dir that spills into path (created temp files are unlinked
// at once: nothing is left behind, even after a crash). An empty path
// spills nothing.
func New(path string) *Dir { return &Dir{path: path} }

// Enabled reports whether d spills at all.
func (d *Dir) Enabled() bool { return d != nil && d.path != "" }

type region struct {
	f   *os.File
	mem []byte
}

// Close unmaps every region. Slices from d must not be used after it.
func (d *Dir) Close() error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var first error
	for _, r := range d.regions {
		if err := unmap(r.mem); err != nil && first == nil {
			first = err
		}
		if err := r.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	d.regions = nil
	return first
}

// MinSpill is the smallest array Slice puts in a file of its own (tests
// lower it to spill everything).
var MinSpill int64 = 1 << 20

// Slice returns an empty slice of T with capacity n, in a mapped temp file
// when d spills and the array is large. Otherwise, and when the file cannot
// be made (Err says why), it is an empty heap slice that grows as appended
// to: spilling only ever saves memory, it never fails the work. T must
// hold no pointers (the garbage collector does not see into the mapping);
// Slice panics if it does, a bug in the caller.
func Slice[T any](d *Dir, n int) []T {
	var zero T
	size := int64(unsafe.Sizeof(zero))
	if hasPointers(reflect.TypeOf(zero)) {
		panic(fmt.Sprintf("spill: %T holds pointers", zero))
	}
	if !d.Enabled() || size == 0 || n <= 0 || int64(n)*size < MinSpill {
		return nil
	}
	mem, err := d.reserve(int64(n) * size)
	if err != nil {
		d.mu.Lock()
		if d.err == nil {
			d.err = err
		}
		d.mu.Unlock()
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&mem[0])), n)[:0]
}

// Zeroed returns a slice of n zero Ts: spilled as Slice would, else on
// the heap.
func Zeroed[T any](d *Dir, n int) []T {
	if s := Slice[T](d, n); s != nil {
		return s[:n] // a new sparse file reads as zeros
	}
	return make([]T, n)
}

// Err is the first error met making a spill file (its arrays then stayed
// on the heap), or nil.
func (d *Dir) Err() error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// reserve maps a new sparse temp file of size bytes.
func (d *Dir) reserve(size int64) ([]byte, error) {
	f, err := os.CreateTemp(d.path, ".boltfix-spill-*")
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	// Unlinked at once: the mapping keeps the data; nothing outlives the
	// process.
	os.Remove(f.Name())
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, fmt.Errorf("spill: %w", err)
	}
	mem, err := mapShared(f, size)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("spill: %w", err)
	}
	d.mu.Lock()
	d.regions = append(d.regions, &region{f: f, mem: mem})
	d.mu.Unlock()
	return mem, nil
}

func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Slice, reflect.String,
		reflect.Chan, reflect.Func, reflect.Interface:
		return true
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

// Threshold is the input size from which For spills: below it the tables
// are a few MiB and a temp file buys nothing. Tests lower it to run the
// spilled paths on small files.
var Threshold int64 = 256 << 20

// For returns a Dir spilling into dir when the input is at least
// Threshold bytes, else one that spills nothing.
func For(dir string, inputSize int64) *Dir {
	if inputSize < Threshold {
		return New("")
	}
	return New(dir)
}
