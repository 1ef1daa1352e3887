package salvage

import (
	"context"
	"fmt"
)

// InterruptedError: the caller's context was cancelled (the CLI cancels it
// on SIGINT/SIGTERM) and the work stopped at Phase. Nothing was published:
// the temp output was removed. It unwraps to the context's error, so
// errors.Is(err, context.Canceled) holds.
type InterruptedError struct {
	Phase string
	Err   error
}

func (e *InterruptedError) Error() string { return fmt.Sprintf("interrupted while %s", e.Phase) }
func (e *InterruptedError) Unwrap() error { return e.Err }

// Interrupted returns an *InterruptedError naming phase when ctx is done,
// and nil otherwise. A nil ctx is never done.
func Interrupted(ctx context.Context, phase string) error {
	if ctx == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return &InterruptedError{Phase: phase, Err: err}
	}
	return nil
}
