package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/loader/sharedmodels"
)

// This file builds small random-weight models of each family in Hugging Face form,
// runs them through Load (from safetensors, and from GGUF written by WriteGGUF), and
// compares against refForward: a plain float64 forward pass written from the Hugging
// Face modelling code, sharing nothing with the engine.

type synthSpec struct {
	arch                                    string // HF architecture class
	family                                  string
	hidden, layers, heads, kv, headDim      int
	vocab, nExp, topK, moeFF, sharedFF, dff int
	theta, eps                              float64
	normTopK, bias                          bool
	qkNorm                                  string // "", "head", "full"
	seed                                    uint64 // PCG seed (0: 1), chosen so that no router choice is a near-tie
}

var synthSpecs = []synthSpec{
	{arch: "Qwen2MoeForCausalLM", family: "qwen2moe", hidden: 64, layers: 2, heads: 4, kv: 2, headDim: 16, vocab: 50,
		nExp: 4, topK: 2, moeFF: 32, sharedFF: 64, theta: 1e6, eps: 1e-6, bias: true},
	{arch: "Qwen3MoeForCausalLM", family: "qwen3moe", hidden: 64, layers: 2, heads: 4, kv: 2, headDim: 24, vocab: 50,
		nExp: 8, topK: 3, moeFF: 32, theta: 1e6, eps: 1e-6, normTopK: true, qkNorm: "head"},
	{arch: "OlmoeForCausalLM", family: "olmoe", hidden: 64, layers: 2, heads: 4, kv: 4, headDim: 16, vocab: 50,
		nExp: 8, topK: 2, moeFF: 32, theta: 10000, eps: 1e-5, qkNorm: "full"},
	{arch: "MixtralForCausalLM", family: "mixtral", hidden: 64, layers: 2, heads: 4, kv: 2, headDim: 16, vocab: 50,
		nExp: 4, topK: 2, moeFF: 32, theta: 10000, eps: 1e-5, normTopK: true, seed: 5},
	{arch: "LlamaForCausalLM", family: "llama", hidden: 64, layers: 2, heads: 4, kv: 1, headDim: 16, vocab: 50,
		dff: 96, theta: 10000, eps: 1e-5},
}

type synthModel struct {
	spec    synthSpec
	names   []string // insertion order
	shapes  map[string][]int
	weights map[string][]float32
}

func (m *synthModel) add(r *rand.Rand, name string, scale, offset float64, shape ...int) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(offset + scale*r.NormFloat64())
	}
	m.names = append(m.names, name)
	m.shapes[name] = shape
	m.weights[name] = v
}

func newSynth(sp synthSpec, seed uint64) *synthModel {
	r := rand.New(rand.NewPCG(max(seed, 1), 77))
	m := &synthModel{spec: sp, shapes: map[string][]int{}, weights: map[string][]float32{}}
	h, q, kv := sp.hidden, sp.heads*sp.headDim, sp.kv*sp.headDim
	lin := func(name string, out, in int) { m.add(r, name, 1/math.Sqrt(float64(in)), 0, out, in) }
	norm := func(name string, n int) { m.add(r, name, 0.1, 1, n) }
	m.add(r, "model.embed_tokens.weight", 1, 0, sp.vocab, h)
	for l := 0; l < sp.layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		norm(p+"input_layernorm.weight", h)
		lin(p+"self_attn.q_proj.weight", q, h)
		lin(p+"self_attn.k_proj.weight", kv, h)
		lin(p+"self_attn.v_proj.weight", kv, h)
		lin(p+"self_attn.o_proj.weight", h, q)
		if sp.bias {
			m.add(r, p+"self_attn.q_proj.bias", 0.2, 0, q)
			m.add(r, p+"self_attn.k_proj.bias", 0.2, 0, kv)
			m.add(r, p+"self_attn.v_proj.bias", 0.2, 0, kv)
		}
		switch sp.qkNorm {
		case "head":
			norm(p+"self_attn.q_norm.weight", sp.headDim)
			norm(p+"self_attn.k_norm.weight", sp.headDim)
		case "full":
			norm(p+"self_attn.q_norm.weight", q)
			norm(p+"self_attn.k_norm.weight", kv)
		}
		norm(p+"post_attention_layernorm.weight", h)
		switch {
		case sp.nExp == 0:
			lin(p+"mlp.gate_proj.weight", sp.dff, h)
			lin(p+"mlp.up_proj.weight", sp.dff, h)
			lin(p+"mlp.down_proj.weight", h, sp.dff)
		case sp.family == "mixtral":
			// A large router scale keeps the top-k choice far from ties.
			m.add(r, p+"block_sparse_moe.gate.weight", 0.5, 0, sp.nExp, h)
			for e := 0; e < sp.nExp; e++ {
				lin(fmt.Sprintf("%sblock_sparse_moe.experts.%d.w1.weight", p, e), sp.moeFF, h)
				lin(fmt.Sprintf("%sblock_sparse_moe.experts.%d.w2.weight", p, e), h, sp.moeFF)
				lin(fmt.Sprintf("%sblock_sparse_moe.experts.%d.w3.weight", p, e), sp.moeFF, h)
			}
		default:
			m.add(r, p+"mlp.gate.weight", 0.5, 0, sp.nExp, h)
			for e := 0; e < sp.nExp; e++ {
				lin(fmt.Sprintf("%smlp.experts.%d.gate_proj.weight", p, e), sp.moeFF, h)
				lin(fmt.Sprintf("%smlp.experts.%d.up_proj.weight", p, e), sp.moeFF, h)
				lin(fmt.Sprintf("%smlp.experts.%d.down_proj.weight", p, e), h, sp.moeFF)
			}
			if sp.sharedFF > 0 {
				lin(p+"mlp.shared_expert.gate_proj.weight", sp.sharedFF, h)
				lin(p+"mlp.shared_expert.up_proj.weight", sp.sharedFF, h)
				lin(p+"mlp.shared_expert.down_proj.weight", h, sp.sharedFF)
				lin(p+"mlp.shared_expert_gate.weight", 1, h)
			}
		}
	}
	norm("model.norm.weight", h)
	lin("lm_head.weight", sp.vocab, h)
	return m
}

func (m *synthModel) configJSON() []byte {
	sp := m.spec
	c := map[string]any{
		"architectures": []string{sp.arch}, "hidden_size": sp.hidden, "num_hidden_layers": sp.layers,
		"num_attention_heads": sp.heads, "num_key_value_heads": sp.kv, "head_dim": sp.headDim,
		"vocab_size": sp.vocab, "rope_theta": sp.theta, "rms_norm_eps": sp.eps, "max_position_embeddings": 64,
		"tie_word_embeddings": false, "intermediate_size": sp.dff,
	}
	if sp.nExp > 0 {
		c["num_experts_per_tok"] = sp.topK
		if sp.family == "mixtral" {
			c["num_local_experts"] = sp.nExp
			c["intermediate_size"] = sp.moeFF
		} else {
			c["num_experts"] = sp.nExp
			c["moe_intermediate_size"] = sp.moeFF
			c["norm_topk_prob"] = sp.normTopK
			if sp.family == "olmoe" {
				c["intermediate_size"] = sp.moeFF
			}
		}
		if sp.sharedFF > 0 {
			c["shared_expert_intermediate_size"] = sp.sharedFF
		}
	}
	b, _ := json.Marshal(c)
	return b
}

// writeHF writes config.json and model.safetensors into dir, leaving out skip.
func (m *synthModel) writeHF(t *testing.T, dir string, skip string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), m.configJSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	var ts []*loader.Tensor
	for _, n := range m.names {
		if n == skip {
			continue
		}
		ts = append(ts, &loader.Tensor{Name: n, Shape: m.shapes[n], DType: loader.F32, Data: loader.F32Bytes(m.weights[n])})
	}
	if err := loader.WriteSafetensors(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
}

// ---- float64 reference ----

func (m *synthModel) w64(name string) []float64 {
	v := m.weights[name]
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = float64(f)
	}
	return out
}

func refMatVec(w []float64, rows, cols int, x []float64) []float64 {
	out := make([]float64, rows)
	for r := 0; r < rows; r++ {
		var s float64
		for c := 0; c < cols; c++ {
			s += w[r*cols+c] * x[c]
		}
		out[r] = s
	}
	return out
}

func refRMS(x, w []float64, eps float64) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	inv := 1 / math.Sqrt(ss/float64(len(x))+eps)
	out := make([]float64, len(x))
	for i := range x {
		out[i] = x[i] * inv * w[i]
	}
	return out
}

// refRotateHalf applies HF apply_rotary_pos_emb to one head: x*cos + rotate_half(x)*sin.
func refRotateHalf(x []float64, pos int, theta float64) {
	d := len(x)
	y := append([]float64(nil), x...)
	for i := 0; i < d; i++ {
		f := math.Pow(theta, -float64(2*(i%(d/2)))/float64(d))
		c, s := math.Cos(float64(pos)*f), math.Sin(float64(pos)*f)
		var rot float64
		if i < d/2 {
			rot = -y[i+d/2]
		} else {
			rot = y[i-d/2]
		}
		x[i] = y[i]*c + rot*s
	}
}

func refSwiGLU(m *synthModel, gate, up, down string, ff int, x []float64) []float64 {
	h := m.spec.hidden
	g := refMatVec(m.w64(gate), ff, h, x)
	u := refMatVec(m.w64(up), ff, h, x)
	for i := range g {
		g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
	}
	return refMatVec(m.w64(down), h, ff, g)
}

// refForward returns the logits at every position of toks and the smallest gap
// between the k-th and (k+1)-th router probability seen (ties would make the
// comparison meaningless).
func refForward(m *synthModel, toks []int32) ([][]float64, float64) {
	sp := m.spec
	h, hd := sp.hidden, sp.headDim
	q, kvd := sp.heads*hd, sp.kv*hd
	emb := m.w64("model.embed_tokens.weight")
	keys := make([][][]float64, sp.layers) // [layer][pos] -> kv vector
	vals := make([][][]float64, sp.layers)
	minGap := math.Inf(1)
	var all [][]float64
	for pos, tok := range toks {
		x := append([]float64(nil), emb[int(tok)*h:(int(tok)+1)*h]...)
		for l := 0; l < sp.layers; l++ {
			p := fmt.Sprintf("model.layers.%d.", l)
			xn := refRMS(x, m.w64(p+"input_layernorm.weight"), sp.eps)
			qv := refMatVec(m.w64(p+"self_attn.q_proj.weight"), q, h, xn)
			kv := refMatVec(m.w64(p+"self_attn.k_proj.weight"), kvd, h, xn)
			vv := refMatVec(m.w64(p+"self_attn.v_proj.weight"), kvd, h, xn)
			if sp.bias {
				for i, b := range m.w64(p + "self_attn.q_proj.bias") {
					qv[i] += b
				}
				for i, b := range m.w64(p + "self_attn.k_proj.bias") {
					kv[i] += b
				}
				for i, b := range m.w64(p + "self_attn.v_proj.bias") {
					vv[i] += b
				}
			}
			switch sp.qkNorm {
			case "full":
				qv = refRMS(qv, m.w64(p+"self_attn.q_norm.weight"), sp.eps)
				kv = refRMS(kv, m.w64(p+"self_attn.k_norm.weight"), sp.eps)
			case "head":
				for i := 0; i < sp.heads; i++ {
					copy(qv[i*hd:], refRMS(qv[i*hd:(i+1)*hd], m.w64(p+"self_attn.q_norm.weight"), sp.eps))
				}
				for i := 0; i < sp.kv; i++ {
					copy(kv[i*hd:], refRMS(kv[i*hd:(i+1)*hd], m.w64(p+"self_attn.k_norm.weight"), sp.eps))
				}
			}
			for i := 0; i < sp.heads; i++ {
				refRotateHalf(qv[i*hd:(i+1)*hd], pos, sp.theta)
			}
			for i := 0; i < sp.kv; i++ {
				refRotateHalf(kv[i*hd:(i+1)*hd], pos, sp.theta)
			}
			keys[l] = append(keys[l], kv)
			vals[l] = append(vals[l], vv)
			att := make([]float64, q)
			for i := 0; i < sp.heads; i++ {
				g := i / (sp.heads / sp.kv)
				sc := make([]float64, pos+1)
				mx := math.Inf(-1)
				for t := 0; t <= pos; t++ {
					var s float64
					for d := 0; d < hd; d++ {
						s += qv[i*hd+d] * keys[l][t][g*hd+d]
					}
					sc[t] = s / math.Sqrt(float64(hd))
					mx = math.Max(mx, sc[t])
				}
				var sum float64
				for t := range sc {
					sc[t] = math.Exp(sc[t] - mx)
					sum += sc[t]
				}
				for t := range sc {
					for d := 0; d < hd; d++ {
						att[i*hd+d] += sc[t] / sum * vals[l][t][g*hd+d]
					}
				}
			}
			o := refMatVec(m.w64(p+"self_attn.o_proj.weight"), h, q, att)
			for i := range x {
				x[i] += o[i]
			}
			xn = refRMS(x, m.w64(p+"post_attention_layernorm.weight"), sp.eps)
			var ff []float64
			switch {
			case sp.nExp == 0:
				ff = refSwiGLU(m, p+"mlp.gate_proj.weight", p+"mlp.up_proj.weight", p+"mlp.down_proj.weight", sp.dff, xn)
			default:
				router := p + "mlp.gate.weight"
				exp := func(e int) (string, string, string) {
					return fmt.Sprintf("%smlp.experts.%d.gate_proj.weight", p, e), fmt.Sprintf("%smlp.experts.%d.up_proj.weight", p, e), fmt.Sprintf("%smlp.experts.%d.down_proj.weight", p, e)
				}
				if sp.family == "mixtral" {
					router = p + "block_sparse_moe.gate.weight"
					exp = func(e int) (string, string, string) {
						f := func(w string) string { return fmt.Sprintf("%sblock_sparse_moe.experts.%d.%s.weight", p, e, w) }
						return f("w1"), f("w3"), f("w2")
					}
				}
				lg := refMatVec(m.w64(router), sp.nExp, h, xn)
				mx := math.Inf(-1)
				for _, v := range lg {
					mx = math.Max(mx, v)
				}
				prob := make([]float64, sp.nExp)
				var sum float64
				for e, v := range lg {
					prob[e] = math.Exp(v - mx)
					sum += prob[e]
				}
				order := make([]int, sp.nExp)
				for e := range prob {
					prob[e] /= sum
					order[e] = e
				}
				sort.SliceStable(order, func(a, b int) bool { return prob[order[a]] > prob[order[b]] })
				minGap = math.Min(minGap, prob[order[sp.topK-1]]-prob[order[sp.topK]])
				var wsum float64
				for _, e := range order[:sp.topK] {
					wsum += prob[e]
				}
				ff = make([]float64, h)
				for _, e := range order[:sp.topK] {
					w := prob[e]
					if sp.normTopK {
						w /= wsum
					}
					g, u, d := exp(e)
					for i, v := range refSwiGLU(m, g, u, d, sp.moeFF, xn) {
						ff[i] += w * v
					}
				}
				if sp.sharedFF > 0 {
					sg := refMatVec(m.w64(p+"mlp.shared_expert_gate.weight"), 1, h, xn)[0]
					sv := refSwiGLU(m, p+"mlp.shared_expert.gate_proj.weight", p+"mlp.shared_expert.up_proj.weight", p+"mlp.shared_expert.down_proj.weight", sp.sharedFF, xn)
					for i, v := range sv {
						ff[i] += v / (1 + math.Exp(-sg))
					}
				}
			}
			for i := range x {
				x[i] += ff[i]
			}
		}
		xn := refRMS(x, m.w64("model.norm.weight"), sp.eps)
		all = append(all, refMatVec(m.w64("lm_head.weight"), sp.vocab, h, xn))
	}
	return all, minGap
}

func runAll(m *Model, toks []int32) [][]float32 {
	s := m.NewState(len(toks))
	var out [][]float32
	for i, tok := range toks {
		out = append(out, append([]float32(nil), s.Forward(tok, i)...))
	}
	return out
}

var synthTokens = []int32{1, 17, 42, 3, 3, 29, 8, 49, 0, 12}

// TestSynthFamilies checks every family against the float64 reference, from
// safetensors and from the GGUF the converter writes (F32: equal to rounding; F16:
// close), which also proves the llama-arch q/k permutation round-trips.
func TestSynthFamilies(t *testing.T) {
	for _, sp := range synthSpecs {
		t.Run(sp.family, func(t *testing.T) {
			sm := newSynth(sp, sp.seed)
			want, gap := refForward(sm, synthTokens)
			if sp.nExp > 0 && gap < 1e-4 {
				t.Fatalf("random router has a near-tie (%g): choose another seed", gap)
			}
			dir := t.TempDir()
			sm.writeHF(t, filepath.Join(dir, "hf"), "")
			m := loadModelFile(t, filepath.Join(dir, "hf"))
			if m.Config.Family != sp.family || !m.Config.RopeNeoX {
				t.Fatalf("config %+v", m.Config)
			}
			got := runAll(m, synthTokens)
			var d float64
			for p := range want {
				for i := range want[p] {
					d = math.Max(d, math.Abs(float64(got[p][i])-want[p][i]))
				}
			}
			t.Logf("safetensors vs float64 reference: max abs logit diff %.3g (router min prob gap %.3g)", d, gap)
			if d > 1e-4 {
				t.Errorf("safetensors logits differ from the reference by %g", d)
			}

			for _, c := range []struct {
				dt  loader.DType
				tol float64
			}{{loader.F32, 1e-5}, {loader.F16, 2e-2}} {
				path := filepath.Join(dir, "model-"+c.dt.String()+".gguf")
				if err := WriteGGUF(m, path, c.dt); err != nil {
					t.Fatal(err)
				}
				g := loadModelFile(t, path)
				if g.Config.Family != sp.family || g.Config.RopeNeoX != !familyByName(sp.family).ggufPermuteQK {
					t.Fatalf("GGUF config %+v", g.Config)
				}
				gg := runAll(g, synthTokens)
				var dg float64
				for p := range got {
					for i := range got[p] {
						dg = math.Max(dg, math.Abs(float64(gg[p][i]-got[p][i])))
					}
				}
				t.Logf("GGUF %v vs safetensors: max abs logit diff %.3g", c.dt, dg)
				if dg > c.tol {
					t.Errorf("GGUF %v logits differ from safetensors by %g (> %g)", c.dt, dg, c.tol)
				}
			}
		})
	}
}

// TestForwardNoAllocs checks that Forward allocates nothing once warmed up, on a
// synthetic model (shared expert, biases) and on kjv-moe (big enough to use the pool).
func TestForwardNoAllocs(t *testing.T) {
	sm := newSynth(synthSpecs[0], 1)
	dir := t.TempDir()
	sm.writeHF(t, dir, "")
	models := []*Model{loadModelFile(t, dir)}
	models[0].SetThreads(3)
	if _, err := os.Stat(filepath.Join(sharedmodels.Find(t), "kjv-moe")); err == nil {
		models = append(models, openTestModel(t, "kjv-moe"))
	}
	for _, m := range models {
		s := m.NewState(32)
		calls := 0
		s.SetRouterTrace(func(int, []int32, []float32) { calls++ })
		for i := 0; i < 10; i++ {
			s.Forward(int32(i+1), i)
		}
		n := testing.AllocsPerRun(20, func() { s.Forward(5, 10) })
		if n != 0 {
			t.Errorf("%s: Forward allocates %v times per call", m.Config.Family, n)
		}
		if calls == 0 {
			t.Errorf("%s: router trace never called", m.Config.Family)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	sm := newSynth(synthSpecs[1], 1)

	dir := filepath.Join(t.TempDir(), "missing")
	missing := "model.layers.1.self_attn.k_proj.weight"
	sm.writeHF(t, dir, missing)
	if err := loadErr(dir); err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "[48 64]") {
		t.Errorf("missing tensor: error %v should name %s and shape [48 64]", err, missing)
	}

	dir = filepath.Join(t.TempDir(), "shape")
	sm.shapes["model.norm.weight"] = []int{32, 2}
	sm.writeHF(t, dir, "")
	sm.shapes["model.norm.weight"] = []int{64}
	if err := loadErr(dir); err == nil || !strings.Contains(err.Error(), "model.norm.weight") || !strings.Contains(err.Error(), "[64]") {
		t.Errorf("mis-shaped tensor: error %v", err)
	}

	dir = filepath.Join(t.TempDir(), "gptj")
	sm.writeHF(t, dir, "")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architectures":["GPTJForCausalLM"],"model_type":"gptj"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := loadErr(dir); err == nil || !strings.Contains(err.Error(), `unsupported architecture "GPTJForCausalLM"`) {
		t.Errorf("unknown HF architecture: error %v", err)
	}

	w := loader.NewGGUFWriter()
	w.Set("general.architecture", loader.StringValue("gpt-j"))
	path := filepath.Join(t.TempDir(), "gptj.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if err := loadErr(path); err == nil || !strings.Contains(err.Error(), `unsupported architecture "gpt-j"`) {
		t.Errorf("unknown GGUF architecture: error %v", err)
	}
}

func loadErr(path string) error {
	lm, err := loader.Open(path)
	if err != nil {
		return err
	}
	defer lm.Close()
	m, err := Load(lm)
	if m != nil {
		m.Close()
	}
	return err
}

// TestPool checks that Run covers [0, n) exactly once with several workers and does
// not allocate.
func TestPool(t *testing.T) {
	p := NewPool(4)
	defer p.Close()
	hits := make([]int32, 1000)
	fn := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			hits[i]++
		}
	}
	for _, chunk := range []int{1, 7, 300, 5000} {
		clear(hits)
		p.RunChunk(len(hits), chunk, fn)
		for i, h := range hits {
			if h != 1 {
				t.Fatalf("chunk %d: index %d run %d times", chunk, i, h)
			}
		}
	}
	if n := testing.AllocsPerRun(50, func() { p.RunChunk(len(hits), 10, fn) }); n != 0 {
		t.Errorf("Run allocates %v", n)
	}
}
