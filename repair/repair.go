package repair

import (
	"os"
	"path/filepath"

	"github.com/boltfix/boltfix/outfile"
)

// ErrOutputExists: the output dir exists and is not empty, and Force is off.
var ErrOutputExists = outfile.ErrDirExists

// ErrOutputInInput: the output is the input data dir or inside it.
var ErrOutputInInput = outfile.ErrInInput

// CheckOutput refuses an output dir that would harm the input or an
// existing dir, before any work (outfile.CheckDir).
func CheckOutput(dataDir, out string, force bool) error { return outfile.CheckDir(dataDir, out, force) }

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
