package engine

import (
	"runtime"
	"sync"
	"sync/atomic"
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
type Pool struct {
	workers int
	wake    []chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex

	fn    func(lo, hi int)
	n     int64
	chunk int64
	next  atomic.Int64

	// mv is the job behind MulVec, kept here so that MulVec does not allocate.
	mvMu  sync.Mutex
	mv    mulVecJob
	mvRun func(lo, hi int)
}

// NewPool starts a pool of n workers (n <= 0: runtime.GOMAXPROCS(0)). The calling
// goroutine counts as one of them, so n-1 goroutines are started.
func NewPool(n int) *Pool {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Pool{workers: n, wake: make([]chan struct{}, n-1)}
	p.mvRun = p.mv.run
	for i := range p.wake {
		ch := make(chan struct{}, 1)
		p.wake[i] = ch
		go func() {
			for range ch {
				p.work()
				p.wg.Done()
			}
		}()
	}
	return p
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
// the shared counter hot.
func (p *Pool) Run(n int, fn func(lo, hi int)) {
	p.RunChunk(n, (n+4*p.workers-1)/(4*p.workers), fn)
}

// RunChunk is Run with an explicit chunk size (>= 1). Work that fits in one chunk runs
// on the calling goroutine without waking anyone.
func (p *Pool) RunChunk(n, chunk int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	chunk = max(chunk, 1)
	if p.workers == 1 || n <= chunk {
		fn(0, n)
		return
	}
	p.mu.Lock()
	p.fn, p.n, p.chunk = fn, int64(n), int64(chunk)
	p.next.Store(0)
	helpers := min(len(p.wake), (n+chunk-1)/chunk-1)
	p.wg.Add(helpers)
	for _, ch := range p.wake[:helpers] {
		ch <- struct{}{}
	}
	p.work()
	p.wg.Wait()
	p.fn = nil // do not keep the caller's data alive
	p.mu.Unlock()
}

func (p *Pool) work() {
	for {
		lo := p.next.Add(p.chunk) - p.chunk
		if lo >= p.n {
			return
		}
		p.fn(int(lo), int(min(lo+p.chunk, p.n)))
	}
}
