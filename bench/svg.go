package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
)

// WriteSVG draws tokens/s against threads: one solid line with points per model and
// test (and kernel path, when several were run), and in the same colour a dashed line
// for its roofline. The y axis is logarithmic because a prefill roofline can sit an
// order of magnitude above decode numbers. Plain SVG, no dependency.
func (r *Report) WriteSVG(w io.Writer) error {
	type series struct {
		label   string
		threads []int
		ts, sd  []float64
		roof    []float64
	}
	var ss []*series
	byKey := map[string]*series{}
	multi := r.multiISA()
	for _, x := range r.Results {
		key := x.ModelType + " " + x.Test
		if x.ExpertBits > 0 {
			key += fmt.Sprintf(" @%db", x.ExpertBits)
		}
		if multi {
			key += " " + x.ISA
		}
		s := byKey[key]
		if s == nil {
			s = &series{label: key}
			byKey[key] = s
			ss = append(ss, s)
		}
		s.threads = append(s.threads, x.Threads)
		s.ts = append(s.ts, x.AvgTs)
		s.sd = append(s.sd, x.StddevTs)
		s.roof = append(s.roof, x.RoofTs)
	}
	var threads []int
	lo, hi := math.Inf(1), 0.0
	for _, s := range ss {
		for i, t := range s.threads {
			if !slices.Contains(threads, t) {
				threads = append(threads, t)
			}
			for _, v := range []float64{s.ts[i], s.roof[i]} {
				if v > 0 {
					lo, hi = min(lo, v), max(hi, v)
				}
			}
		}
	}
	slices.Sort(threads)
	if len(threads) == 0 || hi == 0 {
		lo, hi = 1, 10
		threads = []int{1}
	}
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi == dlo {
		dhi++
	}
	const (
		width, height          = 760.0, 460.0
		left, right, top, bott = 70.0, 250.0, 40.0, 50.0
	)
	pw, ph := width-left-right, height-top-bott
	xOf := func(t int) float64 {
		if len(threads) == 1 {
			return left + pw/2
		}
		return left + pw*float64(slices.Index(threads, t))/float64(len(threads)-1)
	}
	yOf := func(v float64) float64 {
		return top + ph*(1-(math.Log10(max(v, lo/10))-dlo)/(dhi-dlo))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="14">mole bench: tokens/s vs threads (dashed: roofline) — %s</text>`+"\n", left, html.EscapeString(r.CPU))
	for d := dlo; d <= dhi; d++ {
		y := yOf(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, left+pw, y)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%g</text>`+"\n", left-6, y+4, math.Pow(10, d))
	}
	for _, t := range threads {
		x := xOf(t)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x, top, x, top+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n", x, top+ph+18, t)
	}
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#444"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">threads</text>`+"\n", left+pw/2, height-10)
	fmt.Fprintf(&b, `<text x="16" y="%.1f" text-anchor="middle" transform="rotate(-90 16 %.1f)">tokens/s (log)</text>`+"\n", top+ph/2, top+ph/2)
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}
	for i, s := range ss {
		c := colors[i%len(colors)]
		var pts, roof []string
		for k, t := range s.threads {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(t), yOf(s.ts[k])))
			roof = append(roof, fmt.Sprintf("%.1f,%.1f", xOf(t), yOf(s.roof[k])))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), c)
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="6 4"/>`+"\n", strings.Join(roof, " "), c)
		for k, t := range s.threads {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s, %d threads: %.2f ± %.2f t/s, roofline %.2f</title></circle>`+"\n",
				xOf(t), yOf(s.ts[k]), c, html.EscapeString(s.label), t, s.ts[k], s.sd[k], s.roof[k])
		}
		ly := top + 14 + 18*float64(i)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", left+pw+12, ly-4, left+pw+32, ly-4, c)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", left+pw+38, ly, html.EscapeString(s.label))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
