package salvage

import "os"

// writeBack starts the disk writing a file being written, in the
// background, so the disk writes the data committed so far while the CPU
// builds what comes next.
//
// bbolt's own fsync per commit is off (NoSync): each would stall the copy
// until the disk caught up. Without any sync until the end, a machine with
// plenty of RAM keeps every written page dirty in the page cache (the
// kernel starts writing back only past dirty_background_ratio, 10% of
// RAM) and the one fsync at the end then waits for the whole file: the
// copy's CPU time and the disk's time add up instead of overlapping.
// After every commit a goroutine asks for the dirty pages to be written
// (startWriting, from a second descriptor); the final fsync finds most of
// the file on disk already, and it is the one that makes the file durable.
//
// On Linux the ask is sync_file_range(SYNC_FILE_RANGE_WRITE): it starts
// the writeback and returns, where an fsync per commit also waited for it
// and for a journal commit each time, and its journal commits held up
// bbolt's page writes (1 to 2 s of a 13 s copy of a 5 GiB db). Elsewhere
// it is an fsync.
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
		if err := startWriting(wb.f); err != nil && wb.err == nil {
			wb.err = err
		}
	}
}

// kick asks for everything written so far to be written back; it never
// blocks: an ask not yet taken up covers this one too.
func (wb *writeBack) kick() {
	if wb == nil || wb.closed {
		return
	}
	select {
	case wb.wake <- struct{}{}:
	default:
	}
}

// stop waits for the writeback ask under way and returns the first error
// one met (a failed fsync can lose data written before it: the caller
// must not trust the file). It does not make the file durable: the
// caller's final fsync does.
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
