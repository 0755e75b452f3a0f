package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"
)

// WriteSVG draws two panels, tg and the aggregate tokens/s of the parallel sequences,
// against the budget (percent of the expert bytes), one line per policy, and the resident
// run as a dashed horizontal line. Plain SVG, no dependency.
func (r *HEBFReport) WriteSVG(w io.Writer) error {
	const pw, ph, ml, mr, mt, mb, gap = 380, 260, 60, 20, 40, 50, 40
	width := 2*(ml+pw+mr) + gap
	height := mt + ph + mb + 30
	colors := map[string]string{"hebf": "#d62728", "fcfs": "#1f77b4", "lru4": "#2ca02c"}
	var policies []string
	var resident *HEBFRow
	for i := range r.Rows {
		x := &r.Rows[i]
		if x.Policy == "resident" {
			resident = x
			continue
		}
		if !strings.Contains(strings.Join(policies, ","), x.Policy) {
			policies = append(policies, x.Policy)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14" text-anchor="middle">%s under a memory budget (%d threads)</text>`+"\n", width/2, html.EscapeString(r.Model), r.Threads)
	for panel := 0; panel < 2; panel++ {
		x0 := ml + panel*(ml+pw+mr+gap)
		val := func(x *HEBFRow) float64 {
			if panel == 0 {
				return x.TG
			}
			return x.Par
		}
		title := "tg: one sequence, tokens/s"
		if panel == 1 {
			title = fmt.Sprintf("%d parallel sequences, total tokens/s", r.Parallel)
		}
		hi := 0.0
		for i := range r.Rows {
			hi = max(hi, val(&r.Rows[i]))
		}
		if hi <= 0 {
			continue
		}
		hi = niceCeil(hi * 1.05)
		xs := func(f float64) float64 { return float64(x0) + f*float64(pw) }
		ys := func(v float64) float64 { return float64(mt+ph) - v/hi*float64(ph) }
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x0+pw/2, mt-8, title)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", x0, mt, pw, ph)
		for i := 0; i <= 4; i++ {
			v := hi * float64(i) / 4
			y := ys(v)
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", x0, x0+pw, y, y, x0-4, y+4, fmtTick(v))
		}
		for f := 0.0; f <= 1.0001; f += 0.25 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%.0f%%</text>`+"\n", xs(f), mt+ph+16, 100*f)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">budget for experts, %% of expert bytes (+ always-resident %s MiB)</text>`+"\n", x0+pw/2, mt+ph+34, fmt.Sprintf("%.0f", float64(r.Resident)/(1<<20)))
		if resident != nil && val(resident) > 0 {
			y := ys(val(resident))
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#555" stroke-dasharray="5,4"/><text x="%d" y="%.1f" fill="#555">resident (no budget)</text>`+"\n", x0, x0+pw, y, y, x0+4, y-4)
		}
		for _, pol := range policies {
			var pts [][2]float64
			for i := range r.Rows {
				x := &r.Rows[i]
				if x.Policy == pol && val(x) > 0 {
					pts = append(pts, [2]float64{x.Fraction, val(x)})
				}
			}
			sort.Slice(pts, func(i, j int) bool { return pts[i][0] < pts[j][0] })
			var path []string
			for _, p := range pts {
				path = append(path, fmt.Sprintf("%.1f,%.1f", xs(p[0]), ys(p[1])))
			}
			col := colors[pol]
			if col == "" {
				col = "#000"
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", col, strings.Join(path, " "))
			for _, p := range pts {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", xs(p[0]), ys(p[1]), col)
			}
		}
	}
	for i, pol := range policies {
		x := ml + i*120
		y := mt + ph + mb + 14
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="4" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", x, y-6, colors[pol], x+18, y, html.EscapeString(pol))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(v float64) string {
	if v >= 10 || v == 0 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
