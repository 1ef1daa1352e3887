package repair

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/boltfix/boltfix/salvage"
)

// ErrNotRegularFile: the db or a WAL segment is a FIFO, device or socket.
// Opening a FIFO blocks until a writer appears and a device can be endless,
// so such inputs are refused before anything opens them.
var ErrNotRegularFile = errors.New("not a regular file")

// ErrNothingToRepair: the data dir holds neither a db nor a WAL segment.
var ErrNothingToRepair = errors.New("neither a db nor a WAL: nothing to repair from")

// inputs is what preflight found: where the db and the WAL are, and
// whether each exists.
type inputs struct {
	db, walDir string
	hasDB      bool
	// walMissing: the WAL dir does not exist (a lost WAL disk). Repair
	// then starts from the db alone.
	walMissing bool
}

// preflight runs every check that can refuse a repair (output path, input
// types, membership flags, something to repair from) before any heavy
// work, so a typo costs nothing on a large db. It only stats files.
func preflight(dataDir string, opts Options) (*inputs, error) {
	if err := CheckOutput(dataDir, opts.Out, opts.Force); err != nil {
		return nil, err
	}
	if err := salvage.ValidPageSize(opts.PageSize); err != nil {
		return nil, err
	}
	if st, err := os.Stat(dataDir); err != nil {
		return nil, err
	} else if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a data dir", dataDir)
	}
	if _, _, err := opts.member(); err != nil {
		return nil, err
	}
	if opts.MarkCompacted != nil && *opts.MarkCompacted && opts.BumpRevision != nil && *opts.BumpRevision == 0 {
		return nil, errors.New("--mark-compacted needs --bump-revision > 0")
	}
	in := &inputs{}
	in.db, in.walDir = locate(dataDir, opts.WALDir)
	switch st, err := os.Stat(in.db); {
	case err == nil && !st.Mode().IsRegular():
		return nil, fmt.Errorf("%s: %w (%s)", in.db, ErrNotRegularFile, st.Mode().Type())
	case err == nil:
		in.hasDB = true
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	segments, err := walSegments(in.walDir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && opts.WALDir == "":
		in.walMissing = true
	case err != nil:
		// A --wal-dir the user named must exist.
		return nil, fmt.Errorf("WAL dir: %w", err)
	}
	if !in.hasDB && segments == 0 {
		return nil, fmt.Errorf("%s: %w", dataDir, ErrNothingToRepair)
	}
	return in, nil
}

// walSegments counts the *.wal files of dir, refusing one that is not a
// regular file (wal.Read reads each segment whole).
func walSegments(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".wal") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p)
		if err != nil {
			return 0, err
		}
		if !st.Mode().IsRegular() {
			return 0, fmt.Errorf("%s: %w (%s)", p, ErrNotRegularFile, st.Mode().Type())
		}
		n++
	}
	return n, nil
}

// noWALNote is the warning for a repair from the db alone.
func noWALNote(walDir string, missing bool, index uint64) string {
	what := "no WAL segment in " + walDir
	if missing {
		what = walDir + " does not exist"
	}
	return fmt.Sprintf("no WAL (%s): repaired from the db alone; revisions committed after the db's consistent_index %d may be lost", what, index)
}
