//go:build !purego

package kernels

import (
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// BenchmarkGemmTile measures the blocked GEMMs' inner kernel alone: one strip of weight
// rows (6 on AVX-512, 3 on AVX-VNNI and AVX2) times one block of 126-128 prepared tokens
// over 4096 columns, everything in cache, against the path's register-only multiply
// loop (IntPeakMACs), as pct_peak_cpu. Each sample is ~10-40 µs and the fastest of
// thousands (thread CPU time) is kept for both, alternating, so on a shared machine
// this shows what the kernel can do when it gets a core to itself; BenchmarkGemm shows
// what the whole product achieves, copies and memory traffic included.
func BenchmarkGemmTile(b *testing.B) {
	const cols = 4096
	benchISAs(b, func(b *testing.B) {
		isa := Active()
		var rows, ntok, ps int
		var call func()
		buf := make([]byte, 200*(2*cols+64))
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		switch isa {
		case AVX512:
			rows, ntok, ps = gemmI8Rows, 128, cols+64
			dots := make([]int32, rows*ntok)
			call = func() {
				gemmI8PStripAVX512(&dots[0], rows, asI8(buf), ps, &buf[rows*ps], ps, cols, 1, ntok/gemmI8Toks, 0)
			}
		case AVXVNNI:
			rows, ntok, ps = gemmVEXRows, 128, cols+64
			dots := make([]int32, rows*ntok)
			call = func() {
				gemmI8StripAVXVNNI(&dots[0], rows, asI8(buf), ps, &buf[rows*ps], ps, cols, ntok/gemmVEXToks)
			}
		case AVX2:
			rows, ntok, ps = gemmAVX2Rows, 126, 2*cols+64
			dots := make([]int32, rows*ntok)
			call = func() {
				gemmI16StripAVX2(&dots[0], rows, &buf[0], ps, &buf[rows*ps], ps, cols, ntok/gemmAVX2Toks)
			}
		default:
			b.Skip("no blocked GEMM kernel on this path")
		}
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		const peakIters = 1 << 12 // ~10-30 µs, like a kernel sample: the clock read costs a syscall
		var peakMACs int64
		best := func(f func(), cur time.Duration) time.Duration {
			c0, ok0 := threadCPUTime()
			f()
			c1, ok1 := threadCPUTime()
			if d := c1 - c0; ok0 && ok1 && (cur == 0 || d < cur) {
				return d
			}
			return cur
		}
		var tk, tp time.Duration
		b.ResetTimer()
		for b.Loop() {
			for range 200 {
				tk = best(call, tk)
				tp = best(func() { peakMACs = IntPeakMACs(peakIters) }, tp)
			}
		}
		if tk == 0 || tp == 0 {
			b.Skip("no thread CPU time on this OS")
		}
		macs := float64(rows * ntok * cols)
		b.ReportMetric(2*macs/float64(tk.Nanoseconds()), "GOPS_cpu")
		b.ReportMetric(100*(macs/float64(tk))/(float64(peakMACs)/float64(tp)), "pct_peak_cpu")
	})
}

func asI8(b []byte) *int8 { return (*int8)(unsafe.Pointer(&b[0])) }
