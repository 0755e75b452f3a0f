//go:build linux

package engine

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mole-llm/mole/sched"
)

// budgetFor is the resident part plus frac of the expert bytes.
func budgetFor(t *testing.T, m *Model, frac float64) (int64, *sched.Layout) {
	t.Helper()
	lay, err := m.ExpertLayout()
	if err != nil {
		t.Fatal(err)
	}
	return lay.Resident + int64(frac*float64(lay.ExpertBytes())), lay
}

// TestMemBudgetForcedBitsExact: with a budget of 30% of the expert bytes and every expert
// forced to one width, Forward's and Batch's logits equal bit for bit those of the same
// file run resident at that width, for every policy and both I/O backends, and the cache
// never holds more than its budget (checked after every load).
func TestMemBudgetForcedBitsExact(t *testing.T) {
	path := fakeMWQPath(t)
	ref := loadModelFile(t, path)
	run := loadModelFile(t, path)
	for _, bits := range []int{2, 4} {
		ref.SetExpertBits([]int{bits})
		wantToks, want := greedyLogits(t, ref, 12)
		wantB := batchLogits(t, ref, 6)
		budget, lay := budgetFor(t, run, 0.3)
		for _, pol := range sched.Policies {
			for _, be := range []sched.Backend{sched.Pread, sched.Mmap} {
				var over atomic.Int64
				c, err := run.SetMemBudget(sched.Options{Budget: budget, Bits: bits, Policy: pol, Backend: be, OnLoad: func(held int64) {
					if held > budget-lay.Resident {
						over.Store(held)
					}
				}})
				if err != nil {
					t.Fatal(err)
				}
				what := pol.String() + "/" + be.String() + "/" + string(rune('0'+bits))
				toks, got := greedyLogits(t, run, 12)
				sameLogits(t, what+" Forward", got, want)
				if len(toks) != len(wantToks) {
					t.Fatal("token count")
				}
				sameLogits(t, what+" Batch", batchLogits(t, run, 6), wantB)
				st := c.Stats()
				if v := over.Load(); v != 0 || st.Peak > c.ExpertBudget() {
					t.Errorf("%s: the cache held %d bytes (peak %d), budget %d", what, v, st.Peak, c.ExpertBudget())
				}
				if st.Misses == 0 || st.Evictions == 0 || st.Err != nil {
					t.Errorf("%s: a 30%% budget should load and evict: %+v", what, st)
				}
				if pol != sched.LRU && st.Mix[bits] == 0 {
					t.Errorf("%s: mix %v", what, st.Mix)
				}
				t.Logf("%s: hits %d misses %d evictions %d, peak %d of %d bytes, %.1f MiB read", what, st.Hits, st.Misses, st.Evictions, st.Peak, c.ExpertBudget(), float64(st.BytesLoaded)/(1<<20))
			}
		}
	}
	if err := run.ClearMemBudget(); err != nil {
		t.Fatal(err)
	}
}

// TestMemBudgetAdaptiveExact: with widths chosen by the cache from hotness, budget and
// profile,
// the logits equal a resident run whose experts are set, through the router trace, to the
// widths the budgeted run used at each step and layer; the widths really vary.
func TestMemBudgetAdaptiveExact(t *testing.T) {
	path := fakeMWQPath(t)
	run := loadModelFile(t, path)
	ref := loadModelFile(t, path)
	budget, _ := budgetFor(t, run, 0.45)
	// A profile in which a plane loads in about the time an expert computes: one sequence
	// (one token per expert) then widens an expert only while the layer's loads stay
	// hidden, which depends on what is resident. The batch runs without a profile (experts
	// with several tokens widen).
	prof := &sched.Profile{
		IO:   []sched.IOPoint{{Backend: "pread", Level: 0, Micros: 100}, {Backend: "pread", Level: 1, Micros: 100}},
		Comp: []sched.CompPoint{{Bits: 2, Micros: 100}, {Bits: 3, Micros: 150}, {Bits: 4, Micros: 200}},
	}
	for _, batch := range []bool{false, true} {
		o := sched.Options{Budget: budget}
		if !batch {
			o.Profile = prof
		}
		c, err := run.SetMemBudget(o)
		if err != nil {
			t.Fatal(err)
		}
		type rec struct {
			layer int
			bits  map[int32]int
		}
		var recs []rec
		schedOfT(t, run).onLayer = func(l int, plan []sched.Entry) {
			r := rec{l, map[int32]int{}}
			for _, e := range plan {
				r.bits[e.Expert] = e.Bits
			}
			recs = append(recs, r)
		}
		var got [][]float32
		if batch {
			got = batchLogits(t, run, 8)
		} else {
			_, got = greedyLogits(t, run, 16)
		}
		st := c.Stats()
		widths := 0
		for _, n := range st.Mix {
			if n > 0 {
				widths++
			}
		}
		if widths < 2 {
			t.Errorf("batch %v: one width only: mix %v", batch, st.Mix)
		}
		t.Logf("batch %v: mix (2,3,4 bits) %v, hits %d misses %d", batch, st.Mix[2:5], st.Hits, st.Misses)
		// Replay on the resident model: the trace runs after routing, before the experts.
		next, lastLayer := 0, -1
		var cur rec
		trace := func(l int, experts []int32, _ []float32) {
			if !batch || l != lastLayer {
				cur = recs[next]
				next++
				lastLayer = l
			}
			if cur.layer != l {
				t.Fatalf("replay out of step: layer %d, recorded %d", l, cur.layer)
			}
			for _, e := range experts {
				L := &ref.Layers[l]
				for _, mm := range []*Matrix{L.ExpGate[e], L.ExpUp[e], L.ExpDown[e]} {
					mm.mwq.setBits(cur.bits[e])
				}
			}
		}
		var want [][]float32
		if batch {
			want = batchLogitsTraced(t, ref, 8, trace)
		} else {
			want = greedyLogitsTraced(t, ref, 16, trace)
		}
		sameLogits(t, "adaptive widths", got, want)
		if next != len(recs) {
			t.Errorf("replayed %d of %d layer steps", next, len(recs))
		}
		run.ClearMemBudget()
	}
}

func schedOfT(t *testing.T, m *Model) *schedGlue {
	g := m.schedOf()
	if g == nil {
		t.Fatal("no budget")
	}
	return g
}

// greedyLogitsTraced is greedyLogits with a router trace installed on the State.
func greedyLogitsTraced(t *testing.T, m *Model, n int, tr func(int, []int32, []float32)) [][]float32 {
	prompt := m.Tok.Encode(schedPrompt, true, false)
	s := m.NewState(len(prompt) + n)
	s.SetRouterTrace(tr)
	var lg []float32
	for i, tok := range prompt {
		lg = s.Forward(tok, i)
	}
	var out [][]float32
	for i := 0; i < n; i++ {
		out = append(out, append([]float32(nil), lg...))
		lg = s.Forward(argmaxID(lg), len(prompt)+i)
	}
	return out
}

// batchLogitsTraced is batchLogits with the trace on every sequence (a Batch calls each
// item's State's trace, item by item, before the layer's experts run).
func batchLogitsTraced(t *testing.T, m *Model, n int, tr func(int, []int32, []float32)) [][]float32 {
	traceAll = tr
	defer func() { traceAll = nil }()
	return batchLogits(t, m, n)
}

// TestMemBudgetRefused: a budget below the always-resident part, or below it plus one
// layer's experts at the base width, is refused with an error saying so; a float model
// cannot run under a budget.
func TestMemBudgetRefused(t *testing.T) {
	path := fakeMWQPath(t)
	m := loadModelFile(t, path)
	lay, err := m.ExpertLayout()
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.SetMemBudget(sched.Options{Budget: lay.Resident / 2})
	if err == nil || !strings.Contains(err.Error(), "below the always-resident part") {
		t.Errorf("half the resident part: %v", err)
	}
	_, err = m.SetMemBudget(sched.Options{Budget: lay.Resident + 1000})
	if err == nil || !strings.Contains(err.Error(), "experts at base width") {
		t.Errorf("no room for one layer's experts: %v", err)
	}
	if m.MemBudget() != nil {
		t.Error("a refused budget left a cache")
	}
	if _, err := loadDefaultModel(t).SetMemBudget(sched.Options{Budget: 1 << 40}); err == nil {
		t.Error("a budget accepted for the embedded float model")
	}
}

// TestMemBudgetNoAllocs: a decode step under a budget allocates nothing.
func TestMemBudgetNoAllocs(t *testing.T) {
	path := fakeMWQPath(t)
	m := loadModelFile(t, path)
	budget, _ := budgetFor(t, m, 0.3)
	if _, err := m.SetMemBudget(sched.Options{Budget: budget}); err != nil {
		t.Fatal(err)
	}
	defer m.ClearMemBudget()
	s := m.NewState(64)
	pos := 0
	tok := int32(1)
	s.Forward(tok, pos)
	pos++
	allocs := testing.AllocsPerRun(20, func() {
		tok = argmaxID(s.Forward(tok, pos))
		pos++
	})
	if allocs != 0 {
		t.Errorf("%v allocations per decode step under a budget", allocs)
	}
}
