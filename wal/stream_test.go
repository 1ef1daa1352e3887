package wal

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// liveHeap is the heap the last GC found live.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heapPeak samples the live heap until stop is called and returns its
// peak.
func heapPeak() (stop func() uint64) {
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			peak = max(peak, liveHeap())
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return max(peak, liveHeap())
	}
}

// A Log holds no entry data, and Replay reads each entry's as it applies
// it: what either holds of a WAL does not grow with the WAL. 64 MB of
// 2 KiB puts (the shape of a Kubernetes WAL): the Log keeps less than an
// eighth of it once read, and the live heap grows by less than a quarter
// of it during the replay. etcd's backend holds the writes of up to 100 ms
// of applying, or BackendBatchLimit of them, before each commit: tens of
// MB at the default limit on a fast machine, whatever the WAL's size; the
// test sets a small limit so that what it measures is what the replay
// holds of the WAL. Holding the entries, as Read and Replay once did, is
// the whole WAL and more.
func TestReplayStreams(t *testing.T) {
	const n, valueSize, walBytes = 32000, 2000, 32000 * 2048
	dir := putWAL(t, n, valueSize, 500)
	runtime.GC()
	before := liveHeap()
	l, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	runtime.GC()
	kept := int64(liveHeap()) - int64(before)
	t.Logf("a Log of %d entries (%d MB of WAL) keeps %d KB", len(l.Entries), walBytes>>20, kept>>10)
	if len(l.Entries) != n || kept > walBytes/8 {
		t.Fatalf("%d entries; the Log keeps %d bytes of a %d-byte WAL", len(l.Entries), kept, walBytes)
	}
	ents := l.ReplayEntries(0, false)
	runtime.GC()
	before = liveHeap()
	stop := heapPeak()
	res, err := Replay(filepath.Join(t.TempDir(), "db"), ents, ReplayOptions{CommitIndex: l.CommitIndex(), BackendBatchLimit: 256})
	peak := stop()
	if err != nil || res.Applied[KindPut] != n {
		t.Fatal(err, res.Applied)
	}
	grew := int64(peak) - int64(before)
	t.Logf("replay of %d entries: live heap grew by at most %d KB", n, grew>>10)
	if grew > walBytes/4 {
		t.Errorf("the live heap grew by %d bytes during the replay of a %d-byte WAL", grew, walBytes)
	}
}

// Replay reads an entry's data when it gets to it: a record overwritten
// after Read stops the replay there, with what came before applied.
func TestReplayReadsAsItApplies(t *testing.T) {
	dir := putWAL(t, 300, 100, 50)
	l, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	victim := l.Entries[200]
	f, err := os.OpenFile(filepath.Join(dir, victim.Segment), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A byte in the middle of the record: its frame still parses.
	if _, err := f.WriteAt([]byte{0xff}, victim.Offset+frameHeader+victim.recLen/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	res, err := Replay(filepath.Join(t.TempDir(), "db"), l.ReplayEntries(0, false), ReplayOptions{CommitIndex: l.CommitIndex()})
	var le *LoadError
	if !errors.As(err, &le) || !errors.Is(err, ErrEntryChanged) || le.Index != victim.Index {
		t.Fatalf("err %v, want a LoadError at entry %d", err, victim.Index)
	}
	if res.LastApplied != victim.Index-1 || res.ConsistentIndex != victim.Index-1 {
		t.Errorf("applied up to %d (consistent_index %d), want %d", res.LastApplied, res.ConsistentIndex, victim.Index-1)
	}
}
