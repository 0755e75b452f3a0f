package server

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus series. Where llama.cpp's server exports a metric of
// the same meaning it is exported under llama.cpp's name (the "llamacpp:" prefix included),
// so dashboards built for llama-server work unchanged; metrics llama.cpp lacks are "mole_".
// Each Server has its own registry, so several can run in one process (tests do).
type metrics struct {
	reg *prometheus.Registry

	promptTokens  prometheus.Counter // llamacpp:prompt_tokens_total
	promptCached  prometheus.Counter // mole_prompt_tokens_cached_total
	promptSeconds prometheus.Counter // llamacpp:prompt_seconds_total
	genTokens     prometheus.Counter // llamacpp:tokens_predicted_total
	genSeconds    prometheus.Counter // llamacpp:tokens_predicted_seconds_total
	decodes       prometheus.Counter // llamacpp:n_decode_total
	busySlotsSum  float64            // behind llamacpp:n_busy_slots_per_decode (scheduler only)
	nDecodes      float64
	processing    prometheus.Gauge // llamacpp:requests_processing
	deferred      prometheus.Gauge // llamacpp:requests_deferred
	kvTokens      prometheus.Gauge // llamacpp:kv_cache_tokens
	kvRatio       prometheus.Gauge // llamacpp:kv_cache_usage_ratio
	busyPerDecode prometheus.Gauge // llamacpp:n_busy_slots_per_decode
	ttft          prometheus.Histogram
	tpot          prometheus.Histogram
	requests      *prometheus.CounterVec // mole_requests_total{endpoint,outcome}
	batchTokens   prometheus.Histogram
	expert        [][]prometheus.Counter // [layer][expert], resolved once: no label lookup per token
	promptRate    prometheus.Gauge       // llamacpp:prompt_tokens_seconds
	genRate       prometheus.Gauge       // llamacpp:predicted_tokens_seconds

	// Running sums behind the rate gauges; only the scheduler goroutine touches them.
	promptN, promptS, genN, genS float64
}

func newMetrics(nLayer, nExpert int) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		m.reg.MustRegister(c)
		return c
	}
	g := func(name, help string) prometheus.Gauge {
		c := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		m.reg.MustRegister(c)
		return c
	}
	m.promptTokens = f("llamacpp:prompt_tokens_total", "Number of prompt tokens processed.")
	m.promptSeconds = f("llamacpp:prompt_seconds_total", "Prompt process time")
	m.promptCached = f("mole_prompt_tokens_cached_total",
		"Prompt tokens not evaluated because a slot's KV cache already held them (the prompt cache); not in llamacpp:prompt_tokens_total.")
	m.genTokens = f("llamacpp:tokens_predicted_total", "Number of generation tokens processed.")
	m.genSeconds = f("llamacpp:tokens_predicted_seconds_total", "Predict process time")
	m.decodes = f("llamacpp:n_decode_total", "Total number of batched forward steps.")
	m.busyPerDecode = g("llamacpp:n_busy_slots_per_decode", "Average number of busy slots per batched forward step.")
	m.processing = g("llamacpp:requests_processing", "Number of requests processing.")
	m.deferred = g("llamacpp:requests_deferred", "Number of requests deferred.")
	m.kvTokens = g("llamacpp:kv_cache_tokens", "KV-cache tokens in use.")
	m.kvRatio = g("llamacpp:kv_cache_usage_ratio", "KV-cache usage. 1 means 100 percent usage.")
	m.promptRate = g("llamacpp:prompt_tokens_seconds", "Average prompt throughput in tokens/s.")
	m.genRate = g("llamacpp:predicted_tokens_seconds", "Average generation throughput in tokens/s.")
	m.ttft = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "mole_time_to_first_token_seconds", Help: "Time from a request's arrival to its first generated token.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)})
	m.tpot = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "mole_time_per_output_token_seconds", Help: "Time between successive generated tokens of a request.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	m.batchTokens = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "mole_batch_tokens", Help: "Tokens evaluated per batched forward step (decode plus prompt).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 9)})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mole_requests_total",
		Help: "Requests by endpoint and outcome: stop, length (finished), rejected (503, queue full), cancelled (client went away), shutdown, error."},
		[]string{"endpoint", "outcome"})
	m.reg.MustRegister(m.ttft, m.tpot, m.batchTokens, m.requests)
	if nExpert > 0 {
		ev := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mole_expert_activations_total",
			Help: "Tokens routed to each expert of each MoE layer (prompt and generated tokens)."},
			[]string{"layer", "expert"})
		m.reg.MustRegister(ev)
		m.expert = make([][]prometheus.Counter, nLayer)
		for l := range m.expert {
			m.expert[l] = make([]prometheus.Counter, nExpert)
			for e := range m.expert[l] {
				m.expert[l][e] = ev.WithLabelValues(strconv.Itoa(l), strconv.Itoa(e))
			}
		}
	}
	return m
}

// routerTrace counts expert choices; it is installed on every slot's State.
func (m *metrics) routerTrace(layer int, experts []int32, _ []float32) {
	if layer < len(m.expert) {
		for _, e := range experts {
			m.expert[layer][e].Inc()
		}
	}
}

// finished records the token counts and durations of a generation that left its slot,
// finished or not.
func (m *metrics) finished(promptTokens, genTokens int, promptSec, genSec float64) {
	m.promptTokens.Add(float64(promptTokens))
	m.promptSeconds.Add(promptSec)
	m.genTokens.Add(float64(genTokens))
	m.genSeconds.Add(genSec)
	m.promptN += float64(promptTokens)
	m.promptS += promptSec
	m.genN += float64(genTokens)
	m.genS += genSec
	if m.promptS > 0 {
		m.promptRate.Set(m.promptN / m.promptS)
	}
	if m.genS > 0 {
		m.genRate.Set(m.genN / m.genS)
	}
}
