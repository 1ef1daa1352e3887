package salvage

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriting starts the writeback of f's dirty pages and does not wait
// for it (writeBack). Errors of the writeback itself come back from the
// final fsync.
func startWriting(f *os.File) error {
	return unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}
