package wal

import (
	"math"
	"os"
	"runtime/debug"
	"sync"
)

// etcd's store keeps an index of every key in memory (mvcc's treeIndex,
// a few hundred bytes a key, all of it pointers), rebuilt from every
// record when the store opens. The boltfix command runs under a soft
// memory limit (cmd/boltfix: 384 MiB) that keeps its own tables' heap
// small; with etcd's index live above it, the collector runs without a
// pause, on a 5 GiB db 100 s of CPU in a 70 s replay. While a replay (or
// an etcd started in this process) holds such an index, the default limit
// is lifted and GOGC alone paces the collector. A GOMEMLIMIT the user set
// is kept.

var relaxed struct {
	sync.Mutex
	n         int   // callers holding the limit lifted
	saved     int64 // the limit before the first of them
	savedGOGC int
}

// relaxedGOGC paces the collector while the limit is lifted: the heap
// grows to 1.5 times what is live (the index, mostly) instead of twice.
const relaxedGOGC = 50

// RelaxMemoryLimit lifts the process's default soft memory limit until the
// returned function is called (calls may nest and overlap).
func RelaxMemoryLimit() (restore func()) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	relaxed.Lock()
	if relaxed.n == 0 {
		relaxed.saved = debug.SetMemoryLimit(math.MaxInt64)
		relaxed.savedGOGC = debug.SetGCPercent(relaxedGOGC)
	}
	relaxed.n++
	relaxed.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			relaxed.Lock()
			if relaxed.n--; relaxed.n == 0 {
				debug.SetMemoryLimit(relaxed.saved)
				debug.SetGCPercent(relaxed.savedGOGC)
			}
			relaxed.Unlock()
		})
	}
}
