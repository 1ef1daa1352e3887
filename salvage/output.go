package salvage

import (
	"os"

	"github.com/boltfix/boltfix/outfile"
	"github.com/boltfix/boltfix/pagewalk"
)

// ErrOutputExists is returned when the output exists and Force is off.
var ErrOutputExists = outfile.ErrExists

// ErrOutputIsInput is returned when the output names the input file.
var ErrOutputIsInput = outfile.ErrIsInput

// CheckOutput refuses an output that is the input, that exists unless force
// is set, or whose dir is missing (outfile.Check). It is called before any
// work so a typo costs nothing.
func CheckOutput(in, out string, force bool) error { return outfile.Check(in, out, force) }

func tempPath(out string) (string, error) { return outfile.TempPath(out) }

func publish(tmp, out string) error { return outfile.Publish(tmp, out) }

// openOutput starts the new db for out: a bbolt writer on a temp file next
// to it (publish moves it into place), sized for res's file, stopping at
// opts.Context's end. The caller removes tmp unless it publishes it.
func openOutput(out string, res *pagewalk.Result, opts Options) (tmp string, w *dbWriter, err error) {
	if tmp, err = tempPath(out); err != nil {
		return "", nil, err
	}
	if w, err = newDBWriter(tmp, res.File.Size(), OutputPageSize(res.File.PageSize, opts.PageSize)); err != nil {
		os.Remove(tmp) // what a failed open may have created
		return "", nil, err
	}
	w.ctx = opts.Context
	return tmp, w, nil
}
