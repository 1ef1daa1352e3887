// Command boltfix examines and repairs etcd data directories whose bbolt
// database is corrupted. The work lives in the library packages; this command
// only parses flags and renders reports.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// The first SIGINT/SIGTERM cancels the work, which then removes its
	// temp files and exits 2; a second one kills at once (stop restores
	// the default handling), for a user who will not wait for cleanup.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	os.Exit(ExecuteContext(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
