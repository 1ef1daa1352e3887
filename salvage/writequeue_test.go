package salvage

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Queued puts land in order, as synchronous ones do; a put that fails on
// the writer goroutine (here, the interrupt checked at a commit) stops the
// caller at a later put, and neither close nor abort waits forever on the
// transaction it left open.
func TestWriteQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	w, err := newDBWriter(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	bk := [][]byte{[]byte("b")}
	w.startQueue()
	const n = 5000
	for i := range n {
		k := []byte{byte(i >> 8), byte(i)}
		if err := w.put(bk, k, make([]byte, 4096), 1.0); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	_ = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bk[0]).ForEach(func(k, _ []byte) error {
			if int(k[0])<<8|int(k[1]) != got {
				t.Fatalf("record %d out of order: key %x", got, k)
			}
			got++
			return nil
		})
	})
	db.Close()
	if got != n {
		t.Fatalf("%d records written, want %d", got, n)
	}

	for _, end := range []string{"close", "abort"} {
		w, err := newDBWriter(filepath.Join(t.TempDir(), "i.db"), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		w.ctx = ctx
		w.startQueue()
		var putErr error
		// Enough puts to fill a transaction past the queue.
		for i := 0; i < 4*(txBytes/4096+queueBatch*(queueDepth+1)) && putErr == nil; i++ {
			putErr = w.put(bk, []byte{byte(i >> 16), byte(i >> 8), byte(i)}, make([]byte, 4096), 1.0)
		}
		var ie *InterruptedError
		if !errors.As(putErr, &ie) {
			t.Fatalf("%s: a put after the interrupt returned %v, want the interrupt", end, putErr)
		}
		done := make(chan error, 1)
		go func() {
			if end == "abort" {
				w.abort()
				done <- nil
				return
			}
			done <- w.close()
		}()
		select {
		case err := <-done:
			if end == "close" && !errors.As(err, &ie) {
				t.Errorf("close after a failed put returned %v, want the interrupt", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s hangs after a failed put", end)
		}
	}
}
