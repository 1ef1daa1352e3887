// Command boltfix examines and repairs etcd data directories whose bbolt
// database is corrupted. The work lives in the library packages; this command
// only parses flags and renders reports.
package main

import (
	"os"
)

func main() {
	os.Exit(Execute(os.Args[1:], os.Stdout, os.Stderr))
}
