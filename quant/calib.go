package quant

import (
	"math"

	"github.com/mole-llm/mole/kernels"
)

// Stats are the calibration statistics of one linear layer's input: the Gram matrix
// X^T X of the activations that reached it and each input channel's absolute maximum.
// The Gram matrix is what makes the output error of any weight change cheap to
// evaluate: for a weight error d (one row), ||X d||^2 = d^T (X^T X) d, whatever the
// number of calibration tokens. Several layers reading one input (q, k and v; gate and
// up) share one Stats.
type Stats struct {
	Cols   int
	Tokens int       // activation vectors added
	Gram   []float64 // [Cols][Cols], upper triangle filled by Add, mirrored by Finish
	AbsMax []float32 // [Cols]

	acc     []float32 // float32 partial sums of the upper triangle, not yet in Gram
	pending int
}

// NewStats returns empty statistics for inputs of cols channels.
func NewStats(cols int) *Stats {
	return &Stats{Cols: cols, Gram: make([]float64, cols*cols), AbsMax: make([]float32, cols)}
}

// Add accumulates one activation vector (len Cols). The rank-1 update runs in float32
// with the SIMD Axpy kernel and is flushed into the float64 Gram matrix every
// flushEvery vectors, which keeps the sums accurate at a fraction of float64's cost.
func (s *Stats) Add(x []float32) { s.AddBatch([][]float32{x}) }

const flushEvery = 64

// AddBatch adds the vectors xs in order: the same bits as Add on each in turn (every
// accumulator element sees the same float32 updates in the same order, and the float64
// flushes fall after the same vectors), but the accumulator is read once per group of
// up to flushEvery vectors instead of once per vector: its rows are walked in tiles
// small enough to stay in cache while the group's vectors update them. For an input of
// 2816 channels the accumulator is 32 MB, which Add streams through for every vector.
func (s *Stats) AddBatch(xs [][]float32) {
	n := s.Cols
	if s.acc == nil {
		s.acc = make([]float32, n*n)
	}
	tile := max(1, (128<<10)/(4*n)) // rows of about 128 KB
	for len(xs) > 0 {
		part := xs[:min(len(xs), flushEvery-s.pending)]
		xs = xs[len(part):]
		for _, x := range part {
			for i, xi := range x[:n] {
				if a := float32(math.Abs(float64(xi))); a > s.AbsMax[i] {
					s.AbsMax[i] = a
				}
			}
		}
		for i0 := 0; i0 < n; i0 += tile {
			i1 := min(n, i0+tile)
			for _, x := range part {
				x = x[:n]
				for i := i0; i < i1; i++ {
					if xi := x[i]; xi != 0 {
						kernels.Axpy(s.acc[i*n+i:i*n+n], xi, x[i:])
					}
				}
			}
		}
		s.Tokens += len(part)
		if s.pending += len(part); s.pending == flushEvery {
			s.flush()
		}
	}
}

func (s *Stats) flush() {
	for i, v := range s.acc {
		s.Gram[i] += float64(v)
	}
	clear(s.acc)
	s.pending = 0
}

// Finish mirrors the upper triangle into the lower one; call it once after the last Add.
func (s *Stats) Finish() {
	if s.acc != nil {
		s.flush()
		s.acc = nil
	}
	n := s.Cols
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			s.Gram[j*n+i] = s.Gram[i*n+j]
		}
	}
}

// Scaled returns the statistics of the input divided channel-wise by sc (the smoothed
// activations x_c / sc_c): Gram_ij / (sc_i sc_j) and AbsMax_c / sc_c. sc == nil returns s.
func (s *Stats) Scaled(sc []float32) *Stats {
	if sc == nil {
		return s
	}
	n := s.Cols
	o := &Stats{Cols: n, Tokens: s.Tokens, Gram: make([]float64, n*n), AbsMax: make([]float32, n)}
	for i := 0; i < n; i++ {
		o.AbsMax[i] = s.AbsMax[i] / sc[i]
		for j := 0; j < n; j++ {
			o.Gram[i*n+j] = s.Gram[i*n+j] / (float64(sc[i]) * float64(sc[j]))
		}
	}
	return o
}

// dampRel is the diagonal added to the Gram matrix before the search, relative to its
// mean diagonal. An expert that saw few calibration tokens has a rank-deficient Gram
// matrix, under which any error in the unseen directions is free; the small ridge keeps
// those weights close to their float values too (GPTQ damps its Hessian the same way).
const dampRel = 0.01

// hessian returns the damped Gram matrix as float32 blocks for the error evaluations,
// or the identity (plain weight error) when s is nil or saw no tokens.
func hessian(s *Stats, cols int, rel float64) []float32 {
	if rel <= 0 {
		rel = dampRel
	}
	h := make([]float32, cols*cols)
	if s == nil || s.Tokens == 0 {
		for i := 0; i < cols; i++ {
			h[i*cols+i] = 1
		}
		return h
	}
	var tr float64
	for i := 0; i < cols; i++ {
		tr += s.Gram[i*cols+i]
	}
	damp := rel * tr / float64(cols)
	if damp == 0 {
		damp = 1
	}
	norm := 1 / float64(s.Tokens)
	for i := 0; i < cols; i++ {
		for j := 0; j < cols; j++ {
			v := s.Gram[i*cols+j]
			if i == j {
				v += damp
			}
			h[i*cols+j] = float32(v * norm)
		}
	}
	return h
}
