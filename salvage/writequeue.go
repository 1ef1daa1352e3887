package salvage

import (
	"sync/atomic"

	"github.com/boltfix/boltfix/pagewalk"
)

// The key bucket's copy is the salvage's longest phase, and one goroutine
// did all of it: judge each record (decode it, index its key) and build
// and write bbolt's pages. bbolt's side alone (node building, the page
// writes of each commit) took about as long as everything else. With the
// puts queued to a goroutine of their own, the judging and bbolt's work
// run on two cores (the pages are already read ahead on a third
// goroutine).
//
// Only put is queued. Everything else that touches bbolt (bucket, get,
// commit, close) first waits until the queue is empty, so bbolt is only
// ever used by one goroutine at a time and every operation sees the puts
// made before it, in order.

// queueBatch is how many puts travel to the writer goroutine at once;
// queueDepth batches may wait, which bounds what the queue holds (the
// records themselves are the caller's read buffers, held until commit
// anyway). The queue must outlast a commit: while bbolt spills and writes
// a transaction (16 MiB, about 15 ms) the judging goes on filling it. With
// 4 batches (about 3 MiB of records) it filled in a few ms and the judging
// and the reading stalled behind every commit: the 5 GiB db's writing
// phase took 8.2 to 9.2 s, with 32 (about 24 MiB) 7.0 to 7.8 s, for 45 MiB
// more at the peak; 64 gained little more for another 50 MiB.
const (
	queueBatch = 256
	queueDepth = 32
)

type queuedPut struct {
	path  [][]byte
	k, v  []byte
	fill  float64
	lease pagewalk.Lease
}

type putQueue struct {
	batch   []queuedPut
	batches chan []queuedPut
	// A nil batch asks the writer to report on drained once it has
	// done every put before it.
	drained chan error
	// stopped is closed when the writer goroutine has ended.
	stopped chan struct{}
	// failed is set once a put failed (an interrupt, a write error): the
	// caller stops at its next put instead of queueing the rest.
	failed atomic.Bool
}

// startQueue makes put asynchronous until stopQueue.
func (w *dbWriter) startQueue() {
	if w.q != nil {
		return
	}
	q := &putQueue{batches: make(chan []queuedPut, queueDepth), drained: make(chan error), stopped: make(chan struct{})}
	w.q = q
	go func() {
		defer close(q.stopped)
		var err error // the first failure: later puts are dropped
		for b := range q.batches {
			if b == nil {
				q.drained <- err
				continue
			}
			for i := range b {
				if err == nil {
					if err = w.putNow(b[i].path, b[i].k, b[i].v, b[i].fill, b[i].lease); err != nil {
						q.failed.Store(true)
					}
				}
			}
		}
	}()
}

// queuePut hands one put to the writer goroutine; after a put failed it
// returns that failure.
func (w *dbWriter) queuePut(path [][]byte, k, v []byte, fill float64, lease pagewalk.Lease) error {
	q := w.q
	if q.failed.Load() {
		return w.drain()
	}
	q.batch = append(q.batch, queuedPut{path, k, v, fill, lease})
	if len(q.batch) >= queueBatch {
		q.batches <- q.batch
		q.batch = make([]queuedPut, 0, queueBatch)
	}
	return nil
}

// drain waits until every queued put is done, and returns the first error
// one met. With no queue it returns nil at once.
func (w *dbWriter) drain() error {
	q := w.q
	if q == nil {
		return nil
	}
	if len(q.batch) > 0 {
		q.batches <- q.batch
		q.batch = make([]queuedPut, 0, queueBatch)
	}
	q.batches <- nil
	return <-q.drained
}

// stopQueue drains the queue and ends the writer goroutine: put is
// synchronous again.
func (w *dbWriter) stopQueue() error {
	if w.q == nil {
		return nil
	}
	err := w.drain()
	close(w.q.batches)
	<-w.q.stopped
	w.q = nil
	return err
}
