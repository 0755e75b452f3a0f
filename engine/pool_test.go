package engine

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPoolRunCost checks that RunCost covers [0, n) exactly once on every path, runs
// small work as a single call on the caller, bounds each chunk to about SliceNs of
// estimated work (also with one worker, where the chunks are the only safe points), and
// does not allocate.
func TestPoolRunCost(t *testing.T) {
	for _, workers := range []int{1, 2, 3} {
		p := NewPool(workers)
		hits := make([]int32, 10000)
		var calls, maxLen atomic.Int64
		fn := func(lo, hi int) {
			calls.Add(1)
			for {
				m := maxLen.Load()
				if int64(hi-lo) <= m || maxLen.CompareAndSwap(m, int64(hi-lo)) {
					break
				}
			}
			for i := lo; i < hi; i++ {
				atomic.AddInt32(&hits[i], 1)
			}
		}
		for _, c := range []struct {
			n       int
			itemNs  float64
			calls   int // exact number of calls expected, or 0
			maxSpan int // largest chunk allowed
		}{
			{n: 100, itemNs: 10, calls: 1, maxSpan: 100},        // 1 µs: caller alone
			{n: 1000, itemNs: 19, calls: 1, maxSpan: 1000},      // just under SerialNs
			{n: 10000, itemNs: 1000, maxSpan: SliceNs / 1000},   // 10 ms: chunks of ≤ 0.25 ms
			{n: 7, itemNs: 1e6, calls: 7, maxSpan: 1},           // one item over SliceNs: one per call
			{n: 10000, itemNs: 0, calls: 1, maxSpan: 10000},     // free items
			{n: 5000, itemNs: 50, maxSpan: SliceNs / 50},        // 0.25 ms in total
			{n: 3, itemNs: 100_000, maxSpan: SliceNs / 100_000}, // fewer items than chunks wanted
		} {
			clear(hits)
			calls.Store(0)
			maxLen.Store(0)
			p.RunCost(c.n, c.itemNs, fn)
			for i, h := range hits[:c.n] {
				if h != 1 {
					t.Fatalf("workers %d, n %d, itemNs %g: index %d run %d times", workers, c.n, c.itemNs, i, h)
				}
			}
			if c.calls != 0 && calls.Load() != int64(c.calls) {
				t.Errorf("workers %d, n %d, itemNs %g: %d calls, want %d", workers, c.n, c.itemNs, calls.Load(), c.calls)
			}
			if maxLen.Load() > int64(c.maxSpan) {
				t.Errorf("workers %d, n %d, itemNs %g: a chunk of %d items, want at most %d", workers, c.n, c.itemNs, maxLen.Load(), c.maxSpan)
			}
		}
		// RunChunk on one worker still calls fn per chunk: the chunks are its safe points.
		calls.Store(0)
		clear(hits)
		p.RunChunk(1000, 100, fn)
		if calls.Load() != 10 {
			t.Errorf("workers %d: RunChunk(1000, 100) made %d calls, want 10", workers, calls.Load())
		}
		if n := testing.AllocsPerRun(50, func() { p.RunCost(len(hits), 1000, fn) }); n != 0 {
			t.Errorf("workers %d: RunCost allocates %v", workers, n)
		}
		p.Close()
	}
}

// TestPoolConcurrentRuns checks that Runs from several goroutines on one Pool (States
// sharing a Model) are serialised correctly.
func TestPoolConcurrentRuns(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hits := make([]int32, 3000)
			fn := func(lo, hi int) {
				for i := lo; i < hi; i++ {
					hits[i]++
				}
			}
			for range 50 {
				clear(hits)
				p.RunCost(len(hits), 100, fn)
				for i, h := range hits {
					if h != 1 {
						t.Errorf("index %d run %d times", i, h)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

// safePointChild names the environment variable that makes TestPoolSafePoints run its
// measurement (in a child process whose preemption is limited to function calls).
const safePointChild = "MOLE_POOL_SAFEPOINT_CHILD"

// TestPoolSafePoints checks the property the pool's chunking exists for: while a long
// pool run occupies every P with code that cannot be preempted in the middle (as
// assembly kernels cannot), the GC's stop-the-world is still reached promptly, because
// each chunk returns to a preemption point. The measurement runs in a child process with
// GODEBUG=asyncpreemptoff=1, where a Go loop without calls cannot be preempted, which is
// exactly how an assembly kernel behaves under default settings.
//
// What is asserted is the stop-the-world pause as the runtime records it
// (/sched/pauses/stopping/gc and /sched/pauses/total/gc: the time every other goroutine
// stands still), per GC, as the median of nine. The wall time of runtime.GC() is only logged: with every P busy it is
// 20-80 ms even for fully preemptible Go code, because the scheduler hands the GC's
// goroutines a P at sysmon's 10 ms preemption ticks, not at safe points.
//
// The child also runs a control: one uninterrupted call, which must stretch
// the pause to hundreds of ms; without it the test could pass because preemption was
// not actually limited to calls. Margins are wide (chunked: median pause under 50 ms,
// typically 0.3 ms; control: over 100 ms, typically 400 ms) because on a loaded
// two-core machine the OS can deschedule any thread for milliseconds.
func TestPoolSafePoints(t *testing.T) {
	if os.Getenv(safePointChild) == "" {
		if testing.Short() {
			t.Skip("spawns a child process that keeps two cores busy for about a second")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestPoolSafePoints$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), safePointChild+"=1", "GODEBUG=asyncpreemptoff=1", "GOMAXPROCS=2")
		out, err := cmd.CombinedOutput()
		t.Logf("child:\n%s", out)
		if err != nil {
			t.Fatalf("child failed: %v", err)
		}
		return
	}

	// spin is the uninterruptible work: a leaf loop with no calls (and so, with async
	// preemption off, no preemption point) taking about itemNs per call.
	const itemNs = 20_000
	iters := calibrateSpin(itemNs)
	sink := make([]uint64, 64)

	// measure starts run, then forces count GCs while it goes, and returns the median
	// and the longest stop-the-world pause (stopping the world plus the pause itself)
	// the runtime recorded for them. The median is what is asserted: under heavy load
	// the OS may deschedule a worker thread mid-chunk for tens of ms, which delays any
	// stop-the-world whatever the code does, but not for most GCs of a run.
	measure := func(name string, run func(), count int) (median, longest time.Duration) {
		var started atomic.Bool
		done := make(chan struct{})
		go func() {
			started.Store(true)
			run()
			close(done)
		}()
		for !started.Load() {
			runtime.Gosched()
		}
		var pauses, wall []time.Duration
		for range count {
			time.Sleep(10 * time.Millisecond)
			before := readPauses()
			t0 := time.Now()
			runtime.GC()
			wall = append(wall, time.Since(t0))
			after := readPauses()
			pauses = append(pauses, max(maxNewPause(before[0], after[0]), maxNewPause(before[1], after[1])))
		}
		<-done
		slices.Sort(pauses)
		t.Logf("%s: GC pauses %v; runtime.GC() wall times %v", name, pauses, wall)
		return pauses[len(pauses)/2], pauses[len(pauses)-1]
	}

	// Chunked: 2 workers × ~0.5 s of items, chunks of SliceNs.
	p := NewPool(2)
	defer p.Close()
	n := 2 * 500_000_000 / itemNs
	fn := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			atomic.AddUint64(&sink[i%len(sink)], spin(iters)) // the workers share sink
		}
	}
	median, longest := measure(fmt.Sprintf("chunked run (%d items of ~%d µs, %d per chunk)", n, itemNs/1000, SliceNs/itemNs),
		func() { p.RunCost(n, itemNs, fn) }, 9)

	// Control: one uninterrupted call of ~400 ms on one P, leaving the other to the GC
	// (with both taken, the GC could not even start before the calls ended).
	ctl, _ := measure("control (one call of ~400 ms)", func() { sink[0] += spin(iters * 20_000) }, 1)
	runtime.KeepAlive(sink)
	if ctl < 100*time.Millisecond {
		t.Fatalf("control: the GC paused only %v during an unpreemptible call; preemption is not limited to calls here, so the chunked measurement proves nothing", ctl)
	}
	if median > 50*time.Millisecond {
		t.Errorf("GC pause during a chunked pool run: median %v (longest %v); want under 50 ms", median, longest)
	}
}

// readPauses returns the runtime's histograms of GC stop-the-world stopping time and
// total pause time.
func readPauses() [2]metrics.Float64Histogram {
	s := []metrics.Sample{{Name: "/sched/pauses/stopping/gc:seconds"}, {Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(s)
	var h [2]metrics.Float64Histogram
	for i := range s {
		v := s[i].Value.Float64Histogram()
		h[i] = metrics.Float64Histogram{Counts: slices.Clone(v.Counts), Buckets: v.Buckets}
	}
	return h
}

// maxNewPause returns the upper bound of the highest bucket that gained counts between
// two readings of a pause histogram.
func maxNewPause(before, after metrics.Float64Histogram) time.Duration {
	var hi float64
	for i := range after.Counts {
		if after.Counts[i] > before.Counts[i] {
			hi = after.Buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = after.Buckets[i]
			}
		}
	}
	return time.Duration(hi * float64(time.Second))
}

// spinSink keeps spin's result observable, so the loop is not optimised away.
var spinSink uint64

// spin runs n rounds of xorshift. It is a leaf with a small frame, so the compiler omits
// its stack check: no preemption point inside unless preemption is asynchronous.
//
//go:noinline
func spin(n int) uint64 {
	x := uint64(n) | 1
	for i := 0; i < n; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

// calibrateSpin returns the spin count that takes about ns nanoseconds here. It keeps
// the fastest of several timings: on a loaded machine a timing can include time the
// thread spent descheduled, which would make every later spin far too short.
func calibrateSpin(ns int) int {
	n := 1 << 16
	for {
		best := time.Duration(math.MaxInt64)
		for range 5 {
			t0 := time.Now()
			spinSink += spin(n)
			best = min(best, time.Since(t0))
		}
		if best > 2*time.Millisecond {
			return max(1, int(float64(n)*float64(ns)/float64(best)))
		}
		n *= 2
	}
}

// RunGuided covers every row exactly once, in chunks that start on a multiple of align,
// never exceed chunk, and are at least tail rows except where the rows run out; the
// chunks shrink towards the end, so the run makes more calls than RunChunk's equal
// chunks but far fewer than tail-sized ones.
func TestPoolRunGuided(t *testing.T) {
	for _, workers := range []int{1, 2, 3} {
		p := NewPool(workers)
		for _, c := range []struct{ n, chunk, tail, align int }{
			{4096, 516, 64, 6}, {4096, 512, 64, 4}, {1000, 100, 7, 1}, {17, 4, 1, 4}, {5, 100, 1, 1}, {300, 10, 40, 4},
		} {
			seen := make([]atomic.Int32, c.n)
			var calls atomic.Int32
			var bad atomic.Value
			p.RunGuided(c.n, c.chunk, c.tail, c.align, func(lo, hi int) {
				calls.Add(1)
				tail := max((c.tail+c.align-1)/c.align*c.align, c.align)
				if lo%c.align != 0 || hi-lo > max(c.chunk, tail) || (hi-lo < tail && hi != c.n) {
					bad.Store([2]int{lo, hi})
				}
				for i := lo; i < hi; i++ {
					seen[i].Add(1)
				}
			})
			if v := bad.Load(); v != nil {
				t.Errorf("workers %d %+v: chunk %v breaks the rules", workers, c, v)
			}
			for i := range seen {
				if seen[i].Load() != 1 {
					t.Fatalf("workers %d %+v: row %d ran %d times", workers, c, i, seen[i].Load())
				}
			}
			if workers > 1 && c.n == 4096 {
				equal := (c.n + c.chunk - 1) / c.chunk
				if n := int(calls.Load()); n <= equal || n > 3*equal {
					t.Errorf("workers %d %+v: %d calls, want a few more than RunChunk's %d", workers, c, n, equal)
				}
			}
		}
		p.Close()
	}
}
