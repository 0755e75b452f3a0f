package engine

import (
	"bytes"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// goid returns the calling goroutine's id (tests only: it parses runtime.Stack).
func goid() uint64 {
	var b [64]byte
	s := strings.TrimPrefix(string(b[:runtime.Stack(b[:], false)]), "goroutine ")
	id, _ := strconv.ParseUint(s[:strings.IndexByte(s, ' ')], 10, 64)
	return id
}

// catch runs f and returns what it panicked with (nil when it returned).
func catch(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// TestPoolPanic: a panic in fn on a worker goroutine does not end the process but is
// re-raised in the goroutine that called the run, as a *WorkerPanic with the worker's
// stack, after every worker is done; a panic on the caller propagates as it is. Either
// way the pool (and MulVec) serve the next run normally.
func TestPoolPanic(t *testing.T) {
	for _, workers := range []int{1, 2, 3} {
		p := NewPool(workers)
		hits := make([]int32, 64)
		check := func(what string) {
			t.Helper()
			clear(hits)
			p.RunChunk(len(hits), 1, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					atomic.AddInt32(&hits[i], 1)
				}
			})
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("workers %d, run after %s: index %d run %d times", workers, what, i, h)
				}
			}
		}

		// A panic on a helper. Which goroutine takes a chunk is up to timing, so the
		// run is repeated until a helper has taken one (at once, in practice).
		if workers > 1 {
			caller := goid()
			var seen *WorkerPanic
			for try := 0; try < 50 && seen == nil; try++ {
				var after atomic.Bool // set once the run has returned
				var late atomic.Int32 // fn calls after that
				v := catch(func() {
					p.RunChunk(40, 1, func(lo, hi int) {
						if after.Load() {
							late.Add(1)
						}
						time.Sleep(100 * time.Microsecond)
						if goid() != caller {
							var a []int
							_ = a[lo+5] // a runtime error, as a kernel's bad index would be
						}
					})
				})
				after.Store(true)
				time.Sleep(time.Millisecond)
				if late.Load() != 0 {
					t.Fatalf("workers %d: fn ran %d times after the run returned", workers, late.Load())
				}
				if v == nil {
					continue
				}
				wp, ok := v.(*WorkerPanic)
				if !ok {
					t.Fatalf("workers %d: re-raised %T %v, want *WorkerPanic", workers, v, v)
				}
				seen = wp
			}
			if seen == nil {
				t.Fatalf("workers %d: no helper took a chunk in 50 runs", workers)
			}
			var re runtime.Error
			if !errors.As(seen, &re) || !strings.Contains(seen.Error(), "index out of range") {
				t.Errorf("workers %d: %v does not unwrap to the runtime error", workers, seen)
			}
			if !bytes.Contains(seen.Stack, []byte("TestPoolPanic")) {
				t.Errorf("workers %d: the worker's stack does not show fn:\n%s", workers, seen.Stack)
			}
			check("a helper's panic")
		}

		// A panic on the caller keeps its value; the helpers stop and finish first.
		caller := goid()
		v := catch(func() {
			p.RunChunk(40, 1, func(lo, hi int) {
				time.Sleep(50 * time.Microsecond)
				if goid() == caller {
					panic("caller boom")
				}
			})
		})
		if v != "caller boom" {
			t.Errorf("workers %d: caller's panic re-raised as %v", workers, v)
		}
		check("the caller's panic")

		// MulVec: a short out slice panics in whichever goroutine writes past it; the
		// next MulVec must not find the pool's MulVec lock held.
		const rows, cols = 64, 512
		w := make([]float32, rows*cols)
		for i := range w {
			w[i] = float32(i%7) - 3
		}
		m := f32Matrices("w", [][]float32{w}, rows, cols)[0]
		x := make([]float32, cols)
		for i := range x {
			x[i] = 1
		}
		if v := catch(func() { m.MulVec(p, make([]float32, rows/2), x) }); v == nil {
			t.Errorf("workers %d: MulVec into a short slice did not panic", workers)
		}
		out := make([]float32, rows)
		done := make(chan struct{})
		go func() { m.MulVec(p, out, x); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("workers %d: MulVec hangs after a panic in MulVec", workers)
		}
		for r := range rows {
			var want float32
			for c := range cols {
				want += w[r*cols+c]
			}
			if out[r] != want {
				t.Fatalf("workers %d: MulVec row %d = %v, want %v", workers, r, out[r], want)
			}
		}
		check("MulVec's panic")
		p.Close()
	}
}
