package salvage

import "github.com/boltfix/boltfix/outfile"

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
