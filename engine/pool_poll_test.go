package engine

import (
	"testing"
	"time"
)

// TestPoolPollAndPark: runs that follow each other closely (helpers claimed while they
// poll) and runs after a pause (helpers parked and woken) each cover every index exactly
// once, and an idle pool's helpers all end up parked rather than polling forever.
func TestPoolPollAndPark(t *testing.T) {
	p := NewPool(3)
	p.spinNs = pollNs
	defer p.Close()
	hits := make([]int32, 600)
	fn := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			hits[i]++
		}
	}
	for run := range 300 {
		clear(hits)
		p.RunChunk(len(hits), 7, fn)
		for i, h := range hits {
			if h != 1 {
				t.Fatalf("run %d: index %d run %d times", run, i, h)
			}
		}
		if run%25 == 0 {
			time.Sleep(time.Duration(3*p.spinNs) * time.Nanosecond)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		parked := 0
		for i := range p.state {
			if p.state[i].Load() == workerParked {
				parked++
			}
		}
		if parked == len(p.state) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d helpers still polling 5 s after the last run", len(p.state)-parked, len(p.state))
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkPoolRunLatency measures a run of two tiny chunks on two workers back to back
// (a decode step has tens of such hand-offs), with helpers that poll and, for comparison,
// helpers that park at once.
func BenchmarkPoolRunLatency(b *testing.B) {
	for _, spin := range []int64{pollNs, 0} {
		name := "poll"
		if spin == 0 {
			name = "park"
		}
		b.Run(name, func(b *testing.B) {
			p := NewPool(2)
			p.spinNs = spin
			defer p.Close()
			var sink [2]int
			fn := func(lo, hi int) { sink[lo] += hi }
			for i := 0; i < b.N; i++ {
				p.RunChunk(2, 1, fn)
			}
		})
	}
}
