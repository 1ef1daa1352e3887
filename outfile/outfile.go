// Package outfile is the one place boltfix writes its outputs: a check that
// refuses a bad output path before any work, temp names next to the
// output, and publishing by fsync, rename and a sync of the parent dir, so
// that a crash leaves either no output or a whole one, and the input is
// never written.
package outfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrExists is returned when the output exists and force is off.
var ErrExists = errors.New("output exists (use --force to replace it)")

// ErrIsInput is returned when the output names the input.
var ErrIsInput = errors.New("output is the input: boltfix never writes over its input")

// Check refuses an output that is the input, that exists unless force is
// set, or whose dir does not exist. Callers run it before any work, so a
// typo costs nothing.
func Check(in, out string, force bool) error {
	if out == "" {
		return errors.New("no output path given")
	}
	ist, ierr := os.Stat(in)
	ost, oerr := os.Stat(out)
	if oerr == nil {
		if ierr == nil && os.SameFile(ist, ost) {
			return ErrIsInput
		}
		if !force {
			return fmt.Errorf("%s: %w", out, ErrExists)
		}
		if ost.IsDir() {
			return fmt.Errorf("%s is a directory", out)
		}
	}
	if abs1, err1 := filepath.Abs(in); err1 == nil {
		if abs2, err2 := filepath.Abs(out); err2 == nil && abs1 == abs2 {
			return ErrIsInput
		}
	}
	// The temp file goes next to out: a missing dir would otherwise only
	// fail after all the work.
	if st, err := os.Stat(filepath.Dir(out)); err != nil {
		return fmt.Errorf("output dir: %w", err)
	} else if !st.IsDir() {
		return fmt.Errorf("output dir %s is not a directory", filepath.Dir(out))
	}
	return nil
}

// ErrDirExists: an output dir exists and is not empty, and force is off.
var ErrDirExists = errors.New("output directory exists and is not empty (use --force to replace it)")

// ErrInInput: an output dir is the input dir or inside it.
var ErrInInput = errors.New("output is the input data dir or inside it: boltfix never writes into its input")

// CheckDir refuses an output dir that is the input dir or inside it, that
// is a non-empty dir unless force, or that is not a dir.
func CheckDir(in, out string, force bool) error {
	if out == "" {
		return errors.New("no output dir given (--out)")
	}
	ain, err := filepath.Abs(in)
	if err != nil {
		return err
	}
	aout, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(ain, aout); err == nil && (rel == "." || !startsWithDotDot(rel)) {
		return ErrInInput
	}
	if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 && !force {
		return fmt.Errorf("%s: %w", out, ErrDirExists)
	}
	if st, err := os.Stat(out); err == nil && !st.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", out)
	}
	return nil
}

func startsWithDotDot(rel string) bool {
	return rel == ".." || len(rel) > 2 && rel[:3] == ".."+string(filepath.Separator)
}

// TempPath is a fresh, unused name next to out, so the final rename stays
// on one file system and is atomic.
func TempPath(out string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".boltfix-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	f.Close()
	return name, os.Remove(name)
}

// Publish fsyncs the file tmp, renames it over out and fsyncs the dir.
func Publish(tmp, out string) error {
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
	return SyncDir(filepath.Dir(out))
}

// PublishDir moves the finished dir src into place at out (replacing a
// non-empty out only with force) and fsyncs out's parent. The files in src
// must already be synced.
func PublishDir(src, out string, force bool) error {
	if ents, err := os.ReadDir(out); err == nil {
		if len(ents) > 0 && !force {
			return fmt.Errorf("%s: %w", out, ErrExists)
		}
		if err := os.RemoveAll(out); err != nil {
			return err
		}
	}
	if err := os.Rename(src, out); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(filepath.Clean(out)))
}

// WriteFile writes data to path with perm through a synced temp file next
// to it, refusing an existing path unless force.
func WriteFile(path string, data []byte, perm os.FileMode, force bool) error {
	if _, err := os.Stat(path); err == nil && !force {
		return fmt.Errorf("%s: %w", path, ErrExists)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".boltfix-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := Publish(tmp, path); err != nil {
		return err
	}
	ok = true
	return nil
}

// SyncDir fsyncs a directory, so a rename in it survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// CopyFile copies src to a new file dst (0600; dst must not exist).
func CopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// CopyDir copies a directory tree of regular files.
func CopyDir(src, dst string) error {
	return filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		return CopyFile(p, target)
	})
}
