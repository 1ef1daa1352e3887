package pagewalk

import "sync"

// A copy of a multi-GiB key bucket reads every leaf into a buffer that the
// writer keeps until its commit (bbolt holds each value it is given until
// then). Allocating those buffers afresh cost the reading goroutine a
// quarter of its time, zeroing memory the read overwrites at once, and the
// collector the rest. A Lender hands the same buffers out again once the
// caller says it is done with what was read into them.
//
// The contract is the caller's: ForEachLent tags every record with the
// lease of the buffer it lies in, leases grow in read order, and
// ReturnBefore(l) promises that no record of a lease below l is referenced
// any more (a writer calls it after a commit, with the lease of the last
// record that commit holds). A buffer returned too early would change a
// record after it was judged; Poison makes that loud in tests.

// Lease names one lent buffer; leases grow in the order the buffers are
// read.
type Lease uint64

// Lender recycles ForEachLent's read buffers. The reads are packed into
// chunks of lentChunkBytes, one lease per chunk: most runs of leaves are a few
// pages, and a buffer per run sized for the longest wasted most of each.
// The zero value is ready to use; it is safe for the reading goroutine
// and one returning goroutine.
type Lender struct {
	// Poison fills every returned chunk with 0xA5 (tests): a record still
	// in use then reads as garbage instead of as a later record.
	Poison bool
	// Discard drops returned chunks instead of reusing them (tests): a
	// chunk given back too early then stays poisoned, and no read lands in
	// it while a record in it is still in use.
	Discard bool

	mu   sync.Mutex
	free [][]byte
	lent []lentBuffer // in lease order; lent[head:] are out
	head int
	last Lease
	// cur is the chunk reads are packed into (the newest lent), used its
	// bytes handed out so far.
	cur  []byte
	used int
}

type lentBuffer struct {
	lease Lease
	buf   []byte
}

// lentChunkBytes is the size of a lent chunk; every read fits one
// (maxRunBytes is the largest).
const lentChunkBytes = 1 << 20

// maxFreeChunks bounds what a Lender keeps for reuse (24 MiB): a commit
// gives back about a transaction's worth (16 MiB of records), which the
// reader takes again before the next commit; more than that is left to
// the collector. 64 was no faster on the 5 GiB db.
const maxFreeChunks = 24

// borrow returns a buffer of n <= maxRunBytes bytes and its lease.
func (l *Lender) borrow(n int) ([]byte, Lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil || l.used+n > len(l.cur) {
		if k := len(l.free); k > 0 {
			l.cur, l.free = l.free[k-1], l.free[:k-1]
		} else {
			l.cur = make([]byte, lentChunkBytes)
		}
		l.used = 0
		l.last++
		l.lent = append(l.lent, lentBuffer{l.last, l.cur})
	}
	b := l.cur[l.used : l.used+n : l.used+n]
	l.used += n
	return b, l.last
}

// current is the lease of the newest lent chunk: a record read into a
// buffer of its own (not lent) is tagged with it, which returns nothing
// early (every chunk lent before it was read before the record).
func (l *Lender) current() Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// ReturnBefore takes back every chunk whose lease is below lease: the
// caller holds no record read into them any more.
func (l *Lender) ReturnBefore(lease Lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.head < len(l.lent) && l.lent[l.head].lease < lease && l.lent[l.head].lease != l.last {
		b := l.lent[l.head].buf
		l.lent[l.head] = lentBuffer{}
		l.head++
		if l.Poison {
			for i := range b {
				b[i] = 0xA5
			}
		}
		if len(l.free) < maxFreeChunks && !l.Discard {
			l.free = append(l.free, b)
		}
	}
	// Keep the queue's backing array from growing with the whole copy.
	if l.head > 1024 && 2*l.head > len(l.lent) {
		l.lent = append(l.lent[:0], l.lent[l.head:]...)
		l.head = 0
	}
}
