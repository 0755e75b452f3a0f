//go:build linux

package server

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mole-llm/mole/bench"
	"github.com/mole-llm/mole/engine"
	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/sched"
)

// TestExpertCacheMetrics: a server whose model runs under a memory budget exports the
// cache's counters, agreeing with the cache's own Stats, and the bit-width mix; a server
// without a budget exports none of them.
func TestExpertCacheMetrics(t *testing.T) {
	shape, err := bench.PresetByName("tiny-moe")
	if err != nil {
		t.Fatal(err)
	}
	shape.NFFExpert = 256 // whole MWQ groups in the down projections
	path := filepath.Join(t.TempDir(), "tiny-mwq24.gguf")
	if err := bench.GenerateGGUF(path, bench.GenOptions{Shape: shape, Arch: "olmoe", Scheme: "mwq24", Seed: 4}); err != nil {
		t.Fatal(err)
	}
	lm, err := loader.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	m, err := engine.Load(lm)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	lay, err := m.ExpertLayout()
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.SetMemBudget(sched.Options{Budget: lay.Resident + lay.ExpertBytes()*7/10})
	if err != nil {
		t.Fatal(err)
	}
	defer m.ClearMemBudget()
	srv := New(Config{Model: m, ModelName: "tiny", Parallel: 2})
	ts := httptest.NewServer(srv.Handler())
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		ts.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range []string{"w1 w2 w3", "w4 w5"} {
		r, err := post(ctx, ts.URL, "/v1/completions", map[string]any{"prompt": p, "max_tokens": 6, "temperature": 0}, nil)
		if err != nil || r.status != 200 {
			t.Fatalf("completion: %v %+v", err, r)
		}
	}
	got := scrape(t, ts.URL)
	st := c.Stats()
	for name, want := range map[string]float64{
		"mole_expert_cache_hits_total":         float64(st.Hits),
		"mole_expert_cache_misses_total":       float64(st.Misses),
		"mole_expert_cache_loaded_bytes_total": float64(st.BytesLoaded),
		"mole_expert_cache_budget_bytes":       float64(c.ExpertBudget()),
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), cache says %v", name, v, ok, want)
		}
	}
	var runs float64
	for k, v := range got {
		if strings.HasPrefix(k, `mole_expert_runs_total{bits="`) {
			runs += v
		}
	}
	var want int64
	for _, n := range st.Mix {
		want += n
	}
	if runs == 0 || runs != float64(want) || st.Misses == 0 {
		t.Errorf("expert runs by width sum to %v, cache counted %d (misses %d)", runs, want, st.Misses)
	}

	_, plain := newTestServer(t, Config{})
	for k := range scrape(t, plain.URL) {
		if strings.HasPrefix(k, "mole_expert_cache") || strings.HasPrefix(k, "mole_expert_runs") {
			t.Errorf("server without a budget exports %s", k)
		}
	}
}
