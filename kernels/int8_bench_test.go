package kernels

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// Benchmarks of the int8 kernels. Each ISA is a sub-benchmark; ratios are measured in
// the same run: x_generic = generic twin time / this path's time (same matrix);
// pct_stream = GEMV weight GB/s / StreamRead GB/s over a buffer of the same size.

func fillRandom(b []byte, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed))
	blk := make([]byte, 1<<16+13)
	for i := range blk {
		blk[i] = byte(r.Uint32())
	}
	for i := 0; i < len(b); i += len(blk) {
		copy(b[i:], blk)
	}
}

type benchMat struct {
	rows, cols int
	w          []int8
	codes      []byte
	tables     []int8
	groups     []byte // the stored (z, S2) pairs of GemvA8W4G (valid DGQ values)
	scale      []float32
	rowSum     []int32
	x          []int8
	out        []float32
}

func newBenchMat(rows, cols int, i8, a4 bool) *benchMat {
	m := &benchMat{rows: rows, cols: cols}
	if i8 {
		raw := make([]byte, rows*cols)
		fillRandom(raw, 1)
		m.w = make([]int8, len(raw))
		for i, v := range raw {
			m.w[i] = int8(v)
		}
	}
	if a4 {
		m.codes = make([]byte, rows*cols/2)
		fillRandom(m.codes, 2)
		tb := make([]byte, rows*a8w4Groups(cols)*16)
		fillRandom(tb, 3)
		m.tables = make([]int8, len(tb))
		for i, v := range tb {
			m.tables[i] = int8(v)
		}
		m.groups = make([]byte, rows*a8w4Groups(cols)*2)
		fillRandom(m.groups, 4)
		// z 0..15 and S2 8..18: the spread of a DGQ-quantized model (kjv-moe: 143
		// distinct pairs, 99% of the multipliers in 8..18), so the kernels' table of all
		// pairs is used as in the engine
		for i := 0; i < len(m.groups); i += 2 {
			m.groups[i] &= 15
			m.groups[i+1] = 8 + m.groups[i+1]%11
		}
	}
	m.scale = make([]float32, rows)
	for i := range m.scale {
		m.scale[i] = 1e-3
	}
	m.rowSum = make([]int32, rows)
	m.x = make([]int8, cols)
	for i := range m.x {
		m.x[i] = int8(i*37 + 11)
	}
	m.out = make([]float32, rows)
	return m
}

func (m *benchMat) gemvI8(gen bool) {
	if gen {
		gemvI8Generic(m.out, m.w, m.scale, m.rowSum, m.x, 0.01)
	} else {
		GemvI8(m.out, m.w, m.scale, m.rowSum, m.x, 0.01)
	}
}

func (m *benchMat) gemvA4(gen bool) {
	if gen {
		gemvA8W4Generic(m.out, m.codes, m.tables, m.scale, m.rowSum, m.x, 0.01)
	} else {
		GemvA8W4(m.out, m.codes, m.tables, m.scale, m.rowSum, m.x, 0.01)
	}
}

// timeIt returns the best ns per call of f over a few rounds of ~budget each.
func timeIt(f func(), budget time.Duration) float64 {
	best := 0.0
	for round := 0; round < 3; round++ {
		n := 0
		t0 := time.Now()
		for time.Since(t0) < budget || n == 0 {
			f()
			n++
		}
		ns := float64(time.Since(t0).Nanoseconds()) / float64(n)
		if best == 0 || ns < best {
			best = ns
		}
	}
	return best
}

func benchISAs(b *testing.B, f func(b *testing.B)) {
	prev := Active()
	defer SetISA(prev)
	for _, i := range []ISA{AVX512, AVXVNNI, AVX2, NEON, Generic} {
		if _, err := SetISA(i); err != nil {
			continue
		}
		b.Run(i.String(), f)
	}
}

func BenchmarkGemvA8W4L2(b *testing.B) {
	m := newBenchMat(1024, 1024, false, true)
	bytes := float64(len(m.codes) + len(m.tables))
	benchISAs(b, func(b *testing.B) {
		gen := timeIt(func() { m.gemvA4(true) }, 20*time.Millisecond)
		b.SetBytes(int64(bytes))
		b.ResetTimer()
		for b.Loop() {
			m.gemvA4(false)
		}
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(gen/ns, "x_generic")
		b.ReportMetric(2*float64(m.rows*m.cols)/ns, "GOPS")
	})
}

func BenchmarkGemvA8W4GL2(b *testing.B) {
	m := newBenchMat(1024, 1024, false, true)
	bytes := float64(len(m.codes) + len(m.groups))
	benchISAs(b, func(b *testing.B) {
		gen := timeIt(func() { gemvA8W4GGeneric(m.out, m.codes, m.groups, m.scale, m.rowSum, m.x, 0.01) }, 20*time.Millisecond)
		b.SetBytes(int64(bytes))
		b.ResetTimer()
		for b.Loop() {
			GemvA8W4G(m.out, m.codes, m.groups, m.scale, m.rowSum, m.x, 0.01)
		}
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(gen/ns, "x_generic")
		b.ReportMetric(2*float64(m.rows*m.cols)/ns, "GOPS")
	})
}

func BenchmarkGemvI8L2(b *testing.B) {
	m := newBenchMat(1024, 1024, true, false)
	benchISAs(b, func(b *testing.B) {
		gen := timeIt(func() { m.gemvI8(true) }, 20*time.Millisecond)
		b.SetBytes(int64(len(m.w)))
		b.ResetTimer()
		for b.Loop() {
			m.gemvI8(false)
		}
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(gen/ns, "x_generic")
		b.ReportMetric(2*float64(m.rows*m.cols)/ns, "GOPS")
	})
}

// Out-of-cache: >= 256 MiB of weights, the GEMV walked in row chunks of 256 rows
// (as the engine does), next to StreamRead over the same buffers (benchVsStream).
var (
	dramOnce sync.Once
	dramA4   *benchMat
	dramI8   *benchMat
)

func dramMats() {
	dramOnce.Do(func() {
		// A8W4: 4096 cols = 2048 code bytes + 512 table bytes per row; 104 Ki rows = 260 MiB.
		dramA4 = newBenchMat(104*1024, 4096, false, true)
		// I8: 4096 cols x 64 Ki rows = 256 MiB.
		dramI8 = newBenchMat(64*1024, 4096, true, false)
	})
}

func chunked(rows, chunk int, f func(r0, r1 int)) {
	for r := 0; r < rows; r += chunk {
		f(r, min(r+chunk, rows))
	}
}

func BenchmarkGemvA8W4DRAM(b *testing.B) {
	dramMats()
	m := dramA4
	cb, tb := m.cols/2, a8w4Groups(m.cols)*16
	bytes := float64(len(m.codes) + len(m.tables))
	benchISAs(b, func(b *testing.B) {
		if Active() == Generic {
			b.Skip("generic: too slow for a 260 MiB matrix")
		}
		benchVsStream(b, bytes, func() { StreamRead(m.codes); StreamRead(unsafeBytes(m.tables)) }, func() {
			chunked(m.rows, 256, func(r0, r1 int) {
				GemvA8W4(m.out[r0:r1], m.codes[r0*cb:r1*cb], m.tables[r0*tb:r1*tb], m.scale[r0:r1], m.rowSum[r0:r1], m.x, 0.01)
			})
		})
	})
}

// BenchmarkGemvA8W4GDRAM is BenchmarkGemvA8W4DRAM's matrix read table-free: the bytes
// streamed (and counted) are the codes and the 2-byte pair of each group.
func BenchmarkGemvA8W4GDRAM(b *testing.B) {
	dramMats()
	m := dramA4
	cb, gb := m.cols/2, a8w4Groups(m.cols)*2
	bytes := float64(len(m.codes) + len(m.groups))
	benchISAs(b, func(b *testing.B) {
		if Active() == Generic {
			b.Skip("generic: too slow for a 260 MiB matrix")
		}
		benchVsStream(b, bytes, func() { StreamRead(m.codes); StreamRead(m.groups) }, func() {
			chunked(m.rows, 256, func(r0, r1 int) {
				GemvA8W4G(m.out[r0:r1], m.codes[r0*cb:r1*cb], m.groups[r0*gb:r1*gb], m.scale[r0:r1], m.rowSum[r0:r1], m.x, 0.01)
			})
		})
	})
}

func BenchmarkGemvI8DRAM(b *testing.B) {
	dramMats()
	m := dramI8
	bytes := float64(len(m.w))
	benchISAs(b, func(b *testing.B) {
		if Active() == Generic {
			b.Skip("generic: too slow for a 256 MiB matrix")
		}
		benchVsStream(b, bytes, func() { StreamRead(unsafeBytes(m.w)) }, func() {
			chunked(m.rows, 256, func(r0, r1 int) {
				GemvI8(m.out[r0:r1], m.w[r0*m.cols:r1*m.cols], m.scale[r0:r1], m.rowSum[r0:r1], m.x, 0.01)
			})
		})
	})
}

// benchVsStream times one streaming read of the weights (stream) and one GEMV over them
// (gemv) alternately, b.N times each, and reports both at their fastest pass: the two
// read the same memory under the same conditions (the machine is shared; the minimum is
// what each can do when left alone), so pct_stream = 100 * stream time / GEMV time is a
// like-for-like ratio. GB/s are weight bytes per second. pct_stream_cpu is the same ratio
// from the thread's CPU time (Linux; see threadCPUTime).
func benchVsStream(b *testing.B, bytes float64, stream, gemv func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.SetBytes(int64(bytes))
	var ts, tg minTimer
	b.ResetTimer()
	for b.Loop() {
		ts.start()
		stream()
		ts.stop()
		tg.start()
		gemv()
		tg.stop()
	}
	b.ReportMetric(bytes/float64(tg.wall.Nanoseconds()), "GB/s")
	b.ReportMetric(bytes/float64(ts.wall.Nanoseconds()), "stream_GB/s")
	b.ReportMetric(100*float64(ts.wall)/float64(tg.wall), "pct_stream")
	if tg.cpuOK && ts.cpuOK {
		b.ReportMetric(100*float64(ts.cpu)/float64(tg.cpu), "pct_stream_cpu")
	}
}

func BenchmarkStreamRead(b *testing.B) {
	for _, size := range []int{256 << 10, 256 << 20} {
		buf := make([]byte, size)
		fillRandom(buf, 4)
		b.Run(byteSize(size), func(b *testing.B) {
			benchISAs(b, func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					StreamRead(buf)
				}
			})
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<20 {
		return itoa(n>>20) + "MiB"
	}
	return itoa(n>>10) + "KiB"
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// GEMM (prefill): 512 tokens x 4096 x 4096. GOPS = 2*rows*cols*ntok / time (one MAC =
// 2 ops). pct_peak compares with the active path's register-only multiply loop measured
// in the same run (IntPeakMACs; on AVX-512 16 independent VPDPBUSD zmm per iteration, 64
// MACs each): each iteration times one GEMM call and ten ~1 ms peak-loop calls,
// alternately, and both are taken at their fastest (the machine is shared; like for
// like, as benchVsStream). pct_peak_cpu is the same ratio from the thread's CPU time
// (Linux), which a loaded machine does not distort by descheduling the long GEMM calls
// more often than the short peak calls.
func BenchmarkGemm(b *testing.B) {
	const ntok, rows, cols = 512, 4096, 4096
	m := newBenchMat(rows, cols, true, true)
	x := make([]int8, ntok*cols)
	fillRandom(unsafeBytes(x), 5)
	xs := make([]float32, ntok)
	for i := range xs {
		xs[i] = 0.01
	}
	out := make([]float32, ntok*rows)
	ops := 2 * float64(rows) * cols * ntok
	for _, kind := range []string{"I8", "A8W4"} {
		b.Run(kind, func(b *testing.B) {
			benchISAs(b, func(b *testing.B) {
				if Active() == Generic {
					b.Skip("generic: minutes per call")
				}
				// about 1 ms of the peak loop per call
				peakIters := 1 << 13
				if Active() != AVX512 {
					peakIters = 1 << 14
				}
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var g, p minTimer
				var peakMACs int64
				b.ResetTimer()
				for b.Loop() {
					g.start()
					if kind == "I8" {
						GemmI8(out, rows, m.w, m.scale, m.rowSum, x, xs)
					} else {
						GemmA8W4(out, rows, m.codes, m.tables, m.scale, m.rowSum, x, xs)
					}
					g.stop()
					for range 10 {
						p.start()
						peakMACs = IntPeakMACs(peakIters)
						p.stop()
					}
				}
				b.ReportMetric(ops/float64(g.wall.Nanoseconds()), "GOPS")
				peakOps := 2 * float64(peakMACs)
				b.ReportMetric(peakOps/float64(p.wall.Nanoseconds()), "peak_GOPS")
				b.ReportMetric(100*float64(p.wall)/float64(g.wall)*ops/peakOps, "pct_peak")
				if g.cpuOK {
					b.ReportMetric(100*float64(p.cpu)/float64(g.cpu)*ops/peakOps, "pct_peak_cpu")
					// The same from the median calls: on a loaded machine a ~50 ms GEMM
					// call rarely finds the quiet stretch a 1 ms peak call often does,
					// which biases the ratio of the fastest calls against the GEMM.
					b.ReportMetric(100*float64(p.medianCPU())/float64(g.medianCPU())*ops/peakOps, "pct_peak_cpu_med")
				}
			})
		})
	}
}

// minTimer keeps the fastest of the intervals between start and stop, in wall time and
// (when available) in the thread's CPU time.
type minTimer struct {
	wall, cpu, c0 time.Duration
	t0            time.Time
	cpuOK, primed bool
	cpus          []time.Duration // every interval's CPU time, for medianCPU
}

// medianCPU is the median of the intervals' CPU times (0 without any).
func (m *minTimer) medianCPU() time.Duration {
	if len(m.cpus) == 0 {
		return 0
	}
	s := slices.Clone(m.cpus)
	slices.Sort(s)
	return s[len(s)/2]
}

func (m *minTimer) start() {
	m.c0, m.cpuOK = threadCPUTime()
	m.t0 = time.Now()
}

func (m *minTimer) stop() {
	w := time.Since(m.t0)
	c, ok := threadCPUTime()
	m.cpuOK = m.cpuOK && ok
	if !m.primed || w < m.wall {
		m.wall = w
	}
	if !m.primed || c-m.c0 < m.cpu {
		m.cpu = c - m.c0
	}
	m.cpus = append(m.cpus, c-m.c0)
	m.primed = true
}
