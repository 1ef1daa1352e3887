package salvage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrOutputExists is returned when the output exists and Force is off.
var ErrOutputExists = errors.New("output exists (use --force to replace it)")

// ErrOutputIsInput is returned when the output names the input file.
var ErrOutputIsInput = errors.New("output is the input: boltfix never writes over its input")

// CheckOutput refuses an output that is the input, or that exists unless
// force is set. It is called before any work so a typo costs nothing.
func CheckOutput(in, out string, force bool) error {
	if out == "" {
		return errors.New("no output path given")
	}
	ist, ierr := os.Stat(in)
	ost, oerr := os.Stat(out)
	if oerr == nil {
		if ierr == nil && os.SameFile(ist, ost) {
			return ErrOutputIsInput
		}
		if !force {
			return fmt.Errorf("%s: %w", out, ErrOutputExists)
		}
		if ost.IsDir() {
			return fmt.Errorf("%s is a directory", out)
		}
	}
	if abs1, err1 := filepath.Abs(in); err1 == nil {
		if abs2, err2 := filepath.Abs(out); err2 == nil && abs1 == abs2 {
			return ErrOutputIsInput
		}
	}
	// The temp file goes next to out: a missing dir would otherwise only
	// fail after the scan and the carving.
	if st, err := os.Stat(filepath.Dir(out)); err != nil {
		return fmt.Errorf("output dir: %w", err)
	} else if !st.IsDir() {
		return fmt.Errorf("output dir %s is not a directory", filepath.Dir(out))
	}
	return nil
}

// tempPath is a fresh name next to out, so the final rename stays on one
// file system and is atomic.
func tempPath(out string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".boltfix-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	f.Close()
	return name, os.Remove(name)
}

// publish fsyncs tmp, renames it over out and fsyncs the directory, so a
// crash leaves either no output or a whole one.
func publish(tmp, out string) error {
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(out))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
