package main

import (
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"time"
)

// Profiling for the benchmarks (bench/run.sh), off unless asked for by
// environment variables, which no user sets by accident:
//
//	BOLTFIX_CPUPROFILE=cpu.pprof   CPU profile of the whole run
//	BOLTFIX_MEMPROFILE=heap.pprof  heap profile taken near the heap's peak
//	BOLTFIX_TRACE=trace.out        execution trace (go tool trace): where
//	                               goroutines wait, which a CPU profile
//	                               does not show
//
// The heap profile is rewritten whenever the live heap grows by a tenth
// over the last one written (checked every 200 ms), so it shows what was
// live at the peak, not what is left at exit. Read with go tool pprof.
func startProfiles() (stop func()) {
	var stops []func()
	cpu, mem, tr := os.Getenv("BOLTFIX_CPUPROFILE"), os.Getenv("BOLTFIX_MEMPROFILE"), os.Getenv("BOLTFIX_TRACE")
	// Not for the children (repair's start check): they would overwrite
	// the parent's profiles.
	os.Unsetenv("BOLTFIX_CPUPROFILE")
	os.Unsetenv("BOLTFIX_MEMPROFILE")
	os.Unsetenv("BOLTFIX_TRACE")
	if stop := recordTo(tr, trace.Start, trace.Stop); stop != nil {
		stops = append(stops, stop)
	}
	if stop := recordTo(cpu, pprof.StartCPUProfile, pprof.StopCPUProfile); stop != nil {
		stops = append(stops, stop)
	}
	if p := mem; p != "" {
		done := make(chan struct{})
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			var peak uint64
			write := func() {
				if f, err := os.Create(p + ".tmp"); err == nil {
					if pprof.Lookup("heap").WriteTo(f, 0) == nil && f.Close() == nil {
						os.Rename(p+".tmp", p)
					} else {
						f.Close()
					}
				}
			}
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					if peak == 0 {
						write()
					}
					return
				case <-t.C:
				}
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > peak+peak/10 {
					peak = ms.HeapAlloc
					write()
				}
			}
		}()
		stops = append(stops, func() { close(done); <-finished })
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

// recordTo starts a recording (the CPU profile, the execution trace) into
// a new file at path and returns what ends it; nil when path is empty or
// the recording cannot start.
func recordTo(path string, start func(io.Writer) error, end func()) (stop func()) {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil
	}
	if start(f) != nil {
		f.Close()
		return nil
	}
	return func() { end(); f.Close() }
}
