package salvage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/boltfix/boltfix/pagewalk"
)

// txBytes bounds the data written per bbolt transaction: large enough that
// commits are few, small enough that dirty nodes stay well under the
// memory budget. A variable for the tests, which commit far more often
// (poison_test.go).
var txBytes = 16 << 20

// lentReturnSlack is 0 and queuePuts true but in TestLentBuffersPoisoned,
// which gives read chunks back too early, with the puts made on the
// judging goroutine so that it happens at a set point (a chunk poisoned
// while a record in it is being judged would change its key between two
// reads, and crash the judging instead of showing wrong values); the
// chunks given back early are then not reused (Lender.Discard).
var (
	lentReturnSlack pagewalk.Lease
	queuePuts       = true
)

// poisonLentBuffers is set by the package's tests: a read buffer given
// back while a record in it is still in use then writes garbage that the
// tests' comparisons with the truth catch.
var poisonLentBuffers = false

// maxInitialMmap bounds the mapping reserved up front (address space, not
// memory).
const maxInitialMmap = 1 << 40

// dbWriter writes the new file with bbolt, in large transactions, with no
// fsync until the end (publish does the one fsync).
type dbWriter struct {
	db      *bolt.DB
	tx      *bolt.Tx
	pending int
	// ctx, if set, is checked at every commit: an interrupt stops the
	// copy within one transaction's worth of records.
	ctx context.Context
	// done: closed or aborted; abort is then a no-op.
	done bool
	// flush writes committed data back to disk while the next
	// transactions are built (see writeBack).
	flush *writeBack
	// q, while set, queues puts to a goroutine of their own (writequeue.go).
	q *putQueue
	// progress, if set, is told about records written, a batch at a time.
	progress Counter
	unshown  int64
	// bkt is the bucket at bktPath (a copy) in the open transaction: puts
	// come in long runs to one bucket, and looking it up again costs the
	// writer goroutine, the salvage's slowest, a map lookup per level.
	bkt     *bolt.Bucket
	bktPath [][]byte
	// lender, if set, lent the read buffers of the records put with a
	// lease (putLent); held is the newest lease put so far (leases grow
	// with the puts). bbolt holds every value it is given until the
	// commit: after it, the buffers of the leases before held are given
	// back (a record of lease held itself may still be on its way).
	lender *pagewalk.Lender
	held   pagewalk.Lease
}

// progressBatch is how many records the progress counter is told about at
// once: a bar redraw per record would cost more than the record.
const progressBatch = 4096

// newDBWriter creates the bbolt file at path with pages of pageSize bytes
// (OutputPageSize); sizeHint is about how large it will grow (the input's
// size): bbolt maps that much at once instead of remapping as the file
// grows, each remap a copy of every node in memory.
func newDBWriter(path string, sizeHint int64, pageSize int) (*dbWriter, error) {
	db, err := bolt.Open(path, 0600, &bolt.Options{
		Timeout:         time.Second,
		NoFreelistSync:  true, // as etcd opens it
		FreelistType:    bolt.FreelistMapType,
		NoGrowSync:      true,
		InitialMmapSize: int(min(max(sizeHint, 0), maxInitialMmap)),
		PageSize:        pageSize,
	})
	if err != nil {
		return nil, err
	}
	db.NoSync = true
	return &dbWriter{db: db, flush: startWriteBack(path)}, nil
}

func (w *dbWriter) begin() error {
	if w.tx != nil {
		return nil
	}
	tx, err := w.db.Begin(true)
	if err != nil {
		return err
	}
	w.tx, w.pending = tx, 0
	return nil
}

// bucket returns (creating) the bucket at path in the open transaction.
// Sequential revision keys fill pages completely.
func (w *dbWriter) bucket(path [][]byte) (*bolt.Bucket, error) {
	if err := w.drain(); err != nil {
		return nil, err
	}
	return w.bucketNow(path)
}

func (w *dbWriter) bucketNow(path [][]byte) (*bolt.Bucket, error) {
	if err := w.begin(); err != nil {
		return nil, err
	}
	if len(path) == 0 {
		return nil, fmt.Errorf("empty bucket path")
	}
	if w.bkt != nil && slices.EqualFunc(path, w.bktPath, bytes.Equal) {
		return w.bkt, nil
	}
	b, err := w.tx.CreateBucketIfNotExists(path[0])
	if err != nil {
		return nil, err
	}
	for _, p := range path[1:] {
		if b, err = b.CreateBucketIfNotExists(p); err != nil {
			return nil, err
		}
	}
	w.bkt, w.bktPath = b, cloneBucketPath(path)
	return b, nil
}

// put stores k=v in the bucket at path, committing when the transaction
// holds enough data. bbolt keeps k and v until commit: callers pass
// copies they do not reuse.
func (w *dbWriter) put(path [][]byte, k, v []byte, fill float64) error {
	return w.putLent(path, k, v, fill, 0)
}

// putLent is put for a record that lies in a buffer w.lender lent under
// lease: the buffer goes back once a commit holds the record.
func (w *dbWriter) putLent(path [][]byte, k, v []byte, fill float64, lease pagewalk.Lease) error {
	if w.q != nil {
		return w.queuePut(path, k, v, fill, lease)
	}
	return w.putNow(path, k, v, fill, lease)
}

func (w *dbWriter) putNow(path [][]byte, k, v []byte, fill float64, lease pagewalk.Lease) error {
	b, err := w.bucketNow(path)
	if err != nil {
		return err
	}
	b.FillPercent = fill
	if err := b.Put(k, v); err != nil {
		return err
	}
	w.pending += len(k) + len(v)
	w.held = max(w.held, lease)
	if w.unshown++; w.unshown >= progressBatch && w.progress != nil {
		w.progress.Add(w.unshown)
		w.unshown = 0
	}
	if w.pending >= txBytes {
		if err := Interrupted(w.ctx, "writing records"); err != nil {
			return err
		}
		return w.commitNow()
	}
	return nil
}

// cloneBucketPath copies path: the caller may reuse its slices.
func cloneBucketPath(path [][]byte) [][]byte {
	out := make([][]byte, len(path))
	for i, p := range path {
		out[i] = bytes.Clone(p)
	}
	return out
}

func (w *dbWriter) commit() error {
	if err := w.drain(); err != nil {
		return err
	}
	return w.commitNow()
}

func (w *dbWriter) commitNow() error {
	if w.tx == nil {
		return nil
	}
	err := w.tx.Commit()
	w.tx, w.bkt = nil, nil
	if err == nil {
		w.flush.kick()
		if w.lender != nil {
			w.lender.ReturnBefore(w.held + lentReturnSlack)
		}
	}
	return err
}

// close commits, syncs once and closes. The last commit writes bbolt's
// freelist: without it, every later open of the file (etcd's, the
// restore's, the repair's audit) walks the whole tree to find the free
// pages, seconds on a db of a few GiB. etcd takes the freelist from the
// page and stops syncing it at its first commit.
func (w *dbWriter) close() error {
	w.done = true
	err := w.stopQueue()
	if err != nil && w.tx != nil {
		// A queued put failed inside the open transaction: bbolt's Close
		// would wait for it forever.
		_ = w.tx.Rollback()
		w.tx, w.bkt = nil, nil
	}
	if err == nil {
		err = w.begin()
	}
	if err == nil {
		w.db.NoFreelistSync = false
		err = w.commit()
	}
	if ferr := w.flush.stop(); err == nil {
		err = ferr
	}
	if err == nil {
		err = w.db.Sync()
	}
	if cerr := w.db.Close(); err == nil {
		err = cerr
	}
	return err
}

func (w *dbWriter) abort() {
	if w.done {
		return
	}
	w.done = true
	_ = w.stopQueue()
	_ = w.flush.stop()
	if w.tx != nil {
		_ = w.tx.Rollback()
		w.tx, w.bkt = nil, nil
	}
	_ = w.db.Close()
}

// CheckMapped is verify keeping bbolt's mapped pages resident: for a
// caller that has mapped the whole file already (repair: etcd's backend
// maps the db it restores with MAP_POPULATE), so dropping them would lower
// no peak and only slow the check (0.7 s of 5 on a 5 GiB db).
func CheckMapped(path string) error { return check(path, false) }

// verify opens the written file with bbolt and runs its own consistency
// check: the output must be a healthy file.
func verify(path string) error { return check(path, true) }

func check(path string, drop bool) error {
	db, err := bolt.Open(path, 0400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	// tx.Check touches every page of bbolt's mapping; on a multi-GiB output
	// those mapped pages count against the process (and a container's
	// memory limit). Drop them as the check goes: they fault back in from
	// the page cache when bbolt needs them again.
	if st, err := os.Stat(path); err == nil && drop {
		defer dropMappedPages(db.Info().Data, st.Size())()
	}
	return db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
}
