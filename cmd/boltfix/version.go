package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// VersionSchema names the JSON schema of `boltfix version --json`.
const VersionSchema = "boltfix.version/v1"

// VersionInfo is what `boltfix version` prints: enough to reproduce a bug
// report (which boltfix, built how, with which bbolt and etcd code).
type VersionInfo struct {
	Schema string `json:"schema"`
	// Version is the main module's version: a tag for `go install
	// ...@vX`, "(devel)" for a build from a checkout.
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from, "" when the
	// build did not record one (go install from the proxy, go run).
	Commit string `json:"commit"`
	// CommitTime is the revision's commit time (RFC 3339), if recorded.
	CommitTime string `json:"commit_time,omitempty"`
	// Modified: the working tree had uncommitted changes.
	Modified  bool   `json:"modified"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
	// Bbolt and Etcd are the versions of go.etcd.io/bbolt and
	// go.etcd.io/etcd/server/v3 linked in: the code that writes the new db
	// and replays the WAL.
	Bbolt string `json:"bbolt"`
	Etcd  string `json:"etcd"`
}

// Modules whose versions `boltfix version` reports.
const (
	bboltModule = "go.etcd.io/bbolt"
	etcdModule  = "go.etcd.io/etcd/server/v3"
)

// readVersion reads the build info the Go linker embeds in every binary.
func readVersion() VersionInfo {
	v := VersionInfo{Schema: VersionSchema, Version: "unknown", GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, Bbolt: "unknown", Etcd: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	v.GoVersion = bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.CommitTime = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	for _, d := range bi.Deps {
		m := d
		if d.Replace != nil {
			// A replaced module reports the replacement's version.
			m = d.Replace
		}
		switch d.Path {
		case bboltModule:
			v.Bbolt = m.Version
		case etcdModule:
			v.Etcd = m.Version
		}
	}
	return v
}

func init() { register(newVersionCommand) }

func newVersionCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the boltfix version, commit, Go version and the bbolt and etcd versions it links",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := readVersion()
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), v); err != nil {
					return cantRun(err)
				}
				return nil
			}
			printVersion(cmd.OutOrStdout(), v)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document (schema "+VersionSchema+")")
	return cmd
}

func printVersion(w io.Writer, v VersionInfo) {
	commit := v.Commit
	if commit == "" {
		commit = "not recorded"
	}
	if v.Modified {
		commit += " (with uncommitted changes)"
	}
	if v.CommitTime != "" {
		commit += ", " + v.CommitTime
	}
	fmt.Fprintf(w, "boltfix %s\n", v.Version)
	fmt.Fprintf(w, "  commit  %s\n", commit)
	fmt.Fprintf(w, "  go      %s %s\n", v.GoVersion, v.Platform)
	fmt.Fprintf(w, "  bbolt   %s\n", v.Bbolt)
	fmt.Fprintf(w, "  etcd    %s\n", v.Etcd)
}
