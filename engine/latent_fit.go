package engine

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/mole-llm/mole/moe"
)

// SampleCalibration returns n tokens of text the model writes itself, for calibrating a
// conversion without any corpus: windows of window tokens, each started from BOS (or,
// for a model without one, from its end-of-sequence token, the usual document
// separator) and drawn at temperature 1 with no truncation, so the text follows the
// model's own distribution; end-of-generation tokens are never drawn, so every window is
// full. The same seed gives the same tokens.
func (m *Model) SampleCalibration(ctx context.Context, n, window int, seed uint64) ([]int32, error) {
	if window < 2 || window > m.Config.CtxLen {
		window = min(m.Config.CtxLen, 256)
	}
	start := int32(0)
	if m.Tok != nil {
		if m.Tok.AddBOS() {
			start = m.Tok.BOS()
		} else if m.Tok.EOS() >= 0 {
			start = m.Tok.EOS()
		}
	}
	smp := NewSampler(m.Config.Vocab, window+1, SamplerOptions{Temperature: 1, Seed: seed})
	out := make([]int32, 0, n)
	s := m.NewState(window + 1)
	for len(out) < n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		prev := start
		for pos := 0; pos < window && len(out) < n; pos++ {
			logits := s.Forward(prev, pos)
			if m.Tok != nil {
				for id := range logits {
					if m.Tok.IsEOG(int32(id)) {
						logits[id] = float32(math.Inf(-1))
					}
				}
			}
			prev = smp.Sample(logits)
			out = append(out, prev)
		}
	}
	return out, nil
}

// layerCovs returns the calibration statistics layer l's conversion uses: the pooled FFN
// input covariance (whitening gate/up), each expert's hidden-activation covariance
// (down, with Whiten or Fit) and each expert's routed-input covariance (RefitA, Fit).
func layerCovs(cal *Calibration, l int, o MoLEOptions) (inCov []float64, downCov, expCov [][]float64) {
	if cal == nil {
		return nil, nil, nil
	}
	lc := &cal.Layers[l]
	if o.Whiten {
		inCov = lc.FFN.Gram
	}
	if o.Whiten || o.Fit > 0 {
		for _, st := range lc.ExpDown {
			downCov = append(downCov, st.Gram)
		}
	}
	if o.Fit > 0 || (o.RefitA && !o.Baseline) {
		for _, st := range lc.ExpFFN {
			expCov = append(expCov, st.Gram)
		}
	}
	return inCov, downCov, expCov
}

// allocateRanks chooses the rank of every MoE layer's gate, up and down projection
// within the parameters of rank o.Rank everywhere. A rank step costs the same in every
// projection (one row of the basis per group and one column of every expert's factor),
// so the best use of the budget under an energy measure is the largest normalised
// eigenvalues over all projections: each projection's spectrum (as its conversion would
// see it: calibrated when o.Fit or o.Whiten) divided by its total, so that every
// projection's relative error counts alike. Every projection keeps rank 1 at least.
func allocateRanks(ctx context.Context, m *Model, cal *Calibration, o MoLEOptions, groups int) ([][3]int, error) {
	c := &m.Config
	nm, ne := c.NFFExpert, c.NEmbd
	type gain struct {
		l, p int
		v    float64
	}
	var gains []gain
	alloc := make([][3]int, len(m.Layers))
	budget := 0
	for l := range m.Layers {
		L := &m.Layers[l]
		if L.Router == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		inCov, downCov, _ := layerCovs(cal, l, o)
		if o.Fit > 0 && inCov == nil && cal != nil {
			inCov = cal.Layers[l].FFN.Gram // fitted gate/up are measured on the inputs
		}
		for pi, ms := range [][]*Matrix{L.ExpGate, L.ExpUp, L.ExpDown} {
			ws := make([][]float32, len(ms))
			for e, mm := range ms {
				ws[e] = dequantAll(mm)
			}
			var f *moe.LatentFactor
			var err error
			if pi < 2 {
				f, err = moe.NewInSpectrum(ws, nm, ne, groups, inCov)
			} else {
				f, err = moe.NewOutSpectrum(ws, ne, nm, groups, downCov)
			}
			if err != nil {
				return nil, fmt.Errorf("convert-mole: layer %d: %w", l, err)
			}
			g := f.Gains()
			alloc[l][pi] = 1
			budget += min(o.Rank, f.MaxRank()) - 1
			for k := 1; k < len(g); k++ {
				gains = append(gains, gain{l, pi, g[k]})
			}
		}
	}
	// Each projection's gains fall with k, so taking the largest overall keeps every
	// projection's chosen ranks a prefix of its spectrum.
	sort.Slice(gains, func(i, j int) bool { return gains[i].v > gains[j].v })
	for _, g := range gains[:min(budget, len(gains))] {
		alloc[g.l][g.p]++
	}
	return alloc, nil
}
