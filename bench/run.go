package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"time"

	"github.com/mole-llm/mole/engine"
	"github.com/mole-llm/mole/kernels"
)

// Opener loads a model for benchmarking; close releases it (the engine model and its
// mapping). The CLI passes the function every mole command opens models with, so
// bench measures what `mole run` runs.
type Opener func(path string) (m *engine.Model, close func(), err error)

// Options describe one `mole bench` run.
type Options struct {
	Models  []string
	Open    Opener
	Prompts []int // pp sizes; 0 entries are skipped
	Gens    []int // tg sizes; 0 entries are skipped
	Reps    int
	Threads []int
	ISAs    []kernels.ISA // empty: the active path
	// Serial runs pp tests one Forward per token (the path `mole run` takes for a prompt
	// today) instead of batched steps, for comparing the two.
	Serial bool
	// ExpertBits are the widths at which MWQ models' experts are read: every test runs at
	// each (in increasing order, so that each width's peak RSS leaves out the planes only
	// wider ones read). Empty: the widest stored. Models without MWQ experts run once.
	ExpertBits []int
	// Log, when set, gets a line per test as it starts (stderr in the CLI).
	Log io.Writer
}

// Result is one row of the report: one model, kernel path, thread count and test.
// JSON names follow llama-bench's where it has the same field.
type Result struct {
	Model        string    `json:"model_filename"`
	ModelType    string    `json:"model_type"`
	ModelSize    int64     `json:"model_size"`
	Params       int64     `json:"model_n_params"`
	ActiveParams int64     `json:"model_n_params_active"`
	ExpertBits   int       `json:"expert_bits"` // width of MWQ experts (0: the model has none)
	Backend      string    `json:"backends"`
	ISA          string    `json:"isa"`
	Threads      int       `json:"n_threads"`
	Test         string    `json:"test"`
	NPrompt      int       `json:"n_prompt"`
	NGen         int       `json:"n_gen"`
	PPMode       string    `json:"pp_mode"` // how a prompt is run: "batched" or "token by token"
	Reps         int       `json:"repetitions"`
	SamplesNs    []int64   `json:"samples_ns"`
	SamplesTs    []float64 `json:"samples_ts"`
	AvgNs        int64     `json:"avg_ns"`
	StddevNs     int64     `json:"stddev_ns"`
	AvgTs        float64   `json:"avg_ts"`
	StddevTs     float64   `json:"stddev_ts"`
	BytesToken   int64     `json:"bytes_per_token"` // weight bytes one token reads (Traffic.Bytes)
	MACsToken    int64     `json:"macs_per_token"`
	GBs          float64   `json:"gb_s"`         // avg_ts × bytes_per_token: weight bytes streamed per second
	RoofTs       float64   `json:"roofline_ts"`  // the bound on t/s
	RoofKind     string    `json:"roofline_by"`  // "bandwidth" or "compute"
	RoofPct      float64   `json:"roofline_pct"` // 100 × avg_ts / roofline_ts
	ReadGBs      float64   `json:"read_gb_s"`
	PeakGMACs    float64   `json:"peak_gmac_s"`  // the int8 peak loop (Roofline.PeakGMACs)
	PeakGFLOPs   float64   `json:"peak_gflop_s"` // the float32 FMA peak loop (Roofline.PeakGFLOPs)
	PeakRSS      int64     `json:"peak_rss_bytes"`
	Traffic      Traffic   `json:"traffic"`
}

// Report is everything one run produced.
type Report struct {
	Env
	Roofline []Roofline `json:"roofline"`
	Results  []Result   `json:"results"`
	Notes    []string   `json:"notes"`
}

// Run benchmarks every model at every ISA, thread count and test. The roofline is
// measured first, before any model is mapped, so that its buffer does not share memory
// bandwidth or RSS with a model.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Reps < 1 {
		o.Reps = 1
	}
	if len(o.Threads) == 0 {
		o.Threads = []int{1}
	}
	for _, b := range o.ExpertBits {
		if b < 1 || b > 8 {
			return nil, fmt.Errorf("expert bits %d: MWQ widths are 1 to 8", b)
		}
	}
	isas := o.ISAs
	if len(isas) == 0 {
		isas = []kernels.ISA{kernels.Active()}
	}
	prev := kernels.Active()
	defer kernels.SetISA(prev)
	rep := &Report{Env: CurrentEnv()}
	roofs := map[[2]int]Roofline{}
	for _, isa := range isas {
		if _, err := kernels.SetISA(isa); err != nil {
			return nil, err
		}
		for _, t := range o.Threads {
			logf(o.Log, "roofline: %s, %d threads", isa, t)
			r := MeasureRoofline(t)
			roofs[[2]int{int(isa), t}] = r
			rep.Roofline = append(rep.Roofline, r)
		}
	}
	pp := "pp<N>: the N prompt tokens run as batched forward steps of at most 512 tokens (engine.Batch)"
	if o.Serial {
		pp = "pp<N>: the N prompt tokens run one Forward at a time (--pp-mode serial)"
	}
	rep.Notes = append(rep.Notes, pp+"; tg<N>: N tokens one at a time from position 0",
		"tokens are a fixed synthetic sequence (no tokenizer, no sampling), so expert routing is the same in every repetition; a warm-up run precedes the timed ones",
		"bytes/token: weights one token reads at the stored dtypes (attention, router, activated experts, output head, embedding row, norms); KV cache reads excluded; "+
			"MWQ experts count their base and the residual planes read at expert_bits, and model_size every stored plane",
		"roofline: tg by read_gb_s / bytes_per_token; pp by the compute peaks, 1 / (integer MACs per token / peak_gmac_s + 2 x traffic.float_macs / peak_gflop_s), "+
			"where integer MACs are macs_per_token - traffic.float_macs (matrices in Q8_0, Q4_0 and mole's types run in int8; F32, F16 and BF16 ones in float32) "+
			"and the peaks are register-only loops of the kernel path's multiply instructions (roofline[].peak_method, float_peak_method); "+
			"gemm_gmac_s is what the Q8_0 GEMM kernel achieves in cache, shown for comparison")
	for _, path := range o.Models {
		res, err := runModel(ctx, o, path, isas, roofs)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, res...)
	}
	return rep, nil
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, "mole bench: "+format+"\n", args...)
	}
}

func runModel(ctx context.Context, o Options, path string, isas []kernels.ISA, roofs map[[2]int]Roofline) ([]Result, error) {
	ResetPeakRSS()
	m, closeModel, err := o.Open(path)
	if err != nil {
		return nil, err
	}
	defer closeModel()
	b1, maxBits, isMWQ := m.MWQBits()
	widths := []int{0}
	switch {
	case isMWQ && len(o.ExpertBits) == 0:
		widths = []int{maxBits}
	case isMWQ:
		widths = slices.Compact(slices.Sorted(slices.Values(o.ExpertBits)))
		for _, b := range widths {
			if b < b1 || b > maxBits {
				return nil, fmt.Errorf("%s: expert bits %d: its MWQ experts can be read at %d to %d bits", path, b, b1, maxBits)
			}
		}
	case len(o.ExpertBits) > 0:
		logf(o.Log, "%s has no MWQ experts: --expert-bits does not apply, it runs once", filepath.Base(path))
	}
	touch(m) // an MWQ model's bases only: each width's warm-up brings in the planes it reads
	r := newRunner(o, m)
	var out []Result
	for _, w := range widths {
		var bits []int // nil: TrafficOf
		if isMWQ {
			bits = m.SetExpertBits([]int{w})
		}
		tr := TrafficAt(m, bits)
		base := Result{
			Model: filepath.Base(path), ModelType: modelType(m, tr), ModelSize: tr.FileBytes,
			Params: tr.Params, ActiveParams: tr.Active, ExpertBits: w, Backend: "CPU", Reps: o.Reps,
			BytesToken: tr.Bytes, MACsToken: tr.MACs, Traffic: tr,
		}
		res, err := runTests(ctx, o, m, r, base, isas, roofs)
		if err != nil {
			return nil, err
		}
		// The peak so far: this width's planes and the narrower ones', none wider.
		rss := PeakRSS()
		for i := range res {
			res[i].PeakRSS = rss
		}
		out = append(out, res...)
	}
	return out, nil
}

// runner holds what every test of a model reuses: its state (KV cache), batch and tokens.
type runner struct {
	st    *engine.State
	batch *engine.Batch
	toks  []int32
	items []engine.BatchItem
}

func newRunner(o Options, m *engine.Model) *runner {
	maxP, maxN := 0, 0
	for _, p := range o.Prompts {
		maxP = max(maxP, p)
	}
	for _, n := range o.Gens {
		maxN = max(maxN, n)
	}
	r := &runner{
		st:    m.NewState(max(maxP, maxN, 1)),
		toks:  syntheticTokens(max(maxP, maxN), m.Config.Vocab),
		items: make([]engine.BatchItem, min(maxP, 512)),
	}
	if maxP > 0 && !o.Serial {
		// The batch's context must hold the State's whole cache, which tg sizes too.
		r.batch = m.NewBatch(min(maxP, 512), max(maxP, maxN, 1))
	}
	return r
}

// runTests runs every test of one model at one expert width, on each kernel path and
// thread count.
func runTests(ctx context.Context, o Options, m *engine.Model, r *runner, base Result, isas []kernels.ISA, roofs map[[2]int]Roofline) ([]Result, error) {
	st, batch, toks, items := r.st, r.batch, r.toks, r.items
	var out []Result
	for _, isa := range isas {
		if _, err := kernels.SetISA(isa); err != nil {
			return nil, err
		}
		for _, t := range o.Threads {
			m.SetThreads(t)
			roof := roofs[[2]int{int(isa), t}]
			type test struct {
				name   string
				np, ng int
				run    func() time.Duration
			}
			var tests []test
			for _, np := range o.Prompts {
				if np > 0 {
					run := func() time.Duration { return prompt(batch, st, items, toks[:np]) }
					if o.Serial {
						run = func() time.Duration { return generate(st, toks[:np]) }
					}
					tests = append(tests, test{fmt.Sprintf("pp%d", np), np, 0, run})
				}
			}
			for _, ng := range o.Gens {
				if ng > 0 {
					tests = append(tests, test{fmt.Sprintf("tg%d", ng), 0, ng, func() time.Duration { return generate(st, toks[:ng]) }})
				}
			}
			for _, tc := range tests {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				bits := ""
				if base.ExpertBits > 0 {
					bits = fmt.Sprintf(", experts at %d bits", base.ExpertBits)
				}
				logf(o.Log, "%s %s %s%s, %d threads, %s: warm-up + %d runs", base.Model, base.ModelType, isa, bits, t, tc.name, o.Reps)
				tc.run() // warm-up: same tokens, so the same experts' pages are resident
				r := base
				r.ISA, r.Threads, r.Test, r.NPrompt, r.NGen = isa.String(), t, tc.name, tc.np, tc.ng
				r.PPMode = "batched"
				if o.Serial {
					r.PPMode = "token by token"
				}
				for range o.Reps {
					d := tc.run()
					r.SamplesNs = append(r.SamplesNs, d.Nanoseconds())
					r.SamplesTs = append(r.SamplesTs, float64(tc.np+tc.ng)/d.Seconds())
				}
				summarise(&r, roof)
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// prompt runs toks as a prompt from position 0 in steps of at most len(items) tokens;
// only the last token's logits are asked for, as in a real prompt.
func prompt(b *engine.Batch, st *engine.State, items []engine.BatchItem, toks []int32) time.Duration {
	start := time.Now()
	for lo := 0; lo < len(toks); lo += len(items) {
		hi := min(lo+len(items), len(toks))
		step := items[:hi-lo]
		for i := range step {
			step[i] = engine.BatchItem{State: st, Token: toks[lo+i], Pos: lo + i, Wants: lo+i == len(toks)-1}
		}
		b.Forward(step)
	}
	return time.Since(start)
}

// generate runs toks one Forward at a time from position 0, as decoding does.
func generate(st *engine.State, toks []int32) time.Duration {
	start := time.Now()
	for i, tok := range toks {
		st.Forward(tok, i)
	}
	return time.Since(start)
}

// syntheticTokens is a fixed pseudo-random token sequence (a multiplicative hash of the
// position), the same in every run and every process, spread over the vocabulary so
// that the router sees varied inputs as with real text.
func syntheticTokens(n, vocab int) []int32 {
	t := make([]int32, n)
	for i := range t {
		t[i] = int32((uint64(i)*2654435761 + 12345) % uint64(vocab))
	}
	return t
}

// touch reads one byte of every page of the weights, so that the first timed run does
// not pay for page faults that llama.cpp's loader (which reads or prefetches the file)
// has already paid.
func touch(m *engine.Model) {
	var s byte
	page := func(mm *engine.Matrix) {
		if mm == nil {
			return
		}
		for i := 0; i < len(mm.Data); i += 4096 {
			s ^= mm.Data[i]
		}
	}
	page(m.Embed)
	page(m.Output)
	for i := range m.Layers {
		L := &m.Layers[i]
		for _, mm := range []*engine.Matrix{L.Wq, L.Wk, L.Wv, L.Wo, L.Gate, L.Up, L.Down, L.Router, L.ShGate, L.ShUp, L.ShDown} {
			page(mm)
		}
		for e := range L.ExpGate {
			page(L.ExpGate[e])
			page(L.ExpUp[e])
			page(L.ExpDown[e])
		}
	}
	readSink.Add(uint64(s))
}

// summarise fills the statistics and the roofline columns of r from its samples.
func summarise(r *Result, roof Roofline) {
	n := float64(len(r.SamplesNs))
	var sumNs, sumTs float64
	for i := range r.SamplesNs {
		sumNs += float64(r.SamplesNs[i])
		sumTs += r.SamplesTs[i]
	}
	meanNs, meanTs := sumNs/n, sumTs/n
	var vNs, vTs float64
	for i := range r.SamplesNs {
		vNs += (float64(r.SamplesNs[i]) - meanNs) * (float64(r.SamplesNs[i]) - meanNs)
		vTs += (r.SamplesTs[i] - meanTs) * (r.SamplesTs[i] - meanTs)
	}
	// The sample standard deviation (n-1), as llama-bench reports; 0 for one run.
	if n > 1 {
		vNs, vTs = vNs/(n-1), vTs/(n-1)
	}
	r.AvgNs, r.StddevNs = int64(meanNs), int64(math.Sqrt(vNs))
	r.AvgTs, r.StddevTs = meanTs, math.Sqrt(vTs)
	r.GBs = meanTs * float64(r.BytesToken) / 1e9
	r.ReadGBs, r.PeakGMACs, r.PeakGFLOPs = roof.ReadGBs, roof.PeakGMACs, roof.PeakGFLOPs
	// As the issue defines the roofs: decode reads every active weight once per token, so
	// bandwidth bounds it; prefill reuses each weight across a batch, so compute does.
	if r.NGen > 0 {
		r.RoofTs, r.RoofKind = roof.ReadGBs*1e9/float64(max(r.BytesToken, 1)), "bandwidth"
	} else {
		r.RoofTs, r.RoofKind = computeRoof(r.MACsToken, r.Traffic.FloatMACs, roof), "compute"
	}
	if r.RoofTs > 0 {
		r.RoofPct = 100 * meanTs / r.RoofTs
	}
}

// computeRoof is the prefill bound in tokens/s: a token's integer multiply-adds at the
// int8 peak plus its float ones (2 FLOPs each) at the float32 FMA peak, one after the
// other, as the engine runs them. 0 when a peak the model needs was not measured.
func computeRoof(macs, floatMACs int64, roof Roofline) float64 {
	intMACs := float64(macs - floatMACs)
	var sec float64
	if intMACs > 0 {
		if roof.PeakGMACs <= 0 {
			return 0
		}
		sec += intMACs / (roof.PeakGMACs * 1e9)
	}
	if floatMACs > 0 {
		if roof.PeakGFLOPs <= 0 {
			return 0
		}
		sec += 2 * float64(floatMACs) / (roof.PeakGFLOPs * 1e9)
	}
	if sec <= 0 {
		return 0
	}
	return 1 / sec
}

// modelType is llama.cpp's model description: architecture, size, weight type
// ("llama 644M Q4_0").
// An MWQ model is named by its widths ("MWQ24": base 2 bits, planes up to 4), since its
// attention is MOLE_Q8 and its experts are what sets it apart.
func modelType(m *engine.Model, tr Traffic) string {
	dt := m.Embed.DType.String()
	if len(m.Layers) > 0 && m.Layers[0].Wq != nil {
		dt = m.Layers[0].Wq.DType.String()
	}
	if b1, k, ok := m.MWQBits(); ok {
		dt = fmt.Sprintf("MWQ%d%d", b1, k)
	}
	return fmt.Sprintf("%s %s %s", m.Config.Arch, countLabel(tr.Params), dt)
}

// countLabel prints a parameter count as llama.cpp's size labels do: 644M, 6.9B.
func countLabel(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	}
	return fmt.Sprintf("%.0fK", float64(n)/1e3)
}
