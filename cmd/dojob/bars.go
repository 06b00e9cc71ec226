package main

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/term"
)

// The progress bars are drawn by the command itself, with two ANSI
// sequences: cursor up (ESC [ n A) to go back to the first line of the
// previous frame, and erase line (ESC [ 2 K) before each line drawn over it.
// Every terminal emulator in use and the Windows console (10 and later,
// once virtual terminal processing is on: see enableANSI) understand them.
//
// Widths are counted in runes: each rune is taken as one column. The text
// the command writes itself is ASCII (and "…"); only file names can hold
// wide characters (CJK, emoji), and a line with such a name may be wider
// than counted and wrap, leaving a stale line behind on the next frame.
// Counting columns exactly needs the Unicode width tables (what
// go-runewidth carries, and initialises on every start of the command),
// which costs more than the rare misdrawn line.

// console is what progress bars are drawn on: a terminal, or a test's
// stand-in. Each frame is one Write, so a terminal never shows half a frame.
type console interface {
	io.Writer
	// GetTermSize returns the terminal's columns and rows.
	GetTermSize() (width, height int, err error)
}

// fileConsole is the console of a terminal open as f.
type fileConsole struct{ f *os.File }

// Write writes to the terminal.
func (c fileConsole) Write(p []byte) (int, error) { return c.f.Write(p) }

// GetTermSize asks the terminal its size.
func (c fileConsole) GetTermSize() (int, int, error) { return term.GetSize(int(c.f.Fd())) }

// Fallback sizes for a console that cannot tell its own (it told one when
// the command chose bars, see barsFor; it may fail later).
const (
	fallbackWidth  = 80
	fallbackHeight = 0 // no limit on the lines of a frame
)

// renderer draws frames on a console in place: each frame replaces the
// live lines of the previous one, and permanent lines are printed above
// them, where they stay. Only one goroutine at a time uses a renderer (the
// display's ticker, then finish once the ticker has ended).
type renderer struct {
	con   console
	lines int // live lines of the last frame, which the next one draws over
	buf   bytes.Buffer
}

// size returns the console's columns and rows, the fallback ones if it
// cannot tell.
func (r *renderer) size() (int, int) {
	w, h, err := r.con.GetTermSize()
	if err != nil || w <= 0 {
		return fallbackWidth, fallbackHeight
	}
	return w, max(h, 0)
}

// draw writes one frame: the permanent lines above (each in full, wrapped
// by the terminal if long), then the live lines, each already cut to the
// width. The cursor is left at the start of the line below the frame, so
// that a frame that stays on screen (the last one) is followed by what the
// command prints next.
func (r *renderer) draw(above, live []string) {
	b := &r.buf
	b.Reset()
	if r.lines > 0 {
		b.WriteString("\r\x1b[" + strconv.Itoa(r.lines) + "A")
	}
	for _, s := range above {
		b.WriteString("\x1b[2K")
		b.WriteString(sanitize(s))
		b.WriteByte('\n')
	}
	for _, s := range live {
		b.WriteString("\x1b[2K")
		b.WriteString(s)
		b.WriteByte('\n')
	}
	if len(above)+len(live) < r.lines {
		b.WriteString("\x1b[J") // the frame shrank: erase the old lines below it
	}
	r.lines = len(live)
	// A write error (a closed terminal) leaves nothing to do: the job
	// goes on and the command reports its outcome as it can.
	_, _ = r.con.Write(b.Bytes())
}

// sanitize replaces control characters (a file name or a server's message
// may hold escape sequences or line breaks) by '?', so that a line is drawn
// as one line and cannot move the cursor.
func sanitize(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// runeLen is the width of s in columns, a rune a column (see above).
func runeLen(s string) int {
	n := 0
	for range s {
		n++
	}
	return n
}

// cut returns s cut to w columns, ending in "…" if it was cut.
func cut(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if runeLen(s) <= w {
		return s
	}
	r := []rune(s)
	return string(r[:w-1]) + "…"
}

// padRight pads s with spaces to w columns.
func padRight(s string, w int) string {
	if n := runeLen(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// padLeft pads s with spaces in front to w columns.
func padLeft(s string, w int) string {
	if n := runeLen(s); n < w {
		return strings.Repeat(" ", w-n) + s
	}
	return s
}

// barRow is what one line of a file shows.
type barRow struct {
	name     string
	counters string // bytes / total
	rate     string // speed and ETA, stall, "done" or nothing
	fill     float64
	known    bool // the total is known: the bar shows fill
}

// Column widths of a bar line.
const (
	minBarWidth = 10 // narrower than this, the line has no bar
	rateWidth   = 22 // room kept for the rate ("999.9 MiB/s ETA 59m59s"), so bars do not jump
	minNameCols = 12 // a name column gets at least this (or the longest name)
)

// layoutBars renders rows for a console width columns wide: name (padded
// to the longest, up to a third of the width), counters (aligned), a bar
// that takes the room left, and the rate. Every line is cut to width-1
// columns: a line that fills the last column makes some terminals (the
// older Windows consoles) wrap at once, and the cursor-up count of the next
// frame would be off by one.
func layoutBars(rows []barRow, width int) []string {
	width-- // see above
	nameW, countW := 0, 0
	for _, r := range rows {
		nameW = max(nameW, runeLen(r.name))
		countW = max(countW, runeLen(r.counters))
	}
	nameW = min(nameW, max(minNameCols, width/3))
	barW := width - nameW - 1 - countW - 1 - 1 - rateWidth // name, space, counters, space, [bar], space, rate
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		var b strings.Builder
		b.WriteString(padRight(cut(r.name, nameW), nameW))
		b.WriteString(" ")
		b.WriteString(padLeft(r.counters, countW))
		if barW >= minBarWidth {
			b.WriteString(" ")
			b.WriteString(drawBar(barW, r.fill, r.known))
		}
		if r.rate != "" {
			b.WriteString(" ")
			b.WriteString(r.rate)
		}
		out = append(out, cut(strings.TrimRight(b.String(), " "), width))
	}
	return out
}

// drawBar draws a bar w columns wide, brackets included: "[====>-----]",
// filled to the fraction fill (0..1), all '-' when the total is not known.
func drawBar(w int, fill float64, known bool) string {
	inner := w - 2
	n := 0
	if known {
		n = int(float64(inner) * min(max(fill, 0), 1))
	}
	var b strings.Builder
	b.Grow(w)
	b.WriteByte('[')
	switch {
	case n >= inner:
		b.WriteString(strings.Repeat("=", inner))
	case n > 0:
		b.WriteString(strings.Repeat("=", n-1) + ">" + strings.Repeat("-", inner-n))
	default:
		b.WriteString(strings.Repeat("-", inner))
	}
	b.WriteByte(']')
	return b.String()
}
