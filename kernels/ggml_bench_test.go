package kernels

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// BenchmarkGemvGGML: GemvQ8_0/GemvQ4_0 on an L2-resident 1024x1024 matrix, every ISA
// against the generic twin measured in the same run (metric "x_generic"), and on a
// matrix of at least 256 MiB in weight GB/s with the ratio to StreamRead over the same
// bytes ("x_stream", 1 = memory bound). In L2 it also reports the ratio to the float-
// activation DotQ8_0/DotQ4_0 row loop the engine used before ("x_floatdot"). Run with -benchtime short: the shared cores are busy.
func BenchmarkGemvGGML(b *testing.B) {
	for _, q4 := range []bool{false, true} {
		typ := "Q8_0"
		if q4 {
			typ = "Q4_0"
		}
		for _, big := range []bool{false, true} {
			rows, cols := 1024, 1024
			size := "L2"
			if big {
				size = "DRAM"
				cols = 8192
				bpr := cols / QK * Q8_0Bytes
				if q4 {
					bpr = cols / QK * Q4_0Bytes
				}
				rows = (256<<20 + bpr - 1) / bpr
				rows = (rows + 3) &^ 3
			}
			w, xq := benchGGMLData(q4, rows, cols)
			out := make([]float32, rows)
			run := func(isa ISA) float64 { // seconds per GEMV, best of a few
				prev, _ := SetISA(isa)
				defer SetISA(prev)
				best := time.Duration(1 << 62)
				reps := 5
				if big {
					reps = 3
				}
				for i := 0; i < reps; i++ {
					t0 := time.Now()
					if q4 {
						GemvQ4_0(out, w, cols, xq)
					} else {
						GemvQ8_0(out, w, cols, xq)
					}
					best = min(best, time.Since(t0))
				}
				return best.Seconds()
			}
			for i := Generic; i < numISA; i++ {
				if !Supported(i) || (big && i == Generic) {
					continue
				}
				b.Run(typ+"/"+size+"/"+i.String(), func(b *testing.B) {
					b.SetBytes(int64(len(w)))
					var gen, stream, float float64
					if !big {
						gen = run(Generic)
						// The float-activation row dot product the engine used before.
						xf := make([]float32, cols)
						DequantQ8_0(xf, xq)
						dot, rb := DotQ8_0, cols/QK*Q8_0Bytes
						if q4 {
							dot, rb = DotQ4_0, cols/QK*Q4_0Bytes
						}
						best := time.Duration(1 << 62)
						for r := 0; r < 5; r++ {
							t0 := time.Now()
							for i := 0; i < rows; i++ {
								out[i] = dot(w[i*rb:(i+1)*rb], xf)
							}
							best = min(best, time.Since(t0))
						}
						float = best.Seconds()
					} else {
						best := time.Duration(1 << 62)
						for r := 0; r < 3; r++ {
							t0 := time.Now()
							StreamRead(w)
							best = min(best, time.Since(t0))
						}
						stream = best.Seconds()
					}
					prev, _ := SetISA(i)
					defer SetISA(prev)
					b.ResetTimer()
					for b.Loop() {
						if q4 {
							GemvQ4_0(out, w, cols, xq)
						} else {
							GemvQ8_0(out, w, cols, xq)
						}
					}
					b.StopTimer()
					own := run(i)
					b.ReportMetric(float64(len(w))/own/1e9, "GB/s")
					if big {
						b.ReportMetric(stream/own, "x_stream")
					} else {
						b.ReportMetric(gen/own, "x_generic")
						b.ReportMetric(float/own, "x_floatdot")
					}
				})
			}
		}
	}
}

var benchGGMLCache sync.Map

func benchGGMLData(q4 bool, rows, cols int) ([]byte, []byte) {
	type key struct {
		q4         bool
		rows, cols int
	}
	if v, ok := benchGGMLCache.Load(key{q4, rows, cols}); ok {
		p := v.([2][]byte)
		return p[0], p[1]
	}
	r := rand.New(rand.NewPCG(7, 7))
	var w []byte
	if q4 {
		w = randQ4Weights(r, rows, cols, false)
	} else {
		w = randQ8Weights(r, rows, cols, false)
	}
	xq := randAct(r, cols, false)
	benchGGMLCache.Store(key{q4, rows, cols}, [2][]byte{w, xq})
	return w, xq
}

// BenchmarkQuantizeQ8_0Act: the per-input activation rounding (4096 floats).
func BenchmarkQuantizeQ8_0Act(b *testing.B) {
	x := randVec(rand.New(rand.NewPCG(8, 8)), 4096)
	dst := make([]byte, Q8ActBytes(len(x)))
	b.SetBytes(int64(4 * len(x)))
	for b.Loop() {
		QuantizeQ8_0Act(dst, x)
	}
}

// BenchmarkGemmGGML: GemmQ8_0/GemmQ4_0 for prefill, 512 tokens x 4096 x 4096. GOPS =
// 2*rows*cols*ntok / time. Each iteration times one GEMM call, one call of the per-token
// GEMV path it replaced (x_pertoken = its time / the GEMM's; 1 on the paths without a
// blocked kernel) and ten ~1 ms calls of the register-only VPDPBUSD zmm peak loop
// (IntPeakMACs on AVX512), alternately, each taken at its fastest; pct_peak is the GEMM's
// share of that peak (ops/time ratio), pct_peak_cpu the same from the thread's CPU time
// (Linux), which descheduling on a loaded machine does not distort. Run with
// -benchtime 10x (fewer samples of the fastest call are noisy on a shared machine; the
// per-token path takes a few hundred ms per call).
func BenchmarkGemmGGML(b *testing.B) {
	const ntok, rows, cols = 512, 4096, 4096
	r := rand.New(rand.NewPCG(13, 13))
	xq := make([]byte, 0, ntok*Q8ActBytes(cols))
	for range ntok {
		xq = append(xq, randAct(r, cols, false)...)
	}
	out := make([]float32, ntok*rows)
	ops := 2 * float64(rows) * cols * ntok
	const peakIters = 1 << 13 // about 1 ms of VPDPBUSD zmm per call
	for _, q4 := range []bool{false, true} {
		typ := "Q8_0"
		gemm := GemmQ8_0
		if q4 {
			typ, gemm = "Q4_0", GemmQ4_0
		}
		w, _ := benchGGMLData(q4, rows, cols)
		b.Run(typ, func(b *testing.B) {
			benchISAs(b, func(b *testing.B) {
				isa := Active()
				if isa == Generic || isa == NEON {
					b.Skip("no blocked kernel on this path")
				}
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var g, o, p minTimer
				var peakOps float64
				for b.Loop() {
					g.start()
					gemm(out, rows, w, cols, xq, ntok)
					g.stop()
					prev := setGGMLPerToken(true)
					o.start()
					gemm(out, rows, w, cols, xq, ntok)
					o.stop()
					setGGMLPerToken(prev)
					if Supported(AVX512) {
						SetISA(AVX512)
						for range 10 {
							p.start()
							peakOps = 2 * float64(IntPeakMACs(peakIters))
							p.stop()
						}
						SetISA(isa)
					}
				}
				b.ReportMetric(ops/float64(g.wall.Nanoseconds()), "GOPS")
				b.ReportMetric(float64(o.wall)/float64(g.wall), "x_pertoken")
				if g.cpuOK {
					b.ReportMetric(float64(o.cpu)/float64(g.cpu), "x_pertoken_cpu")
				}
				if peakOps > 0 {
					b.ReportMetric(peakOps/float64(p.wall.Nanoseconds()), "peak_GOPS")
					b.ReportMetric(100*float64(p.wall)/float64(g.wall)*ops/peakOps, "pct_peak")
					if g.cpuOK {
						b.ReportMetric(100*float64(p.cpu)/float64(g.cpu)*ops/peakOps, "pct_peak_cpu")
					}
				}
			})
		})
	}
}
