package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mole-llm/mole/kernels"
)

// dgqLayer is a synthetic layer: weights with a few heavy columns and activations with
// correlated channels and a few outliers, like a transformer's.
func dgqLayer(rows, cols, ntok int, seed uint64) (w []float32, xs [][]float32, st *Stats) {
	r := rand.New(rand.NewPCG(seed, 1))
	w = make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(r.NormFloat64() * 0.05)
	}
	st = NewStats(cols)
	for t := 0; t < ntok; t++ {
		x := make([]float32, cols)
		common := r.NormFloat64()
		for k := range x {
			x[k] = float32(r.NormFloat64() + 0.5*common)
			if k%61 == 7 {
				x[k] *= 8
			}
		}
		xs = append(xs, x)
		st.Add(x)
	}
	st.Finish()
	return w, xs, st
}

// outputErr is mean over tokens and rows of (x·w_row - x·wq_row)^2.
func outputErr(w, wq []float32, rows, cols int, xs [][]float32) float64 {
	var e float64
	for _, x := range xs {
		for r := 0; r < rows; r++ {
			d := kernels.Dot(w[r*cols:(r+1)*cols], x) - kernels.Dot(wq[r*cols:(r+1)*cols], x)
			e += float64(d) * float64(d)
		}
	}
	return e / float64(len(xs)*rows)
}

func TestDGQInvariantsAndBeatsRTN(t *testing.T) {
	for _, cols := range []int{256, 172, 64} {
		rows := 48
		w, xs, st := dgqLayer(rows, cols, 300, uint64(cols))
		q := QuantizeDGQ(w, rows, cols, st, DGQOptions{})
		if q.PadCols%32 != 0 || q.PadCols < cols || q.Groups != (cols+127)/128 {
			t.Fatalf("cols %d: PadCols %d Groups %d", cols, q.PadCols, q.Groups)
		}
		var codes [32]uint8
		for r := 0; r < rows; r++ {
			for g := 0; g < q.Groups; g++ {
				z, s2 := int(q.Group[(r*q.Groups+g)*2]), int(q.Group[(r*q.Groups+g)*2+1])
				if z < 0 || z > 15 || s2 < 1 {
					t.Fatalf("row %d group %d: z %d S2 %d", r, g, z, s2)
				}
			}
			cb := q.Codes[r*q.PadCols/2:]
			for k := 0; k < q.PadCols; k++ {
				UnpackCodes(codes[:], cb[k/32*16:k/32*16+16])
				c := int(codes[k%32])
				g := (r*q.Groups + k/GroupSize) * 2
				z, s2 := int(q.Group[g]), int(q.Group[g+1])
				if v := s2 * (c - z); v < -127 || v > 127 {
					t.Fatalf("row %d col %d: S2*(q-z) = %d does not fit int8", r, k, v)
				}
				if k >= cols && c != z {
					t.Fatalf("row %d padding col %d: code %d, zero %d", r, k, c, z)
				}
			}
		}
		wq := make([]float32, rows*cols)
		for r := 0; r < rows; r++ {
			q.Dequant(r, wq[r*cols:(r+1)*cols])
		}
		rq := make([]float32, rows*cols)
		rb := QuantizeRTN4(w, rows, cols)
		nb := (cols + GroupSize - 1) / GroupSize * RTN4BlockBytes
		for r := 0; r < rows; r++ {
			DequantRTN4(rq[r*cols:(r+1)*cols], rb[r*nb:(r+1)*nb])
		}
		ed, er := outputErr(w, wq, rows, cols, xs), outputErr(w, rq, rows, cols, xs)
		t.Logf("cols %d: output error DGQ %.3g, RTN %.3g (ratio %.2f)", cols, ed, er, ed/er)
		if !(ed < er) {
			t.Errorf("cols %d: DGQ output error %.3g not below RTN's %.3g", cols, ed, er)
		}
	}
}

// The incremental evaluator must agree with the direct quadratic form.
func TestGroupEvalMatchesDirect(t *testing.T) {
	_, _, st := dgqLayer(1, 128, 200, 3)
	h := hessian(st, 128, 0)
	b := make([]float64, len(h))
	for i, v := range h {
		b[i] = float64(v)
	}
	r := rand.New(rand.NewPCG(5, 6))
	w := make([]float32, 128)
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	var ev groupEval
	ev.init(b)
	ev.reset(w)
	c := make([]int32, 128)
	for trial := 0; trial < 50; trial++ {
		for k := range c {
			if r.IntN(4) == 0 {
				c[k] = int32(r.IntN(31) - 15)
			}
		}
		a := 0.05 + r.Float64()*0.1
		ev.set(c)
		var direct float64
		d := make([]float64, 128)
		for k := range d {
			d[k] = float64(w[k]) - a*float64(c[k])
		}
		for i := range d {
			for j := range d {
				direct += d[i] * b[i*128+j] * d[j]
			}
		}
		if got := ev.err(a); math.Abs(got-direct) > 1e-9*math.Abs(direct)+1e-12 {
			t.Fatalf("trial %d: incremental %g, direct %g", trial, got, direct)
		}
	}
}

func TestSmoothFactors(t *testing.T) {
	a := make([]float32, 256)
	for i := range a {
		a[i] = 1 + float32(i)/1000
	}
	a[10], a[20] = 50, 9
	s := SmoothFactors(a)
	// int(256*0.005+1.5) = 2: the baseline is the second largest value (9), so only the
	// channel at 50 is rescaled, to 50/9.
	for i, v := range s {
		want := float32(1)
		if i == 10 {
			want = 50 / float32(9)
		}
		if v != want {
			t.Fatalf("s[%d] = %v, want %v", i, v, want)
		}
	}
}

func BenchmarkDGQ(b *testing.B) {
	w, _, st := dgqLayer(64, 256, 300, 1)
	b.ResetTimer()
	for range b.N {
		QuantizeDGQ(w, 64, 256, st, DGQOptions{})
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*64), "µs/row")
}

// AddBatch is Add on each vector in turn, bit for bit, across flush boundaries.
func TestStatsAddBatchMatchesAdd(t *testing.T) {
	const n = 300
	rng := rand.New(rand.NewPCG(3, 4))
	xs := make([][]float32, 200)
	for i := range xs {
		xs[i] = make([]float32, n)
		for j := range xs[i] {
			if rng.IntN(5) > 0 {
				xs[i][j] = float32(rng.NormFloat64() * float64(1+j%7))
			}
		}
	}
	a, b := NewStats(n), NewStats(n)
	for _, x := range xs {
		a.Add(x)
	}
	for _, k := range []int{1, 50, 13, 70, 66} { // batches straddling the flushes
		b.AddBatch(xs[:k])
		xs = xs[k:]
	}
	a.Finish()
	b.Finish()
	if a.Tokens != b.Tokens {
		t.Fatalf("tokens %d vs %d", a.Tokens, b.Tokens)
	}
	for i := range a.Gram {
		if a.Gram[i] != b.Gram[i] {
			t.Fatalf("Gram[%d]: Add %v, AddBatch %v", i, a.Gram[i], b.Gram[i])
		}
	}
	for i := range a.AbsMax {
		if a.AbsMax[i] != b.AbsMax[i] {
			t.Fatalf("AbsMax[%d]: Add %v, AddBatch %v", i, a.AbsMax[i], b.AbsMax[i])
		}
	}
}
