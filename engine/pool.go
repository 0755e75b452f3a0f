package engine

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mole-llm/mole/kernels"
)

// Pool is a fixed set of worker goroutines, started once, that run row-parallel work.
// A Run hands out chunks of rows from an atomic counter, so a fast worker simply takes
// more chunks; the calling goroutine works too. Run allocates nothing: the caller
// passes a function value it created once (typically a method value stored in a
// State), and waking workers is a channel send.
//
// Runs on one Pool are serialised by a mutex, so States sharing a Model may be used
// from several goroutines; a function passed to Run must not itself call Run on the
// same Pool.
//
// # Panics
//
// A panic in fn on a worker goroutine would end the process (no caller could recover
// it), so each worker recovers it, the other workers stop taking chunks, and once every
// worker is done the goroutine that called Run re-raises it as a *WorkerPanic, which
// carries the worker's stack. A panic in fn on the calling goroutine propagates as usual,
// after the workers are done. Either way the Pool is left ready for the next run, so a
// server can recover the panic, fail one request and keep going.
//
// # Safe points
//
// Assembly kernels cannot be preempted: a goroutine inside one holds up a stop-the-world
// (every GC cycle has two) and the scheduler until it returns. Go code can be preempted
// almost anywhere (asynchronous preemption), and a call of fn that calls a kernel starts
// with a stack check that doubles as a synchronous preemption point. So the pool bounds how long a
// goroutine stays away from Go code by bounding the work of one fn call: every path,
// including the caller-only one, calls fn once per chunk, and RunCost sizes chunks to
// about SliceNs of work. A driver therefore keeps each kernel call within its chunk
// (kernels work on the row block they are given), and GC latency during a forward pass
// stays around SliceNs instead of the length of a whole matrix product (measured before
// this: 0.6 s). TestPoolSafePoints checks it with preemption limited to calls, which is
// how assembly behaves.
type Pool struct {
	workers int
	wake    []chan struct{}
	state   []atomic.Int32 // each helper's workerParked / workerSpinning / workerClaimed
	spinNs  int64          // how long a helper polls for the next run before parking
	wg      sync.WaitGroup
	mu      sync.Mutex

	fn    func(lo, hi int)
	n     int64
	chunk int64
	next  atomic.Int64
	// tail > 0 makes the run guided (RunGuided): chunks shrink towards tail as the
	// remaining rows run out, in multiples of align.
	tail, align int64

	// panicked is the first panic recovered on a worker during the current run.
	panicked atomic.Pointer[WorkerPanic]

	// mv is the job behind MulVec, kept here so that MulVec does not allocate.
	mvMu  sync.Mutex
	mv    mulVecJob
	mvRun func(lo, hi int)
}

const (
	// SerialNs is the estimated work below which RunCost runs on the caller alone:
	// waking a parked worker and waiting for it to finish costs several µs of latency
	// (futex wake, scheduling, cache misses on the shared job), so pieces this small
	// lose more than a second core gains them.
	SerialNs = 20_000
	// SliceNs is the work RunCost puts in one chunk at most: long enough that the
	// counter and call overhead (tens of ns) vanish, short enough to be a safe point
	// every ~0.1-1 ms even when the estimate is off by a few times.
	SliceNs = 250_000
	// minChunkNs keeps chunks from getting so small that workers contend on the counter.
	minChunkNs = 2_000
)

// A helper that finishes its part of a run polls for the next one for a short while
// before it parks on its channel. A decode step runs a handful of products per layer
// with only µs of serial work between them, and waking a parked goroutine costs a futex
// wake-up and, on a VM, the exit of an idle vCPU (tens of µs, as long as a small product);
// a polling helper is claimed with one atomic operation instead. The poll yields the
// processor (runtime.Gosched) on every turn, so other goroutines still run, and it ends
// after spinNs, so an idle model costs nothing.
const (
	workerParked int32 = iota
	workerSpinning
	workerClaimed // the caller handed this helper the current run
)

// defaultSpinNs is the polling time of new pools; 0 parks at once. Polling is off by
// default: on the shared 2-vCPU development VM under a load of ~10, decode at 2 threads
// was 10% slower with 100 µs of polling (the polling thread takes CPU time the OS would
// otherwise give the caller); whether it pays on an idle machine is measured with
// BenchmarkFileInterleaved's @poll models.
var defaultSpinNs int64 = 0

// pollNs is the polling time the benchmarks try.
const pollNs = 100_000

// NewPool starts a pool of n workers (n <= 0: runtime.GOMAXPROCS(0)). The calling
// goroutine counts as one of them, so n-1 goroutines are started.
//
// GOMAXPROCS, not the core count cpuid reports, is the default because it follows the
// cgroup quota and the affinity mask (a VM may report 254 cores and grant two); more
// workers than runnable threads only adds wake-ups.
func NewPool(n int) *Pool {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Pool{workers: n, wake: make([]chan struct{}, n-1), state: make([]atomic.Int32, n-1), spinNs: defaultSpinNs}
	p.mvRun = p.mv.run
	for i := range p.wake {
		ch := make(chan struct{}, 1)
		p.wake[i] = ch
		go p.helper(ch, &p.state[i])
	}
	return p
}

// helper is the loop of one worker goroutine: run what it is woken or claimed for, poll
// for the next run for spinNs, park.
func (p *Pool) helper(ch chan struct{}, st *atomic.Int32) {
	for {
		// Parked: st is workerParked, so the caller sends on ch.
		if _, ok := <-ch; !ok {
			return
		}
		for {
			p.helperWork()
			// Spinning again before Done: once the caller's Wait returns, every helper
			// is spinning or parked, so the next run claims or wakes it without a race.
			st.Store(workerSpinning)
			p.wg.Done()
			if !p.poll(st) {
				break
			}
		}
	}
}

// helperWork is a helper's share of one run. A panic in fn is recovered here, once per
// run rather than per chunk, and left for the caller to re-raise (see run).
func (p *Pool) helperWork() {
	defer func() {
		if v := recover(); v != nil {
			p.next.Store(p.n) // the others stop taking chunks; the run is failed anyway
			p.panicked.CompareAndSwap(nil, &WorkerPanic{Value: v, Stack: debug.Stack()})
		}
	}()
	p.work()
}

// WorkerPanic is what a Run re-raises in the calling goroutine when fn panicked on one
// of the pool's worker goroutines: the panic value and that goroutine's stack, which the
// caller's own stack trace would not show.
type WorkerPanic struct {
	Value any
	Stack []byte
}

func (e *WorkerPanic) Error() string {
	return fmt.Sprintf("%v [recovered on a pool worker]\n\nworker goroutine stack:\n%s", e.Value, e.Stack)
}

// Unwrap returns the panic value when it is an error (a runtime.Error, say).
func (e *WorkerPanic) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// poll waits up to spinNs for the caller to claim this helper; false means it parked.
func (p *Pool) poll(st *atomic.Int32) bool {
	if p.spinNs > 0 {
		t0 := time.Now()
		for i := 0; ; i++ {
			if st.Load() == workerClaimed {
				return true
			}
			if i%16 == 15 && time.Since(t0).Nanoseconds() > p.spinNs {
				break
			}
			runtime.Gosched()
		}
	}
	// A claim that lands now finds the CAS failing: the helper takes the run.
	return !st.CompareAndSwap(workerSpinning, workerParked)
}

// Workers returns the number of goroutines (including the caller) that share a Run.
func (p *Pool) Workers() int { return p.workers }

// Close stops the worker goroutines. The pool must not be used afterwards.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ch := range p.wake {
		close(ch)
	}
	p.wake = nil
}

// Run calls fn(lo, hi) over disjoint ranges covering [0, n), in parallel. The chunk
// size gives each worker about four chunks, which balances uneven rows without making
// the shared counter hot. Prefer RunCost, which also bounds the time per chunk.
func (p *Pool) Run(n int, fn func(lo, hi int)) {
	p.RunChunk(n, (n+4*p.workers-1)/(4*p.workers), fn)
}

// RunCost is Run for items that each take about itemNs nanoseconds on one core (see
// EstimateNs). Work estimated under SerialNs runs on the caller alone; otherwise chunks
// hold about four per worker, at most SliceNs and at least a few µs of work each. Every
// path calls fn once per chunk, so fn returns to Go code (a safe point) every ≲SliceNs.
func (p *Pool) RunCost(n int, itemNs float64, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	itemNs = max(itemNs, 1e-3)
	maxChunk := chunkOf(SliceNs, itemNs, n)
	if p.workers == 1 || float64(n)*itemNs < SerialNs {
		serial(n, maxChunk, fn)
		return
	}
	c := (n + 4*p.workers - 1) / (4 * p.workers)
	c = max(min(c, maxChunk), chunkOf(minChunkNs, itemNs, n))
	p.RunChunk(n, c, fn)
}

// chunkOf returns how many items of itemNs fit in ns, between 1 and n.
func chunkOf(ns, itemNs float64, n int) int {
	c := ns / itemNs
	if c >= float64(n) {
		return n
	}
	return max(int(c), 1)
}

// EstimateNs estimates one core's time for work that streams bytes of weights and
// does madds multiply-adds, for RunCost. The rates are rough on purpose: a factor of
// two only moves a chunk between 0.1 and 0.5 ms. Generic Go dot products run at about
// 1 ns per multiply-add (measured for F16 and Q8_0 rows, 4096 columns); the SIMD
// paths are bound by memory (~10 GB/s per core from DRAM) or by integer throughput.
func EstimateNs(bytes, madds int) float64 {
	if kernels.Active() == kernels.Generic {
		return max(float64(madds)*1.0, float64(bytes)*0.2)
	}
	return max(float64(madds)*0.02, float64(bytes)*0.1)
}

// serial runs fn over [0, n) on the caller in chunks of chunk items: one call when the
// work is small, and still a safe point per chunk when a single worker has a lot.
func serial(n, chunk int, fn func(lo, hi int)) {
	for lo := 0; lo < n; lo += chunk {
		fn(lo, min(lo+chunk, n))
	}
}

// RunChunk is Run with an explicit chunk size (>= 1). Work that fits in one chunk runs
// on the calling goroutine without waking anyone; a one-worker pool runs every chunk
// on the caller, one fn call each, so chunking still provides safe points.
func (p *Pool) RunChunk(n, chunk int, fn func(lo, hi int)) {
	p.run(n, chunk, 0, 1, fn)
}

// RunGuided is RunChunk with chunks that shrink at the end of the run: a worker takes
// chunk rows while plenty remain, then a share of what is left (remaining / (2 ×
// workers), rounded up to a multiple of align), never fewer than tail. With a handful
// of equal chunks per worker, one worker running a little slower than the other (a
// busy sibling hyperthread) leaves the other idle for up to a whole chunk at the end:
// with four chunks each, 2 threads measured 1.5-1.6x one thread on the 512-token
// prefill GEMM in some runs and 1.9-2.0x in others. Shrinking the last chunks bounds
// that idle time by tail rows, while the number of kernel calls (each of which
// prepares its token block) grows only by a few.
func (p *Pool) RunGuided(n, chunk, tail, align int, fn func(lo, hi int)) {
	align = max(align, 1)
	tail = max((tail+align-1)/align*align, align)
	p.run(n, max(chunk, tail), tail, align, fn)
}

func (p *Pool) run(n, chunk, tail, align int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	chunk = max(chunk, 1)
	if p.workers == 1 || n <= chunk {
		serial(n, chunk, fn)
		return
	}
	p.mu.Lock()
	p.fn, p.n, p.chunk = fn, int64(n), int64(chunk)
	p.tail, p.align = int64(tail), int64(align)
	p.next.Store(0)
	helpers := min(len(p.wake), (n+chunk-1)/chunk-1)
	p.wg.Add(helpers)
	for i, ch := range p.wake[:helpers] {
		// The CAS publishes the job written above to a polling helper; a parked one
		// is woken through its channel.
		if !p.state[i].CompareAndSwap(workerSpinning, workerClaimed) {
			ch <- struct{}{}
		}
	}
	done := false
	defer func() {
		if !done {
			p.next.Store(p.n) // fn panicked on the caller: the helpers stop taking chunks
		}
		// The helpers finish before the panic goes on: they must not run fn after the
		// caller's frames are unwound, and the pool must be unlocked for the next run.
		p.wg.Wait()
		p.fn = nil // do not keep the caller's data alive
		wp := p.panicked.Swap(nil)
		p.mu.Unlock()
		if wp != nil && done {
			panic(wp)
		}
	}()
	p.work()
	done = true
}

func (p *Pool) work() {
	if p.tail > 0 {
		p.workGuided()
		return
	}
	for {
		lo := p.next.Add(p.chunk) - p.chunk
		if lo >= p.n {
			return
		}
		p.fn(int(lo), int(min(lo+p.chunk, p.n)))
	}
}

// workGuided claims chunks by compare-and-swap, since their size depends on where the
// counter stands.
func (p *Pool) workGuided() {
	share := 2 * int64(p.workers)
	for {
		lo := p.next.Load()
		if lo >= p.n {
			return
		}
		c := ((p.n-lo+share-1)/share + p.align - 1) / p.align * p.align
		c = min(p.chunk, max(c, p.tail))
		if !p.next.CompareAndSwap(lo, lo+c) {
			continue
		}
		p.fn(int(lo), int(min(lo+c, p.n)))
	}
}
