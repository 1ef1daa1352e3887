package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// reportWidth is the terminal width the human reports are laid out for:
// every table and every line of prose fits in it. (Copy-and-paste commands
// are the exception: a command broken over lines would not paste.)
const reportWidth = 100

// minColumn is the narrowest a wrapped column gets, so a cell never turns
// into a column of single words.
const minColumn = 12

// table renders rows under headers with tablewriter v1, within
// reportWidth: when the cells do not fit, the widest columns are narrowed
// to one shared width and their cells wrapped at word boundaries (so a
// long explanation wraps inside its cell instead of making the terminal
// wrap the whole table). tablewriter's own MaxWidth leaves cells with long
// words wider than asked, hence the wrapping here.
func table(w io.Writer, headers []string, rows [][]string) {
	widths := fitColumns(headers, rows, reportWidth)
	t := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
		tablewriter.WithTrimSpace(tw.Off),
	)
	h := make([]any, len(headers))
	for i, s := range headers {
		h[i] = wrapCell(s, widths[i])
	}
	t.Header(h...)
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			if i < len(widths) {
				c = wrapCell(c, widths[i])
			}
			cells[i] = c
		}
		_ = t.Append(cells)
	}
	_ = t.Render()
}

// fitColumns returns each column's content width so that the table (one
// border and two spaces of padding per column, plus the closing border)
// fits in total: the natural widths when they fit, else the columns wider
// than a cap are cut to it, the cap being the largest that fits.
func fitColumns(headers []string, rows [][]string, total int) []int {
	n := len(headers)
	natural := make([]int, n)
	for i, h := range headers {
		natural[i] = textWidth(h)
	}
	for _, r := range rows {
		for i := 0; i < n && i < len(r); i++ {
			natural[i] = max(natural[i], textWidth(r[i]))
		}
	}
	budget := total - (3*n + 1)
	sum := 0
	for _, v := range natural {
		sum += v
	}
	if sum <= budget {
		return natural
	}
	// Water-fill: columns narrower than the cap keep their width, the
	// others share what is left equally.
	sorted := append([]int(nil), natural...)
	sort.Ints(sorted)
	capWidth, used := minColumn, 0
	for i, v := range sorted {
		rest := n - i // columns at least v wide
		c := (budget - used) / rest
		if c < v {
			capWidth = max(c, minColumn)
			break
		}
		used += v
		capWidth = v
	}
	out := make([]int, n)
	for i, v := range natural {
		out[i] = min(v, capWidth)
	}
	return out
}

// textWidth is the width of s's longest line, in runes (boltfix's cells
// are ASCII but for the odd "…" and escaped key bytes).
func textWidth(s string) int {
	w := 0
	for _, line := range strings.Split(s, "\n") {
		w = max(w, utf8.RuneCountInString(line))
	}
	return w
}

// wrapCell wraps s at word boundaries into lines of at most width runes;
// a word longer than width is cut.
func wrapCell(s string, width int) string {
	if width <= 0 || textWidth(s) <= width {
		return s
	}
	var out []string
	for _, para := range strings.Split(s, "\n") {
		out = append(out, wrapLine(para, width, true)...)
	}
	return strings.Join(out, "\n")
}

// wrapLine wraps s at spaces into lines of at most width runes; a longer
// word is cut when cut is set, else (a path, in prose) left whole.
func wrapLine(s string, width int, cut bool) []string {
	var lines []string
	var cur []rune
	for _, word := range strings.Fields(s) {
		wr := []rune(word)
		for cut && len(wr) > width { // a word longer than a line: cut it
			if len(cur) > 0 {
				lines, cur = append(lines, string(cur)), nil
			}
			lines = append(lines, string(wr[:width]))
			wr = wr[width:]
		}
		switch {
		case len(cur) == 0:
			cur = wr
		case len(cur)+1+len(wr) <= width:
			cur = append(append(cur, ' '), wr...)
		default:
			lines, cur = append(lines, string(cur)), wr
		}
	}
	if len(cur) > 0 || len(lines) == 0 {
		lines = append(lines, string(cur))
	}
	return lines
}

// prose writes text wrapped to reportWidth, the first line after prefix
// and the others indented to line up with it. Words are never cut, so a
// path in a next step pastes whole.
func prose(w io.Writer, prefix, text string) {
	indent := strings.Repeat(" ", utf8.RuneCountInString(prefix))
	for i, line := range wrapLine(text, max(reportWidth-len(indent), minColumn), false) {
		if i == 0 {
			fmt.Fprintln(w, prefix+line)
		} else {
			fmt.Fprintln(w, indent+line)
		}
	}
}
