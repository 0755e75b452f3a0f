//go:build !purego

package kernels

import (
	"slices"
	"testing"
	"time"
)

// gemmA8W4Unprepared is the AVX-512 A8W4 GEMM driver before activations were prepared
// once per token block (each 4-row strip converted them itself): kept here as the
// baseline of BenchmarkGemmA8W4Prep and checked against the generic twin.
func gemmA8W4Unprepared(out []float32, rows int, codes []byte, tables []int8, x []int8, ntok int) {
	cols := len(x) / ntok
	dots := asInt32(out)
	kc, kx0, kx1 := a4Masks(cols)
	cb, tb := cols/2, a8w4Groups(cols)*16
	ns := rows / 4
	for t0 := 0; t0+4 <= ntok; t0 += gemmTokenBlock {
		nt := min(gemmTokenBlock, ntok-t0) &^ 3
		gemmA8W4AVX512(&dots[t0*rows], rows, &codes[0], cb, &tables[0], tb, &x[t0*cols], cols, cols, ns, nt/4, kc, kx0, kx1)
	}
}

// BenchmarkGemmA8W4Prep: the A8W4 GEMM (512 tokens x 4096 x 4096, raw int32 sums) with
// activations prepared once per token block (gemmA8W4PAVX512) against the unprepared
// kernel, alternating in one run; "x_prep" = best unprepared time / best prepared time.
func BenchmarkGemmA8W4Prep(b *testing.B) {
	if !Supported(AVX512) {
		b.Skip("no AVX-512 VNNI")
	}
	prev, _ := SetISA(AVX512)
	defer SetISA(prev)
	const ntok, rows, cols = 512, 4096, 4096
	m := newBenchMat(rows, cols, false, true)
	x := make([]int8, ntok*cols)
	fillRandom(unsafeBytes(x), 5)
	xs := make([]float32, ntok)
	for i := range xs {
		xs[i] = 0.01
	}
	out := make([]float32, ntok*rows)
	var tp, tu []time.Duration
	for b.Loop() {
		s := time.Now()
		GemmA8W4(out, rows, m.codes, m.tables, m.scale, m.rowSum, x, xs)
		tp = append(tp, time.Since(s))
		s = time.Now()
		gemmA8W4Unprepared(out, rows, m.codes, m.tables, x, ntok)
		tu = append(tu, time.Since(s))
	}
	p, u := slices.Min(tp), slices.Min(tu)
	ops := 2 * float64(rows) * cols * ntok
	b.ReportMetric(ops/p.Seconds()/1e9, "GOPS_prep")
	b.ReportMetric(ops/u.Seconds()/1e9, "GOPS_unprep")
	b.ReportMetric(float64(u)/float64(p), "x_prep")
}

// TestGemmA8W4Unprepared keeps the benchmark's baseline honest: its raw sums, through
// the same epilogue, equal the generic twin.
func TestGemmA8W4Unprepared(t *testing.T) {
	if !Supported(AVX512) {
		t.Skip("no AVX-512 VNNI")
	}
	prev, _ := SetISA(AVX512)
	defer SetISA(prev)
	const rows, cols, ntok = 8, 4096 + 32, 8
	m := newBenchMat(rows, cols, false, true)
	RowSumsA8W4(m.rowSum, m.codes, m.tables, cols)
	x := make([]int8, ntok*cols)
	fillRandom(unsafeBytes(x), 9)
	xs := slices.Repeat([]float32{0.5}, ntok)
	got, want := make([]float32, rows*ntok), make([]float32, rows*ntok)
	gemmA8W4Unprepared(got, rows, m.codes, m.tables, x, ntok)
	for tk := range ntok {
		i8Epilogue(got[tk*rows:(tk+1)*rows], asInt32(got)[tk*rows:(tk+1)*rows], m.scale, m.rowSum, xs[tk])
	}
	gemmA8W4Generic(want, rows, m.codes, m.tables, m.scale, m.rowSum, x, xs)
	bitsEqual(t, "gemmA8W4Unprepared", got, want)
}

// TestGemmA8W4NoAlloc: the prepared-activation buffer comes from a pool.
func TestGemmA8W4NoAlloc(t *testing.T) {
	if !Supported(AVX512) {
		t.Skip("no AVX-512 VNNI")
	}
	prev, _ := SetISA(AVX512)
	defer SetISA(prev)
	const rows, cols, ntok = 8, 256, 9
	m := newBenchMat(rows, cols, false, true)
	x := make([]int8, ntok*cols)
	xs := slices.Repeat([]float32{0.5}, ntok)
	out := make([]float32, rows*ntok)
	if n := testing.AllocsPerRun(50, func() { GemmA8W4(out, rows, m.codes, m.tables, m.scale, m.rowSum, x, xs) }); n != 0 {
		t.Errorf("GemmA8W4 allocates %v times per call", n)
	}
}
