package main

import (
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"testing"
)

// requiredVersion reads module's version from the repository's go.mod: the
// build info must report exactly what go.mod pins.
func requiredVersion(t *testing.T, module string) string {
	t.Helper()
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == module {
			return f[1]
		}
	}
	t.Fatalf("%s not in go.mod", module)
	return ""
}

func TestVersion(t *testing.T) {
	code, out, errOut := runCLI("version", "--json")
	if code != ExitClean {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var v VersionInfo
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.Schema != VersionSchema || v.GoVersion != runtime.Version() || v.Version == "" {
		t.Errorf("version: %+v", v)
	}
	if want := requiredVersion(t, bboltModule); v.Bbolt != want {
		t.Errorf("bbolt %q, go.mod requires %q", v.Bbolt, want)
	}
	if want := requiredVersion(t, etcdModule); v.Etcd != want {
		t.Errorf("etcd %q, go.mod requires %q", v.Etcd, want)
	}
	code, out, _ = runCLI("version")
	if code != ExitClean || !strings.Contains(out, "bbolt   "+v.Bbolt) || !strings.Contains(out, "etcd    "+v.Etcd) {
		t.Errorf("human form: exit %d\n%s", code, out)
	}
	if code, _, _ := runCLI("version", "extra"); code != ExitCantRun {
		t.Errorf("version with an argument: exit %d", code)
	}
}
