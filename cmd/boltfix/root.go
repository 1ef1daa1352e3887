package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Exit codes, shared by every command.
const (
	ExitClean   = 0 // clean, or complete recovery
	ExitDamage  = 1 // damage found, or partial recovery (the report says what was lost)
	ExitCantRun = 2 // usage error or unreadable input
)

// exitError carries an exit code out of a RunE without printing usage.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// cantRun wraps err as an exit-2 failure.
func cantRun(err error) error { return &exitError{code: ExitCantRun, err: err} }

// damaged signals exit 1 after the report has been printed.
func damaged() error { return &exitError{code: ExitDamage} }

// NewRootCommand builds the boltfix command tree.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "boltfix",
		Short: "Examine and repair corrupted etcd data directories and other bbolt files",
		Long: `boltfix reads an etcd bbolt database (or any bbolt file: containerd's meta.db,
raft-boltdb, ...) page by page with its own hardened parser, so it works on
files that make etcd, bbolt check and etcdutl panic.

  boltfix scan member/snap/db                  where is the damage, what does it hold
  boltfix salvage member/snap/db --out new.db  every record still on disk, in a fresh db
  boltfix repair /var/lib/etcd --out DIR       + WAL replay -> a member dir etcd starts from
  boltfix repair --dry-run /var/lib/etcd --out DIR   the plan, nothing written
  boltfix repair cp-1 cp-2 cp-3 --out DIR      a whole cluster from all its members
  boltfix extract DB --prefix /registry/ --deleted   deleted Kubernetes objects, as manifests

EXIT STATUS
  0  clean, or complete recovery
  1  damage found, or partial recovery (the report says what was lost)
  2  could not run (usage error, unreadable input)

boltfix never modifies its input. Ctrl-C (SIGINT) or SIGTERM stops a
salvage or repair cleanly: temp files are removed, no output is written,
exit 2.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, add := range subcommands {
		root.AddCommand(add())
	}
	return root
}

// subcommands is filled by each command's file in init, so that commands
// can live in files of their own.
var subcommands []func() *cobra.Command

func register(f func() *cobra.Command) { subcommands = append(subcommands, f) }

// Execute runs boltfix with args and returns the process exit code.
func Execute(args []string, stdout, stderr io.Writer) int {
	return ExecuteContext(context.Background(), args, stdout, stderr)
}

// ExecuteContext runs boltfix with args under ctx: when ctx is cancelled
// (main cancels it on SIGINT/SIGTERM) the work stops, temp files are
// removed, nothing is published, and the exit code is 2. A panic (a bug in
// boltfix: hostile bytes become errors, never panics) also exits 2; the
// library's deferred cleanups have removed its temp files by the time the
// panic gets here.
func ExecuteContext(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "boltfix: internal error: %v\n\n%s\n%s\n", r, debug.Stack(), bugRequest)
			code = ExitCantRun
		}
	}()
	root := NewRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitClean
	}
	var ee *exitError
	isExit := errors.As(err, &ee)
	if ctx.Err() != nil && (!isExit || ee.code == ExitCantRun) {
		// Whatever failed after the signal failed because of it (a start
		// check child that got the same Ctrl-C, a cancelled replay).
		fmt.Fprintf(stderr, "boltfix: interrupted: no output written, temp files removed (%v)\n", err)
		return ExitCantRun
	}
	if isExit {
		if ee.err != nil {
			fmt.Fprintf(stderr, "boltfix: %v\n", ee.err)
		}
		return ee.code
	}
	// cobra's own errors: unknown flag, wrong arg count, unknown command.
	fmt.Fprintf(stderr, "boltfix: %v\n", err)
	return ExitCantRun
}

// bugRequest ends the message of a recovered panic.
const bugRequest = `This is a bug in boltfix. Its temp files were removed and its input was not
modified. Please report it with the message above and the output of
'boltfix version' (and, if you can share it, the output of 'boltfix scan --json').`
