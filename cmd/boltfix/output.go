package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/boltfix/boltfix/salvage"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// writeJSON prints one indented JSON document: the whole report, so that
// jq can read it at once.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// clip shortens s to n runes for a table cell whose full text is
// elsewhere (--json).
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func section(w io.Writer, title string) {
	fmt.Fprintf(w, "\n%s\n", strings.ToUpper(title))
}

// progress is the Counter (and salvage.Phaser) the commands hand to the
// library: one bar per phase on stderr, with the phase's name, a count and
// an ETA, when stderr is a terminal; nothing otherwise (CI, pipes, --json
// into jq). A phase that counts nothing shows a spinner with its name and
// the time spent.
type progress struct {
	w   io.Writer
	tty bool
	bar *progressbar.ProgressBar
	// times (BOLTFIX_PHASE_TIMES set, for bench/run.sh): each phase's
	// wall time on stderr when it ends.
	times bool
	phase string
	start time.Time
}

func newProgress(stderr io.Writer) *progress {
	f, ok := stderr.(*os.File)
	p := &progress{w: stderr, tty: ok && term.IsTerminal(int(f.Fd())), times: os.Getenv("BOLTFIX_PHASE_TIMES") != ""}
	if p.times {
		// What comes before the first phase is timed too: repair reads
		// the WAL there (and works out the membership from it), before
		// anything that can refuse, so it shows no bar.
		p.phase, p.start = "reading the inputs", time.Now()
	}
	return p
}

// timePhase ends the timed phase, if any, and starts name.
func (p *progress) timePhase(name string) {
	if !p.times {
		return
	}
	now := time.Now()
	if p.phase != "" {
		fmt.Fprintf(p.w, "phase %-32s %7.2fs\n", p.phase, now.Sub(p.start).Seconds())
	}
	p.phase, p.start = name, now
}

// Phase ends the current bar and starts one for phase name of total units
// (-1: unknown).
func (p *progress) Phase(name string, total int64) {
	if p != nil {
		p.timePhase(name)
	}
	if p == nil || !p.tty {
		return
	}
	p.finish()
	if total == 0 {
		return
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(name),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionClearOnFinish(),
	}
	if total > 0 {
		opts = append(opts, progressbar.OptionShowCount())
	} else {
		total = -1
		opts = append(opts, progressbar.OptionSpinnerType(14))
	}
	p.bar = progressbar.NewOptions64(total, opts...)
	_ = p.bar.RenderBlank()
}

func (p *progress) Add(n int64) {
	if p != nil && p.bar != nil {
		_ = p.bar.Add64(n)
	}
}

// Done clears the bar before the report is printed.
func (p *progress) Done() {
	if p != nil {
		p.finish()
		p.timePhase("")
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
		p.bar = nil
	}
}

// The library tells the bar about phases through this interface.
var _ salvage.Phaser = (*progress)(nil)

// maxLostRows bounds the lost ranges the human report lists: a truncated
// db can lose hundreds of ranges, most one revision wide, and a screen of
// them hides what matters. --json keeps every range.
const maxLostRows = 10

// lostTable summarises lost revision ranges: totals, how many are single
// revisions, and the largest ranges first (an open end is the largest);
// to 0 is shown as openEnd.
func lostTable(w io.Writer, ranges [][2]int64, reasons []string, openEnd string) {
	section(w, fmt.Sprintf("lost revisions (%d ranges)", len(ranges)))
	if len(ranges) == 0 {
		fmt.Fprintln(w, "none")
		return
	}
	s := summarizeLost(ranges)
	fmt.Fprintf(w, "%d revisions in %d closed ranges (%d of them single revisions)", s.revisions, len(ranges)-s.open, s.singles)
	if s.open > 0 {
		fmt.Fprintf(w, "; and every revision from %d on", s.openFrom)
	}
	fmt.Fprintln(w)
	var rows [][]string
	for _, i := range s.order[:min(len(s.order), maxLostRows)] {
		lr := ranges[i]
		to, n := openEnd, "open"
		if lr[1] != 0 {
			to, n = strconv.FormatInt(lr[1], 10), strconv.FormatInt(lr[1]-lr[0]+1, 10)
		}
		why := ""
		if i < len(reasons) {
			why = reasons[i]
		}
		rows = append(rows, []string{strconv.FormatInt(lr[0], 10), to, n, why})
	}
	table(w, []string{"FROM", "TO", "REVISIONS", "WHY"}, rows)
	if len(ranges) > maxLostRows {
		fmt.Fprintf(w, "the %d largest of %d ranges; --json lost_revisions lists every one\n", maxLostRows, len(ranges))
	}
}

// lostSummary is what lostTable prints above the rows.
type lostSummary struct {
	revisions, singles, open int
	openFrom                 int64
	order                    []int // range indexes, largest first
}

func summarizeLost(ranges [][2]int64) lostSummary {
	var s lostSummary
	size := func(r [2]int64) int64 {
		if r[1] == 0 {
			return math.MaxInt64
		}
		return r[1] - r[0] + 1
	}
	for i, r := range ranges {
		s.order = append(s.order, i)
		switch {
		case r[1] == 0:
			if s.open == 0 || r[0] < s.openFrom {
				s.openFrom = r[0]
			}
			s.open++
		case r[1] == r[0]:
			s.singles++
			s.revisions++
		default:
			s.revisions += int(r[1] - r[0] + 1)
		}
	}
	sort.SliceStable(s.order, func(a, b int) bool {
		ra, rb := ranges[s.order[a]], ranges[s.order[b]]
		if size(ra) != size(rb) {
			return size(ra) > size(rb)
		}
		return ra[0] < rb[0]
	})
	return s
}

// ledgerTable prints the Kubernetes ledger: per resource, what came back.
func ledgerTable(w io.Writer, ledger []salvage.ResourceLedger) {
	if len(ledger) == 0 {
		return
	}
	section(w, "kubernetes")
	var rows [][]string
	for _, l := range ledger {
		who := "source of truth"
		if l.Regenerated {
			who = "regenerated by controllers"
		}
		rows = append(rows, []string{l.Resource, strconv.Itoa(l.Recovered), strconv.Itoa(l.PossiblyStale), strconv.Itoa(l.LeftOut), strconv.Itoa(l.Deleted), who})
	}
	table(w, []string{"RESOURCE", "RECOVERED", "POSSIBLY STALE", "LEFT OUT", "DELETED", "IF LOST"}, rows)
}
