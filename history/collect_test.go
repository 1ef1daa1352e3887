package history

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/boltfix/boltfix/bench/etcdgen"
	"github.com/boltfix/boltfix/pagewalk"
)

// Collect on an etcd-shaped db finds every reached record once, and a
// cancelled context ends it with the context's error.
func TestCollectCountsAndCancel(t *testing.T) {
	p := filepath.Join(t.TempDir(), "db")
	if _, err := etcdgen.Generate(p, etcdgen.Config{Records: 300, Batch: 50, PageSize: 1024, CompactEvery: 2, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	f, err := pagewalk.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := f.Scan(pagewalk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := Collect(res, Options{})
	if err != nil {
		t.Fatal(err)
	}
	kb := res.Bucket("key")
	if kb == nil || h.Reached != kb.Records || h.Records < h.Reached || h.FileChanged {
		t.Fatalf("reached %d of the tree's %d records; %d in all; changed %v", h.Reached, kb.Records, h.Records, h.FileChanged)
	}
	live := 0
	for _, k := range h.Keys {
		if k.State == Live {
			live++
		}
	}
	if live == 0 {
		t.Fatal("no live key")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Collect(res, Options{Context: ctx}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
