package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// BenchmarkSoftmax times the two-pass and the three-pass softmax of the active path
// alternately in the same run and reports the fastest call of each ("ns/2pass",
// "ns/3pass": minima are robust to the other jobs sharing the machine) and
// "2pass_speedup" = three-pass time / two-pass time (> 1: two-pass faster). Sizes: 32K
// (vocabulary, L2), 150K (large vocabulary), 16M floats (64 MiB); MOLE_BENCH_HUGE=1 adds
// 64M floats (256 MiB, beyond most L3s).
func BenchmarkSoftmax(b *testing.B) {
	sizes := []int{32 << 10, 150 << 10, 16 << 20}
	if os.Getenv("MOLE_BENCH_HUGE") != "" {
		sizes = append(sizes, 64<<20)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			x := randVec(r, n)
			SoftmaxThreePass(x) // touch the pages
			t2, t3 := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
			b.SetBytes(int64(4 * n))
			b.ResetTimer()
			for range b.N {
				s := time.Now()
				SoftmaxTwoPass(x)
				t2 = min(t2, time.Since(s))
				s = time.Now()
				SoftmaxThreePass(x)
				t3 = min(t3, time.Since(s))
			}
			b.ReportMetric(float64(t2.Nanoseconds()), "ns/2pass")
			b.ReportMetric(float64(t3.Nanoseconds()), "ns/3pass")
			b.ReportMetric(float64(t3)/float64(t2), "2pass_speedup")
		})
	}
}

// benchVsGeneric times f on the active path and on the generic twin alternately and
// reports "x_generic" = generic time / active-path time.
func benchVsGeneric(b *testing.B, f func()) {
	isa := Active()
	var ts, tg time.Duration
	for range b.N {
		s := time.Now()
		for range 16 {
			f()
		}
		ts += time.Since(s)
		SetISA(Generic)
		s = time.Now()
		for range 16 {
			f()
		}
		tg += time.Since(s)
		SetISA(isa)
	}
	b.ReportMetric(float64(ts.Nanoseconds())/float64(16*b.N), "ns/simd")
	b.ReportMetric(float64(tg.Nanoseconds())/float64(16*b.N), "ns/generic")
	b.ReportMetric(float64(tg)/float64(ts), "x_generic")
}

func BenchmarkFloatKernels(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{128, 4096} {
		x, y := randVec(r, n), randVec(r, n)
		h := make([]byte, 2*n)
		for i := range x {
			q := F32ToF16(x[i])
			h[2*i], h[2*i+1] = byte(q), byte(q>>8)
		}
		var sink float32
		b.Run(fmt.Sprintf("Dot/n=%d", n), func(b *testing.B) {
			benchVsGeneric(b, func() { sink += Dot(x, y) })
		})
		b.Run(fmt.Sprintf("DotF16/n=%d", n), func(b *testing.B) {
			benchVsGeneric(b, func() { sink += DotF16(h, y) })
		})
		b.Run(fmt.Sprintf("Axpy/n=%d", n), func(b *testing.B) {
			benchVsGeneric(b, func() { Axpy(y, 1e-9, x) })
		})
		b.Run(fmt.Sprintf("RMSNorm/n=%d", n), func(b *testing.B) {
			benchVsGeneric(b, func() { RMSNorm(y, x, x, 1e-5) })
		})
		b.Run(fmt.Sprintf("SiLUMul/n=%d", n), func(b *testing.B) {
			g := append([]float32(nil), x...)
			benchVsGeneric(b, func() { copy(g, x); SiLUMul(g, y) })
		})
		_ = sink
	}
}
