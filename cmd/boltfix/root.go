package main

import (
	"errors"
	"fmt"
	"io"

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
		Short: "Examine and repair etcd data directories whose bbolt database is corrupted",
		Long: `boltfix reads an etcd bbolt database page by page with its own hardened
parser, so it works on files that make etcd, bbolt check and etcdutl panic.

  boltfix scan member/snap/db                  where is the damage, what does it hold
  boltfix salvage member/snap/db --out new.db  every record still on disk, in a fresh db
  boltfix repair /var/lib/etcd --out DIR       + WAL replay -> a member dir etcd starts from

EXIT STATUS
  0  clean, or complete recovery
  1  damage found, or partial recovery (the report says what was lost)
  2  could not run (usage error, unreadable input)

boltfix never modifies its input.`,
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
	root := NewRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return ExitClean
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "boltfix: %v\n", ee.err)
		}
		return ee.code
	}
	// cobra's own errors: unknown flag, wrong arg count, unknown command.
	fmt.Fprintf(stderr, "boltfix: %v\n", err)
	return ExitCantRun
}
