package quant

import "math"

// Q8 is one matrix in per-row symmetric int8 (docs/format.md, MOLE_Q8):
// W[o,k] = Scale[o] * Q[o,k].
type Q8 struct {
	Rows, Cols, PadCols int
	Q                   []int8    // [Rows][PadCols], padding 0
	Scale               []float32 // [Rows]
}

// QuantizeQ8 rounds each row of w ([rows][cols]) to int8 with scale max|row|/127, the
// A8W8 baseline: no search, since 8-bit rounding error is far below the activations'.
func QuantizeQ8(w []float32, rows, cols int) *Q8 {
	pc := (cols + 31) / 32 * 32
	q := &Q8{Rows: rows, Cols: cols, PadCols: pc, Q: make([]int8, rows*pc), Scale: make([]float32, rows)}
	for r := 0; r < rows; r++ {
		row := w[r*cols : (r+1)*cols]
		var amax float32
		for _, v := range row {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		if amax == 0 {
			continue
		}
		s := amax / 127
		q.Scale[r] = s
		dst := q.Q[r*pc : r*pc+cols]
		for k, v := range row {
			dst[k] = int8(max(-127, min(127, math.Round(float64(v/s)))))
		}
	}
	return q
}
