package bench

import (
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/klauspost/cpuid/v2"

	"github.com/mole-llm/mole/kernels"
)

// Roofline is what the machine allows at one thread count, measured in this process.
type Roofline struct {
	ISA        string  `json:"isa"`
	Threads    int     `json:"n_threads"`
	ReadGBs    float64 `json:"read_gb_s"`   // streaming read bandwidth, 1e9 bytes/s
	PeakGMACs  float64 `json:"peak_gmac_s"` // integer multiply-adds per second, 1e9
	ReadMethod string  `json:"read_method"` // which loop measured the bandwidth
	PeakMethod string  `json:"peak_method"`
	BufferMiB  int     `json:"buffer_mib"`
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

// readSink keeps streamRead's results observable.
var readSink uint64

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
			readSink ^= s
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

const peakMethod = "kernels.GemmQ8_0, 8 tokens x 16 rows x 4096 columns in cache"

// MeasurePeak returns the multiply-adds per second of threads goroutines each running
// the Q8_0 integer matrix kernel of the active ISA on data that stays in the L2 cache:
// the compute roof, which prefill approaches because it reuses each weight across the
// tokens of a batch.
func MeasurePeak(threads int) float64 {
	const rows, cols, ntok = 16, 4096, 8
	threads = max(threads, 1)
	var wg sync.WaitGroup
	macs := make([]float64, threads)
	dur := 150 * time.Millisecond
	for t := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := make([]float32, cols)
			for i := range x {
				x[i] = float32(i%17) - 8
			}
			var w []byte
			for range rows {
				w = kernels.QuantizeQ8_0(w, x)
			}
			xq := make([]byte, ntok*kernels.Q8ActBytes(cols))
			for k := range ntok {
				kernels.QuantizeQ8_0Act(xq[k*kernels.Q8ActBytes(cols):], x)
			}
			out := make([]float32, rows*ntok)
			kernels.GemmQ8_0(out, rows, w, cols, xq, ntok) // warm the caches
			calls := 0
			start := time.Now()
			for time.Since(start) < dur {
				for range 16 {
					kernels.GemmQ8_0(out, rows, w, cols, xq, ntok)
				}
				calls += 16
			}
			macs[t] = float64(calls) * rows * cols * ntok / time.Since(start).Seconds()
		}()
	}
	wg.Wait()
	var sum float64
	for _, m := range macs {
		sum += m
	}
	return sum
}

// MeasureRoofline measures both roofs for a thread count on the active ISA.
func MeasureRoofline(threads int) Roofline {
	return Roofline{
		ISA:        kernels.Active().String(),
		Threads:    threads,
		ReadGBs:    MeasureBandwidth(threads) / 1e9,
		PeakGMACs:  MeasurePeak(threads) / 1e9,
		ReadMethod: "kernels.StreamRead, " + kernels.Active().String(),
		PeakMethod: peakMethod,
		BufferMiB:  BufferBytes >> 20,
	}
}
