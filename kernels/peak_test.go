package kernels

import (
	"testing"
	"time"
)

// Every peak loop this CPU and build can run does the work it reports: the MAC and FLOP
// counts follow the per-iteration tables in peak.go, and each loop's checksum (lane 0 of
// its accumulators, or the generic chains' sum) shows that exactly n iterations of that
// many independent accumulators ran. Under qemu -cpu Haswell (TestUnderQemu) the avx2
// subtests run the VEX-only ymm loops, so an EVEX instruction in them would fault there.
func TestPeakLoops(t *testing.T) {
	prev := Active()
	defer SetISA(prev)
	for isa := Generic; isa < numISA; isa++ {
		t.Run(isa.String(), func(t *testing.T) {
			if !Supported(isa) {
				t.Skipf("%s is not supported on this CPU or build", isa)
			}
			if _, err := SetISA(isa); err != nil {
				t.Fatal(err)
			}
			macsPerIter, accs, lanes := int64(12), int64(12), int64(1) // generic
			flopsPerIter, faccs := int64(24), int64(12)
			if !purego {
				switch isa {
				case AVX512:
					macsPerIter, accs, lanes, flopsPerIter, faccs = 1024, 16, 16, 512, 16
				case AVXVNNI:
					macsPerIter, accs, lanes, flopsPerIter, faccs = 448, 14, 8, 224, 14
				case AVX2:
					macsPerIter, accs, lanes, flopsPerIter, faccs = 384, 12, 8, 224, 14
				case NEON:
					macsPerIter, accs, lanes, flopsPerIter, faccs = 256, 16, 4, 128, 16
				}
			}
			if accs*lanes*4 != macsPerIter && isa != Generic {
				t.Fatalf("table: %d accumulators x %d lanes x 4 != %d", accs, lanes, macsPerIter)
			}
			for _, n := range []int{0, 1, 7, 1000} {
				if got := IntPeakMACs(n); got != macsPerIter*int64(n) {
					t.Errorf("IntPeakMACs(%d) = %d, want %d", n, got, macsPerIter*int64(n))
				}
				if got := FloatPeakFLOPs(n); got != flopsPerIter*int64(n) {
					t.Errorf("FloatPeakFLOPs(%d) = %d, want %d", n, got, flopsPerIter*int64(n))
				}
				_, isum := intPeak(isa, n)
				_, fsum := floatPeak(isa, n)
				var wantI int32
				wantF := float32(faccs * int64(n)) // every lane counts up by 1*1 per iteration
				if isa == Generic || purego {
					// 12 chains s = 3s + 5 from s = 0..11, in wrapping int32.
					for k := range int32(12) {
						s := k
						for range n {
							s = 3*s + 5
						}
						wantI += s
					}
					wantF = float32(66 + 12*n) // chains from 0..11, each +1 an iteration
				} else {
					// Every int32 lane gains 4 products of 3*5 per accumulator and iteration.
					wantI = int32(60 * accs * int64(n))
				}
				if n == 0 {
					wantI, wantF = 0, 0 // the loops do not run
				}
				if isum != wantI {
					t.Errorf("n=%d: integer checksum %d, want %d", n, isum, wantI)
				}
				if fsum != wantF {
					t.Errorf("n=%d: float checksum %v, want %v", n, fsum, wantF)
				}
			}
			// A rough rate, for the log (not asserted: the machine is shared).
			const n = 20000
			start := time.Now()
			macs := IntPeakMACs(n)
			mid := time.Now()
			flops := FloatPeakFLOPs(n)
			t.Logf("%s: %.1f GMAC/s int8, %.1f GFLOP/s float32 (one thread, one short call)", isa,
				float64(macs)/mid.Sub(start).Seconds()/1e9, float64(flops)/time.Since(mid).Seconds()/1e9)
		})
	}
}

func BenchmarkIntPeak(b *testing.B) {
	var macs int64
	for b.Loop() {
		macs += IntPeakMACs(1000)
	}
	b.ReportMetric(float64(macs)/b.Elapsed().Seconds()/1e9, "GMAC/s")
}

func BenchmarkFloatPeak(b *testing.B) {
	var flops int64
	for b.Loop() {
		flops += FloatPeakFLOPs(1000)
	}
	b.ReportMetric(float64(flops)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
