package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ansi matches the sequences the renderer writes.
var ansi = regexp.MustCompile(`\r|\x1b\[[0-9]*[AJK]`)

// TestRendererRedrawsInPlace: each frame goes back up over the live lines
// of the previous one and clears each line it draws; permanent lines come
// first and are not gone over again; a frame with fewer lines erases what
// is left of the old one; each frame is one write.
func TestRendererRedrawsInPlace(t *testing.T) {
	con := &fakeConsole{}
	r := &renderer{con: con}
	r.draw(nil, []string{"a", "b", "state"})
	r.draw([]string{"note"}, []string{"a2", "b2", "state2"})
	r.draw(nil, []string{"only"})
	frames := con.frames()
	require.Len(t, frames, 3)
	assert.Equal(t, "\x1b[2Ka\n\x1b[2Kb\n\x1b[2Kstate\n", frames[0], "the first frame moves nothing")
	assert.Equal(t, "\r\x1b[3A\x1b[2Knote\n\x1b[2Ka2\n\x1b[2Kb2\n\x1b[2Kstate2\n", frames[1])
	assert.Equal(t, "\r\x1b[3A\x1b[2Konly\n\x1b[J", frames[2], "up over the 3 live lines only, then erase the rest")
}

// TestLayoutBarsFitsTheWidth: at every width a line is at most width-1
// runes (one column a rune), names are cut with "…", the bar takes the
// room left on a wide terminal and goes on a narrow one; the bar shows the
// fraction done, and nothing filled for an unknown total.
func TestLayoutBarsFitsTheWidth(t *testing.T) {
	rows := []barRow{
		{name: "short.bin", counters: "128.0 KiB / 256.0 KiB", rate: "1.5 MiB/s ETA 100ms", known: true, fill: 0.5},
		{name: strings.Repeat("ファイル", 20) + ".bin", counters: "0 B / ?", rate: "stalled for 12s"},
		{name: "done.bin", counters: "256.0 KiB / 256.0 KiB", rate: "done", known: true, fill: 1},
	}
	for width := 1; width <= 200; width++ {
		for i, line := range layoutBars(rows, width) {
			assert.LessOrEqual(t, runeLen(line), max(width-1, 0), "width %d, line %d: %q", width, i, line)
		}
	}
	lines := layoutBars(rows, 100)
	require.Len(t, lines, 3)
	// The bar takes the room left, with a column of rateWidth kept for the
	// rate: every bar ends in the same column, so none jumps as rates change.
	for i, line := range lines {
		assert.Equal(t, 99-rateWidth-2, slices.Index([]rune(line), ']'), "line %d: %q", i, line)
	}
	assert.Regexp(t, `^short\.bin +128\.0 KiB / 256\.0 KiB \[=+>-+\] 1\.5 MiB/s ETA 100ms$`, lines[0])
	assert.Contains(t, lines[1], "ファイル…", "a long name is cut")
	assert.Regexp(t, `\[-+\] stalled for 12s$`, lines[1])
	assert.Regexp(t, `\[=+\] done$`, lines[2])
	fill := regexp.MustCompile(`\[(=*>?)(-*)\]`).FindStringSubmatch(lines[0])
	require.NotNil(t, fill)
	assert.InDelta(t, 0.5, float64(len(fill[1]))/float64(len(fill[1])+len(fill[2])), 0.05)

	narrow := layoutBars(rows, 40)
	assert.NotContains(t, narrow[0], "[", "no room for a bar")
	assert.True(t, strings.HasPrefix(narrow[0], "short.bin"), narrow[0])
}

// TestBarsShowNoControlCharacters: a file name or an error message with
// escape sequences or line breaks is drawn as one line that moves nothing.
func TestBarsShowNoControlCharacters(t *testing.T) {
	con := &fakeConsole{}
	r := &renderer{con: con}
	evil := "x\x1b[2J\ny\r\x07.bin"
	r.draw([]string{"TRANSIENT_ERROR: " + evil}, layoutBars([]barRow{{name: sanitize(evil), counters: "0 B / ?"}}, 80))
	frame := con.frames()[0]
	assert.Equal(t, 2, strings.Count(frame, "\n"))
	assert.NotContains(t, ansi.ReplaceAllString(frame, ""), "\x1b")
	assert.Contains(t, frame, "\x1b[2KTRANSIENT_ERROR: x?[2J?y??.bin\n")
	assert.Regexp(t, `x\?\[2J\?y\?\?\.bin +0 B / \? \[-+\]`, frame)
}

// TestBarsFitTheScreen: a job with more files than the terminal has rows
// gets a frame one row shorter than the screen (so cursor-up reaches its
// first line): the files from the current one on, a line counting the
// others, and the state line.
func TestBarsFitTheScreen(t *testing.T) {
	var files []dojob.FileInfo
	for i := range 50 {
		f := dojob.FileInfo{LocalPath: fmt.Sprintf("/d/f%02d.bin", i), BytesTotal: 100}
		if i < 20 {
			f.BytesTransferred, f.Transferred = 100, true
		}
		files = append(files, f)
	}
	snap := jobSnapshot{St: dojob.StateTransferring, FileList: files, Prog: dojob.Progress{FilesTotal: 50, FilesTransferred: 20}}
	con := &fakeConsole{width: 80, height: 10}
	c := &cli{stdout: &strings.Builder{}, opts: options{tty: true, console: con}}
	d := c.newDisplay(snap, 0)
	d.draw(time.Now())
	d.finish(false)
	frames := con.frames()
	require.NotEmpty(t, frames)
	for _, f := range frames {
		lines := strings.Split(strings.TrimSuffix(ansi.ReplaceAllString(f, ""), "\n"), "\n")
		assert.Len(t, lines, 9, "a row for the cursor: %q", f)
		assert.True(t, strings.HasPrefix(lines[0], "f20.bin"), "the current file first: %q", lines[0])
		assert.True(t, strings.HasPrefix(lines[6], "f26.bin"), lines[6])
		assert.Equal(t, "… 43 more files (20 of 50 done)", lines[7])
		assert.True(t, strings.HasPrefix(lines[8], "TRANSFERRING · 20/50 files"), lines[8])
	}
}
