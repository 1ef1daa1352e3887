//go:build linux

package pagewalk

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps the size bytes of fh read-only and shared (no copy of the
// pages, no write possible); nil when it cannot (the census then reads
// with pread).
func mapFile(fh *os.File, size int64) []byte {
	if size <= 0 || int64(int(size)) != size {
		return nil
	}
	rc, err := fh.SyscallConn()
	if err != nil {
		return nil
	}
	var m []byte
	if cerr := rc.Control(func(fd uintptr) {
		m, err = unix.Mmap(int(fd), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	}); cerr != nil || err != nil {
		return nil
	}
	return m
}

func unmapFile(m []byte) { _ = unix.Munmap(m) }

// populateMapped maps b's pages in from the page cache (reading them from
// the disk first if they are not there) in one call, instead of a fault
// every few pages. Errors are ignored (kernels before 5.14 do not know
// MADV_POPULATE_READ): the pages then fault in as they are read.
func populateMapped(b []byte) { _ = unix.Madvise(b, unix.MADV_POPULATE_READ) }

// dropMapped unmaps b's pages from the process (they stay in the page
// cache): a scan of a multi-GiB file keeps a few chunks resident, not the
// file.
func dropMapped(b []byte) { _ = unix.Madvise(b, unix.MADV_DONTNEED) }
