package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
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

// table renders rows under headers with tablewriter v1.
func table(w io.Writer, headers []string, rows [][]string) {
	t := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
	)
	h := make([]any, len(headers))
	for i, s := range headers {
		h[i] = s
	}
	t.Header(h...)
	for _, r := range rows {
		_ = t.Append(r)
	}
	_ = t.Render()
}

// clip shortens s for a table cell.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func section(w io.Writer, title string) {
	fmt.Fprintf(w, "\n%s\n", strings.ToUpper(title))
}

// progress is a pagewalk/salvage Counter drawing a bar on stderr when it is
// a terminal, and nothing otherwise.
type progress struct{ bar *progressbar.ProgressBar }

func (p *progress) Add(n int64) {
	if p != nil && p.bar != nil {
		_ = p.bar.Add64(n)
	}
}

func (p *progress) Done() {
	if p != nil && p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
	}
}

// newProgress returns a bar of max units on stderr, or a silent counter
// when stderr is not a terminal (CI, pipes, --json into jq).
func newProgress(stderr io.Writer, max int64, what string) *progress {
	f, ok := stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || max <= 0 {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionClearOnFinish(),
	)}
}

// lostTable prints lost revision ranges; to 0 is shown as openEnd.
func lostTable(w io.Writer, ranges [][2]int64, reasons []string, openEnd string) {
	section(w, fmt.Sprintf("lost revisions (%d ranges)", len(ranges)))
	if len(ranges) == 0 {
		fmt.Fprintln(w, "none")
		return
	}
	var rows [][]string
	for i, lr := range ranges {
		to := openEnd
		if lr[1] != 0 {
			to = strconv.FormatInt(lr[1], 10)
		}
		rows = append(rows, []string{strconv.FormatInt(lr[0], 10), to, clip(reasons[i], 100)})
	}
	table(w, []string{"FROM", "TO", "WHY"}, rows)
}
