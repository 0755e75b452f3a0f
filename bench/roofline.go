package bench

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/cpuid/v2"

	"github.com/mole-llm/mole/kernels"
)

// Roofline is what the machine allows at one thread count, measured in this process.
// The compute peaks are register-only loops of the kernel path's own multiply
// instructions (kernels.IntPeakMACs, kernels.FloatPeakFLOPs) run on every thread at
// once: what the cores can issue, not what a kernel achieves. GemmGMACs is what the
// Q8_0 GEMM kernel achieves on data in cache, for comparison; it is not a roof.
type Roofline struct {
	ISA         string  `json:"isa"`
	Threads     int     `json:"n_threads"`
	ReadGBs     float64 `json:"read_gb_s"`    // streaming read bandwidth, 1e9 bytes/s
	PeakGMACs   float64 `json:"peak_gmac_s"`  // int8 multiply-accumulates per second, 1e9 (the ISA's peak loop)
	PeakGFLOPs  float64 `json:"peak_gflop_s"` // float32 operations per second, 1e9 (FMA peak loop, 2 per lane)
	GemmGMACs   float64 `json:"gemm_gmac_s"`  // achieved: kernels.GemmQ8_0 in cache, 1e9 MACs/s
	ReadMethod  string  `json:"read_method"`  // which loop measured the bandwidth
	PeakMethod  string  `json:"peak_method"`  // the integer peak loop
	FloatMethod string  `json:"float_peak_method"`
	GemmMethod  string  `json:"gemm_method"`
	BufferMiB   int     `json:"buffer_mib"`
}

// streamRead reads all of buf with the kernel path's streaming loop (SIMD loads with
// independent sums, so the loop is bound by memory, not by the core) in 4 MiB pieces:
// an assembly call cannot be preempted, and one over a whole buffer would hold up the
// garbage collector for tens of milliseconds.
func streamRead(buf []byte) uint64 {
	var s uint64
	for len(buf) > 0 {
		n := min(len(buf), 4<<20)
		s += kernels.StreamRead(buf[:n])
		buf = buf[n:]
	}
	return s
}

// readSink keeps streamRead's results observable: the compiler keeps stores to a
// package variable, so the loops that feed it are not optimised away. Atomic: the
// bandwidth is measured on several threads at once.
var readSink atomic.Uint64

// BufferBytes is the size of the bandwidth buffer: four times the L3 cache and at least
// 512 MiB, so the loop measures DRAM and not a cache (server parts reach 320 MiB of L3:
// a fixed 512 MiB buffer would be a third cached there).
var BufferBytes = min(max(512<<20, 4*int(cpuid.CPU.Cache.L3)), 4<<30)

// MeasureBandwidth returns the best streaming read bandwidth (bytes/s) of threads
// goroutines each reading its own share of one buffer, over a few passes. The buffer is
// returned to the OS afterwards so it does not count towards a model's peak RSS.
func MeasureBandwidth(threads int) float64 {
	buf := make([]byte, BufferBytes)
	// Write every page so that reads hit memory, not the shared zero page.
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = byte(i >> 12)
	}
	threads = max(threads, 1)
	part := len(buf) / threads &^ 63
	best := 0.0
	for pass := 0; pass < 6; pass++ {
		var wg sync.WaitGroup
		sums := make([]uint64, threads)
		start := time.Now()
		for t := range threads {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sums[t] = streamRead(buf[t*part : (t+1)*part])
			}()
		}
		wg.Wait()
		el := time.Since(start).Seconds()
		for _, s := range sums {
			readSink.Add(s)
		}
		// The first pass also faults in TLB entries; taking the best pass skips it.
		if pass > 0 {
			best = max(best, float64(part*threads)/el)
		}
	}
	buf = nil
	runtime.GC()
	debug.FreeOSMemory()
	return best
}

// peakRounds and peakRound: each compute figure is the best of peakRounds rounds of
// peakRound (the machine may be shared; a peak is the best the cores can do).
const (
	peakRounds = 3
	peakRound  = 100 * time.Millisecond
)

// rate runs threads goroutines at once, goroutine t calling work(t) repeatedly for
// about dur, and returns the units of work per second of all of them together (units
// over the wall time from the common start to the last finish). One call is kept near
// 200 µs: assembly cannot be preempted, and a longer call would hold up the garbage
// collector.
func rate(threads int, dur time.Duration, work func(t int) func(n int) int64) float64 {
	threads = max(threads, 1)
	var calibrated, done sync.WaitGroup
	units := make([]int64, threads)
	ready := make(chan struct{})
	var deadline time.Time
	for t := range threads {
		calibrated.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			w := work(t)
			// Calibrate before the clock starts: grow n until one call takes >= 50 µs.
			n := 64
			for {
				c := time.Now()
				w(n)
				if d := time.Since(c); d >= 50*time.Microsecond || n >= 1<<30 {
					n = max(1, int(float64(n)*float64(200*time.Microsecond)/float64(max(d, 1))))
					break
				}
				n *= 4
			}
			calibrated.Done()
			<-ready
			var u int64
			for time.Now().Before(deadline) {
				u += w(n)
			}
			units[t] = u
		}()
	}
	calibrated.Wait()
	start := time.Now()
	deadline = start.Add(dur)
	close(ready)
	done.Wait()
	el := time.Since(start).Seconds()
	var sum int64
	for _, u := range units {
		sum += u
	}
	return float64(sum) / el
}

// best is the highest of peakRounds rounds of rate.
func best(threads int, work func(n int) int64) float64 {
	b := 0.0
	for range peakRounds {
		b = max(b, rate(threads, peakRound, func(int) func(int) int64 { return work }))
	}
	return b
}

// MeasurePeak returns the int8 multiply-accumulates per second of threads goroutines
// each running the active path's integer peak loop (kernels.IntPeakMACs: independent
// VPDPBUSD, VPMADDUBSW+VPMADDWD, SDOT... on registers only): the compute roof of the
// integer kernels, which prefill approaches because it reuses each weight across the
// tokens of a batch.
func MeasurePeak(threads int) float64 { return best(threads, kernels.IntPeakMACs) }

// MeasureFloatPeak returns the float32 operations per second (2 per FMA lane) of threads
// goroutines each running the active path's FMA peak loop (kernels.FloatPeakFLOPs): the
// compute roof of the matrices stored in F32, F16 or BF16, which run in float.
func MeasureFloatPeak(threads int) float64 { return best(threads, kernels.FloatPeakFLOPs) }

const gemmMethod = "kernels.GemmQ8_0, 8 tokens x 16 rows x 4096 columns in cache"

// MeasureGemm returns the multiply-adds per second that threads goroutines achieve, each
// running the Q8_0 integer matrix kernel of the active path on data that stays in the
// L2 cache: what a real kernel reaches, beside the peak (it is not the roof).
func MeasureGemm(threads int) float64 {
	// The shape of one engine GEMM call (engine's gemmShape): the blocked kernels need
	// enough rows and tokens per call to amortise preparing them.
	const rows, cols, ntok = 60, 4096, 64
	threads = max(threads, 1)
	x := make([]float32, cols)
	for i := range x {
		x[i] = float32(i%17) - 8
	}
	// Each goroutine quantizes its own copy, so that it sits in that core's cache.
	return rate(threads, 150*time.Millisecond, func(int) func(int) int64 {
		var w []byte
		for range rows {
			w = kernels.QuantizeQ8_0(w, x)
		}
		xq := make([]byte, ntok*kernels.Q8ActBytes(cols))
		for k := range ntok {
			kernels.QuantizeQ8_0Act(xq[k*kernels.Q8ActBytes(cols):], x)
		}
		out := make([]float32, rows*ntok)
		return func(n int) int64 {
			for range n {
				kernels.GemmQ8_0(out, rows, w, cols, xq, ntok)
			}
			return int64(n) * rows * cols * ntok
		}
	})
}

// MeasureRoofline measures the roofs (and the achieved GEMM rate) for a thread count on
// the active ISA.
func MeasureRoofline(threads int) Roofline {
	intLoop, floatLoop := kernels.PeakLoops()
	isa := kernels.Active().String()
	return Roofline{
		ISA:         isa,
		Threads:     threads,
		ReadGBs:     MeasureBandwidth(threads) / 1e9,
		PeakGMACs:   MeasurePeak(threads) / 1e9,
		PeakGFLOPs:  MeasureFloatPeak(threads) / 1e9,
		GemmGMACs:   MeasureGemm(threads) / 1e9,
		ReadMethod:  "kernels.StreamRead, " + isa,
		PeakMethod:  "kernels.IntPeakMACs, " + isa + ": " + intLoop + ", register-only",
		FloatMethod: "kernels.FloatPeakFLOPs, " + isa + ": " + floatLoop + ", register-only",
		GemmMethod:  gemmMethod,
		BufferMiB:   BufferBytes >> 20,
	}
}
