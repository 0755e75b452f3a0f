package bench

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mole-llm/mole/internal/tty"
)

// progress is a progress bar: an io.Writer counting the bytes that pass. On a terminal
// it is one line redrawn with \r, a few times a second at most; elsewhere (a log, a
// pipe) redrawn lines would pile up, so it prints one plain line at the start and one at
// the end. Thirty lines do not justify a dependency.
type progress struct {
	w           io.Writer
	tty         bool
	label       string
	total, done int64
	start, last time.Time
}

func newProgress(w io.Writer, label string, total int64) *progress {
	now := time.Now()
	p := &progress{w: w, tty: tty.IsTerminal(w), label: label, total: total, start: now}
	if !p.tty {
		fmt.Fprintf(w, "%s: %d MiB ...\n", label, total>>20)
	}
	return p
}

func (p *progress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if now := time.Now(); p.tty && now.Sub(p.last) >= 200*time.Millisecond {
		p.last = now
		p.draw()
	}
	return len(b), nil
}

func (p *progress) draw() {
	const width = 30
	frac := float64(p.done) / float64(max(p.total, 1))
	n := min(int(frac*width), width)
	fmt.Fprintf(p.w, "\r%s %3.0f%% [%s%s] %d/%d MiB %.0f MiB/s ", p.label, 100*frac,
		strings.Repeat("=", n), strings.Repeat(" ", width-n), p.done>>20, p.total>>20, p.rate())
}

func (p *progress) rate() float64 {
	return float64(p.done) / max(time.Since(p.start).Seconds(), 1e-9) / (1 << 20)
}

// finish draws the final state and ends the line.
func (p *progress) finish() {
	if !p.tty {
		frac := float64(p.done) / float64(max(p.total, 1))
		fmt.Fprintf(p.w, "%s: %3.0f%%, %d MiB in %.1f s (%.0f MiB/s)\n", p.label, 100*frac, p.done>>20,
			time.Since(p.start).Seconds(), p.rate())
		return
	}
	p.draw()
	fmt.Fprintln(p.w)
}
