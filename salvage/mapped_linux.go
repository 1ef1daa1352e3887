package salvage

import (
	"syscall"
	"time"
)

// dropMappedPages advises the kernel every few milliseconds that the
// read-only shared mapping at addr (size bytes) is not needed, until the
// returned stop function is called. For a read-only file mapping this is
// safe at any moment: a later access reads the page from the page cache
// again. Errors are ignored: this only trims resident memory.
func dropMappedPages(addr uintptr, size int64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				syscall.Syscall(syscall.SYS_MADVISE, addr, uintptr(size), syscall.MADV_DONTNEED)
			}
		}
	}()
	return func() { close(done); <-finished }
}
