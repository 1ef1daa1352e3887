package outfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckRefuses(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.db")
	if err := os.WriteFile(in, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Check(in, in, true); !errors.Is(err, ErrIsInput) {
		t.Errorf("output == input: %v", err)
	}
	if err := Check(in, filepath.Join(dir, ".", "in.db"), true); !errors.Is(err, ErrIsInput) {
		t.Errorf("output == input by another path: %v", err)
	}
	out := filepath.Join(dir, "out.db")
	if err := os.WriteFile(out, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Check(in, out, false); !errors.Is(err, ErrExists) {
		t.Errorf("existing output without force: %v", err)
	}
	if err := Check(in, out, true); err != nil {
		t.Errorf("existing output with force: %v", err)
	}
	if err := Check(in, filepath.Join(dir, "no", "out.db"), false); err == nil {
		t.Error("missing output dir accepted")
	}
}

func TestWriteFileAndPublishDir(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret.yaml")
	if err := WriteFile(p, []byte("data"), 0o600, false); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	if err := WriteFile(p, []byte("again"), 0o600, false); !errors.Is(err, ErrExists) {
		t.Errorf("existing file without force: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "data" {
		t.Errorf("refused write changed the file: %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temp files left behind: %v", ents)
	}
	src, out := filepath.Join(dir, "src"), filepath.Join(dir, "out")
	for _, d := range []string{src, out} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(out, "old"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := PublishDir(src, out, false); !errors.Is(err, ErrExists) {
		t.Errorf("non-empty output dir without force: %v", err)
	}
	if err := PublishDir(src, out, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "old")); !os.IsNotExist(err) {
		t.Error("forced publish kept the old dir's files")
	}
}
