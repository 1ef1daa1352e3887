package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/boltfix/boltfix/wal"
)

// ErrNotRegularFile: an input is a FIFO, device, socket or directory where
// a file is needed. Opening a FIFO blocks until a writer appears, and a
// device can be endless, so such inputs are refused before they are opened.
var ErrNotRegularFile = errors.New("not a regular file")

// checkRegularFile refuses anything but a regular file (a symlink to one is
// fine). os.Stat never opens the file, so it cannot block on a FIFO.
func checkRegularFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: %w (%s)", path, ErrNotRegularFile, fileKind(st.Mode()))
	}
	return nil
}

// fileKind names a mode's file type for an error message.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m.IsDir():
		return "a directory"
	}
	return "mode " + m.String()
}

// checkWALInput refuses, before wal.Read opens anything, a WAL dir holding a
// segment that is not a regular file: wal.Read reads each segment whole.
func checkWALInput(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory (want a data dir, member dir or WAL dir)", dir)
	}
	walDir := wal.Dir(dir)
	ents, err := os.ReadDir(walDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".wal") {
			if err := checkRegularFile(filepath.Join(walDir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
