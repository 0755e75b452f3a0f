//go:build arm64 && !purego

package kernels

import (
	"math/rand"
	mrand "math/rand/v2"
	"testing"
	"time"
)

// Benchmarks of both NEON forms against the generic twins, measured in the same run:
// "GB/s" of weight bytes and "x_generic" = generic time / kernel time. Under qemu the
// numbers mean nothing; run them on arm64 hardware (Graviton, Ampere, Apple):
//   go test -run - -bench NEON ./kernels

func benchRatio(b *testing.B, bytes int, f, generic func()) {
	b.SetBytes(int64(bytes))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f()
	}
	b.StopTimer()
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	n, start := 0, time.Now()
	for n < 3 || time.Since(start) < 50*time.Millisecond {
		generic()
		n++
	}
	g := float64(time.Since(start).Nanoseconds()) / float64(n)
	b.ReportMetric(float64(bytes)/per, "GB/s")
	b.ReportMetric(g/per, "x_generic")
}

func BenchmarkNEON(b *testing.B) {
	const rows, cols, ntok = 512, 2048, 8
	rng := rand.New(rand.NewSource(1))
	w := make([]int8, rows*cols)
	fillI8(rng, w, 0)
	x := make([]int8, ntok*cols)
	fillI8(rng, x, 0)
	codes, tables := randA8W4(rng, rows, cols, 0)
	ws, xs := randScales(rng, rows), randScales(rng, ntok)
	rs := make([]int32, rows)
	out := make([]float32, ntok*rows)
	dots := make([]int32, ntok*rows)
	r2 := mrand.New(mrand.NewPCG(1, 1))
	w8, w4 := randQ8Weights(r2, rows, cols, false), randQ4Weights(r2, rows, cols, false)
	xq := make([]byte, 0, ntok*Q8ActBytes(cols))
	for range ntok {
		xq = append(xq, randAct(r2, cols, false)...)
	}
	xq1 := xq[:Q8ActBytes(cols)]
	for _, v := range neonVariants {
		if v.dotprod && !HasDotProd() {
			continue
		}
		sd := v.dotprod
		b.Run("GemvI8/"+v.name, func(b *testing.B) {
			benchRatio(b, len(w), func() { i8DotsArm64(dots[:rows], w, x[:cols], sd) },
				func() { gemvI8Generic(out[:rows], w, ws, rs, x[:cols], xs[0]) })
		})
		b.Run("GemmI8x8/"+v.name, func(b *testing.B) {
			benchRatio(b, len(w), func() { i8GemmDotsArm64(dots, w, x, rows, cols, ntok, sd) },
				func() { gemmI8Generic(out, rows, w, ws, rs, x, xs) })
		})
		b.Run("GemvA8W4/"+v.name, func(b *testing.B) {
			benchRatio(b, len(codes)+len(tables), func() { a8w4DotsArm64(dots[:rows], codes, tables, x[:cols], sd) },
				func() { gemvA8W4Generic(out[:rows], codes, tables, ws, rs, x[:cols], xs[0]) })
		})
		b.Run("GemmA8W4x8/"+v.name, func(b *testing.B) {
			benchRatio(b, len(codes)+len(tables), func() { a8w4GemmDotsArm64(dots, codes, tables, x, rows, cols, ntok, sd) },
				func() { gemmA8W4Generic(out, rows, codes, tables, ws, rs, x, xs) })
		})
		b.Run("GemvQ8_0/"+v.name, func(b *testing.B) {
			benchRatio(b, len(w8), func() { neonGGML{q4: false, sdot: sd}.gemv(out[:rows], w8, cols, xq1) },
				func() { gemvQ8_0Generic(out[:rows], w8, cols, xq1) })
		})
		b.Run("GemvQ4_0/"+v.name, func(b *testing.B) {
			benchRatio(b, len(w4), func() { neonGGML{q4: true, sdot: sd}.gemv(out[:rows], w4, cols, xq1) },
				func() { gemvQ4_0Generic(out[:rows], w4, cols, xq1) })
		})
		b.Run("GemmQ4_0x8/"+v.name, func(b *testing.B) {
			benchRatio(b, len(w4), func() { neonGGML{q4: true, sdot: sd}.gemm(out, rows, w4, cols, xq, ntok) },
				func() { gemmQ4_0Generic(out, rows, w4, cols, xq, ntok) })
		})
	}
}
