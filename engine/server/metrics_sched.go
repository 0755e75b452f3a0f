package server

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mole-llm/mole/engine"
)

// cacheCollector exports the expert-plane cache of a model running under a memory budget
// (mole serve --mem-budget; package sched), read from the cache's counters at each
// scrape. llama.cpp has no such cache, so the names are mole_. Nothing is exported for a
// model without a budget.
type cacheCollector struct {
	m *engine.Model

	hits, misses, loaded, evictions, ioWait, readTime, held, budget, runs *prometheus.Desc
}

func newCacheCollector(m *engine.Model) *cacheCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &cacheCollector{m: m,
		hits:      d("mole_expert_cache_hits_total", "Expert bit-planes found in the cache when a layer needed them."),
		misses:    d("mole_expert_cache_misses_total", "Expert bit-planes loaded from the model file because a layer needed them."),
		loaded:    d("mole_expert_cache_loaded_bytes_total", "Bytes of expert bit-planes read from the model file."),
		evictions: d("mole_expert_cache_evictions_total", "Expert bit-planes evicted to stay within the memory budget."),
		ioWait:    d("mole_expert_cache_io_wait_seconds_total", "Time the forward pass waited for expert planes to arrive."),
		readTime:  d("mole_expert_cache_read_seconds_total", "Time the I/O worker spent reading expert planes."),
		held:      d("mole_expert_cache_bytes", "Bytes the expert cache holds now."),
		budget:    d("mole_expert_cache_budget_bytes", "Bytes the expert cache may hold (the memory budget less the always-resident weights)."),
		runs:      d("mole_expert_runs_total", "Expert computations (one per expert per layer step) by the bit width they ran at: the bit-width mix.", "bits"),
	}
}

// Describe sends nothing: the series exist only while the model has a budget (an
// unchecked collector).
func (c *cacheCollector) Describe(chan<- *prometheus.Desc) {}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	cache := c.m.MemBudget()
	if cache == nil {
		return
	}
	st := cache.Stats()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	counter(c.hits, float64(st.Hits))
	counter(c.misses, float64(st.Misses))
	counter(c.loaded, float64(st.BytesLoaded))
	counter(c.evictions, float64(st.Evictions))
	counter(c.ioWait, st.IOWait.Seconds())
	counter(c.readTime, st.ReadTime.Seconds())
	ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(st.Held))
	ch <- prometheus.MustNewConstMetric(c.budget, prometheus.GaugeValue, float64(cache.ExpertBudget()))
	for b, n := range st.Mix {
		if n > 0 {
			counter(c.runs, float64(n), strconv.Itoa(b))
		}
	}
}
