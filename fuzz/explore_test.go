package fuzz

import (
	"bytes"
	"testing"
	"time"

	"github.com/boltfix/boltfix/pagewalk"
)

func TestExploreCrafted(t *testing.T) {
	for _, n := range []int{64 << 10, 256 << 10, 1 << 20} {
		for name, b := range map[string][]byte{
			"overlapping": overlappingKeysFile(n, uint16(min(0xFFFF, n/32/16))),
			"stacked":     stackedOverflowFile(n),
			"rootcands":   rootCandidatesFile(n),
		} {
			start := time.Now()
			var fds int
			got := measureAlloc(func() {
				f, err := pagewalk.NewFile(bytes.NewReader(b), int64(len(b)))
				if err != nil {
					t.Log(name, err)
					return
				}
				r, err := f.Scan(pagewalk.Options{Deep: true})
				if err != nil {
					t.Log(name, err)
					return
				}
				fds = len(r.Report.Findings)
			})
			t.Logf("%s %d: alloc %d (%.0f/byte, budget %d) in %v, %d findings", name, n, got, float64(got)/float64(n), allocBudget(n), time.Since(start), fds)
		}
	}
}
