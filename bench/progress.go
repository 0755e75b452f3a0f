package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress is a one-line progress bar redrawn with \r. It is an io.Writer counting the
// bytes that pass; redraws are limited to a few per second so a terminal (or a CI log)
// is not flooded. Thirty lines do not justify a dependency.
type progress struct {
	w           io.Writer
	label       string
	total, done int64
	start, last time.Time
}

func newProgress(w io.Writer, label string, total int64) *progress {
	now := time.Now()
	return &progress{w: w, label: label, total: total, start: now}
}

func (p *progress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= 200*time.Millisecond {
		p.last = now
		p.draw()
	}
	return len(b), nil
}

func (p *progress) draw() {
	const width = 30
	frac := float64(p.done) / float64(max(p.total, 1))
	n := min(int(frac*width), width)
	rate := float64(p.done) / max(time.Since(p.start).Seconds(), 1e-9) / (1 << 20)
	fmt.Fprintf(p.w, "\r%s %3.0f%% [%s%s] %d/%d MiB %.0f MiB/s ", p.label, 100*frac,
		strings.Repeat("=", n), strings.Repeat(" ", width-n), p.done>>20, p.total>>20, rate)
}

// finish draws the final state and ends the line.
func (p *progress) finish() {
	p.draw()
	fmt.Fprintln(p.w)
}
