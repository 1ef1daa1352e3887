// Command boltfix examines and repairs etcd data directories whose bbolt
// database is corrupted. The work lives in the library packages; this command
// only parses flags and renders reports.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// softMemoryLimit is the Go runtime's soft memory limit unless GOMEMLIMIT
// is set: with the default GOGC alone, the heap of a salvage grows to
// twice what is live before a collection. The node that needs boltfix has
// a few GB; near the limit the collector runs more often instead of the
// heap growing. When what is live exceeds it (a salvage of a 4 GiB db,
// measured: 655 MiB anonymous in 80 s, against 953 MiB in 26 s with
// GOMEMLIMIT=off GOGC=50) the collector runs almost continuously: memory
// is bought with CPU. GOMEMLIMIT=off restores Go's default.
const softMemoryLimit = 384 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(softMemoryLimit)
	}
	// The first SIGINT/SIGTERM cancels the work, which then removes its
	// temp files and exits 2; a second one kills at once (stop restores
	// the default handling), for a user who will not wait for cleanup.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	stopProfiles := startProfiles()
	code := ExecuteContext(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfiles()
	os.Exit(code)
}
