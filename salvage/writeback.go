package salvage

import "os"

// writeBack syncs a file being written in the background, so the disk
// writes the data committed so far while the CPU builds what comes next.
//
// bbolt's own fsync per commit is off (NoSync): each would stall the copy
// until the disk caught up. Without any sync until the end, a machine with
// plenty of RAM keeps every written page dirty in the page cache (the
// kernel starts writing back only past dirty_background_ratio, 10% of
// RAM) and the one fsync at the end then waits for the whole file: the
// copy's CPU time and the disk's time add up instead of overlapping.
// Syncing from a second descriptor in a goroutine after every commit
// overlaps them; the final sync has only the last transaction left.
type writeBack struct {
	f      *os.File
	wake   chan struct{}
	done   chan struct{}
	err    error // the first failed sync, read after done is closed
	closed bool
}

// startWriteBack opens path for syncing; nil (a no-op) if it cannot: the
// final sync still makes the file durable, only later.
func startWriteBack(path string) *writeBack {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	wb := &writeBack{f: f, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go wb.run()
	return wb
}

func (wb *writeBack) run() {
	defer close(wb.done)
	for range wb.wake {
		if err := wb.f.Sync(); err != nil && wb.err == nil {
			wb.err = err
		}
	}
}

// kick asks for a sync of everything written so far; it never blocks: a
// sync already asked for and not yet started covers this one too.
func (wb *writeBack) kick() {
	if wb == nil || wb.closed {
		return
	}
	select {
	case wb.wake <- struct{}{}:
	default:
	}
}

// stop waits for the sync under way and returns the first error a sync
// met (a failed fsync can lose data written before it: the caller must
// not trust the file).
func (wb *writeBack) stop() error {
	if wb == nil || wb.closed {
		return nil
	}
	wb.closed = true
	close(wb.wake)
	<-wb.done
	if err := wb.f.Close(); wb.err == nil {
		wb.err = err
	}
	return wb.err
}
