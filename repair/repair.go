package repair

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrOutputExists: the output dir exists and is not empty, and Force is off.
var ErrOutputExists = errors.New("output directory exists and is not empty (use --force to replace it)")

// ErrOutputInInput: the output is the input data dir or inside it.
var ErrOutputInInput = errors.New("output is the input data dir or inside it: boltfix never writes into its input")

// CheckOutput refuses an output that would harm the input or an existing
// dir, before any work.
func CheckOutput(dataDir, out string, force bool) error {
	if out == "" {
		return errors.New("no output dir given (--out)")
	}
	ain, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	aout, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(ain, aout); err == nil && (rel == "." || !startsWithDotDot(rel)) {
		return ErrOutputInInput
	}
	if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 && !force {
		return fmt.Errorf("%s: %w", out, ErrOutputExists)
	}
	if st, err := os.Stat(out); err == nil && !st.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", out)
	}
	return nil
}

func startsWithDotDot(rel string) bool {
	return rel == ".." || len(rel) > 2 && rel[:3] == ".."+string(filepath.Separator)
}

// Run repairs the etcd data dir at dataDir into opts.Out: the plan, then
// its execution. The Report is valid whenever err is nil; Complete says
// whether anything was lost.
func Run(dataDir string, opts Options) (*Report, error) {
	p, err := NewPlan(dataDir, opts)
	if err != nil {
		return nil, err
	}
	return p.Execute()
}

// locate finds the db and the WAL dir of dataDir, given as the data dir
// (DATA_DIR/member/{snap,wal}) or as the member dir itself; walDir, if set,
// is etcd's --wal-dir.
func locate(dataDir, walDir string) (db, wdir string) {
	member := filepath.Join(dataDir, "member")
	if _, err := os.Stat(member); err != nil {
		if _, err := os.Stat(filepath.Join(dataDir, "snap")); err == nil {
			member = dataDir // the member dir itself
		}
	}
	db, wdir = filepath.Join(member, "snap", "db"), filepath.Join(member, "wal")
	if walDir != "" {
		wdir = walDir
	}
	return db, wdir
}
