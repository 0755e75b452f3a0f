package engine

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/mole-llm/mole/engine/tokenizer"
	"github.com/mole-llm/mole/loader"
)

// Model is a loaded model: its configuration, its tokenizer (nil when the files carry
// none) and its weights as views into the loader's mapping, which must stay open for
// the Model's lifetime.
type Model struct {
	Config Config
	Tok    *tokenizer.Tokenizer

	Embed   *Matrix // [Vocab, NEmbd]
	OutNorm []float32
	Output  *Matrix // [Vocab, NEmbd]; == Embed when tied
	Layers  []Layer

	src  *loader.Model
	pool *Pool
	// sched binds the experts to a budgeted plane cache (sched.go); nil without
	// --mem-budget. Set and cleared only while no State or Batch of the model runs.
	sched *schedGlue
	act   actKind // encoding of Quantized matrices' inputs (matrix_mole.go)
	// closeFiles closes the files Open opened for the Model, which it owns; nil after
	// Load, whose caller owns them.
	closeFiles func() error
}

// Layer holds one transformer block's weights. Optional parts are nil.
type Layer struct {
	AttnNorm       []float32
	Wq, Wk, Wv, Wo *Matrix
	Bq, Bk, Bv, Bo []float32
	QNorm, KNorm   []float32 // [HeadDim] ("head") or [NHead*HeadDim]/[NKVHead*HeadDim] ("full")
	FFNNorm        []float32

	// Dense FFN (layers without a router): SwiGLU down(silu(gate x) * up x).
	Gate, Up, Down *Matrix

	// Routed experts: Router [NExpert, NEmbd]; expert e is ExpGate[e], ExpUp[e], ExpDown[e].
	Router                  *Matrix
	ExpGate, ExpUp, ExpDown []*Matrix
	ShGate, ShUp, ShDown    *Matrix // shared expert (Qwen2-MoE)
	ShGateInp               *Matrix // [1, NEmbd]: the shared expert's sigmoid gate

	// Latent replaces ExpGate/ExpUp/ExpDown in a MoLE file (latent.go).
	Latent *LatentFFN
}

// naming gives a family's tensor names. Templates take the layer (and expert) index.
type naming struct {
	embed, outNorm, output                                  string
	attnNorm, q, k, v, o, qBias, kBias, vBias, oBias, qNorm string
	kNorm, ffnNorm, router, gate, up, down                  string
	expGate, expUp, expDown                                 string // per expert: layer, expert
	stackGate, stackUp, stackDown                           string // stacked [NExpert, rows, cols]: layer
	shGate, shUp, shDown, shGateInp                         string
}

// ggufNames are llama.cpp's tensor names, shared by every family. Per-expert names are
// the layout of Mixtral GGUFs written before llama.cpp stacked experts.
var ggufNames = naming{
	embed: "token_embd.weight", outNorm: "output_norm.weight", output: "output.weight",
	attnNorm: "blk.%d.attn_norm.weight",
	q:        "blk.%d.attn_q.weight", k: "blk.%d.attn_k.weight", v: "blk.%d.attn_v.weight", o: "blk.%d.attn_output.weight",
	qBias: "blk.%d.attn_q.bias", kBias: "blk.%d.attn_k.bias", vBias: "blk.%d.attn_v.bias", oBias: "blk.%d.attn_output.bias",
	qNorm: "blk.%d.attn_q_norm.weight", kNorm: "blk.%d.attn_k_norm.weight",
	ffnNorm: "blk.%d.ffn_norm.weight", router: "blk.%d.ffn_gate_inp.weight",
	gate: "blk.%d.ffn_gate.weight", up: "blk.%d.ffn_up.weight", down: "blk.%d.ffn_down.weight",
	expGate: "blk.%d.ffn_gate.%d.weight", expUp: "blk.%d.ffn_up.%d.weight", expDown: "blk.%d.ffn_down.%d.weight",
	stackGate: "blk.%d.ffn_gate_exps.weight", stackUp: "blk.%d.ffn_up_exps.weight", stackDown: "blk.%d.ffn_down_exps.weight",
	shGate: "blk.%d.ffn_gate_shexp.weight", shUp: "blk.%d.ffn_up_shexp.weight", shDown: "blk.%d.ffn_down_shexp.weight",
	shGateInp: "blk.%d.ffn_gate_inp_shexp.weight",
}

// hfNames returns the Hugging Face names of a family. Only the MoE block differs:
// Mixtral calls it block_sparse_moe with w1 (gate), w3 (up), w2 (down).
func hfNames(family string) naming {
	p := "model.layers.%d."
	n := naming{
		embed: "model.embed_tokens.weight", outNorm: "model.norm.weight", output: "lm_head.weight",
		attnNorm: p + "input_layernorm.weight",
		q:        p + "self_attn.q_proj.weight", k: p + "self_attn.k_proj.weight", v: p + "self_attn.v_proj.weight", o: p + "self_attn.o_proj.weight",
		qBias: p + "self_attn.q_proj.bias", kBias: p + "self_attn.k_proj.bias", vBias: p + "self_attn.v_proj.bias", oBias: p + "self_attn.o_proj.bias",
		qNorm: p + "self_attn.q_norm.weight", kNorm: p + "self_attn.k_norm.weight",
		ffnNorm: p + "post_attention_layernorm.weight",
		gate:    p + "mlp.gate_proj.weight", up: p + "mlp.up_proj.weight", down: p + "mlp.down_proj.weight",
		router:  p + "mlp.gate.weight",
		expGate: p + "mlp.experts.%d.gate_proj.weight", expUp: p + "mlp.experts.%d.up_proj.weight", expDown: p + "mlp.experts.%d.down_proj.weight",
		shGate: p + "mlp.shared_expert.gate_proj.weight", shUp: p + "mlp.shared_expert.up_proj.weight", shDown: p + "mlp.shared_expert.down_proj.weight",
		shGateInp: p + "mlp.shared_expert_gate.weight",
	}
	if family == "mixtral" {
		n.router = p + "block_sparse_moe.gate.weight"
		n.expGate = p + "block_sparse_moe.experts.%d.w1.weight"
		n.expUp = p + "block_sparse_moe.experts.%d.w3.weight"
		n.expDown = p + "block_sparse_moe.experts.%d.w2.weight"
	}
	return n
}

// hfFamilies maps Hugging Face architecture classes and model_type values to families.
var hfFamilies = map[string]string{
	"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama", "llama": "llama", "mistral": "llama",
	"MixtralForCausalLM": "mixtral", "mixtral": "mixtral",
	"Qwen2MoeForCausalLM": "qwen2moe", "qwen2_moe": "qwen2moe",
	"Qwen3MoeForCausalLM": "qwen3moe", "qwen3_moe": "qwen3moe",
	"OlmoeForCausalLM": "olmoe", "olmoe": "olmoe",
}

// Families lists the model families Load accepts.
var Families = []string{"llama", "mixtral", "qwen2moe", "qwen3moe", "olmoe"}

// Load builds a Model over an opened file or folder. It refuses architectures it does
// not implement by name, and names any missing or mis-shaped tensor with the shape it
// expected. The worker pool uses runtime.GOMAXPROCS(0) goroutines; see SetThreads.
func Load(lm *loader.Model) (*Model, error) {
	var (
		cfg    Config
		names  naming
		sparse []bool
		err    error
	)
	switch {
	case lm.GGUF != nil:
		cfg, sparse, err = ggufConfig(lm.GGUF)
		names = ggufNames
	case lm.HF != nil:
		cfg, sparse, err = hfConfig(lm.HF.ConfigJSON)
		names = hfNames(cfg.Family)
	default:
		return nil, fmt.Errorf("%s: neither a GGUF file nor a safetensors folder", lm.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", lm.Path, err)
	}
	m := &Model{Config: cfg, src: lm}
	if err := m.bind(lm, names, sparse); err != nil {
		return nil, fmt.Errorf("%s: %w", lm.Path, err)
	}
	if err := m.setAct(); err != nil {
		return nil, fmt.Errorf("%s: %w", lm.Path, err)
	}
	if m.Tok, err = loadTokenizer(lm); err != nil {
		return nil, fmt.Errorf("%s: tokenizer: %w", lm.Path, err)
	}
	m.pool = NewPool(0)
	return m, nil
}

// SetThreads replaces the model's worker pool by one of n workers (n <= 0: GOMAXPROCS).
// It must not be called while a State of the model is running Forward.
func (m *Model) SetThreads(n int) {
	if m.pool != nil {
		m.pool.Close()
	}
	m.pool = NewPool(n)
}

// Threads reports the number of workers a forward pass uses.
func (m *Model) Threads() int { return m.pool.Workers() }

// Close stops the model's worker goroutines. It does not close the loader.Model given
// to Load; it closes the files of a Model from Open.
func (m *Model) Close() {
	m.ClearMemBudget()
	if m.pool != nil {
		m.pool.Close()
		m.pool = nil
	}
	if m.closeFiles != nil {
		m.closeFiles()
		m.closeFiles = nil
	}
}

func ggufConfig(g *loader.GGUFFile) (Config, []bool, error) {
	arch := g.Architecture()
	c := Config{Arch: arch, Format: "gguf"}
	switch arch {
	case "llama", "qwen2moe", "qwen3moe", "olmoe":
		c.Family = arch
	case "":
		return c, nil, fmt.Errorf("GGUF file has no general.architecture")
	default:
		return c, nil, fmt.Errorf("unsupported architecture %s (mole runs %v)", loader.Quote(arch), Families)
	}
	var missing string
	u := func(key string, def int) int {
		v, ok := g.Uint(arch + "." + key)
		if !ok {
			if def < 0 && missing == "" {
				missing = arch + "." + key
			}
			return max(def, 0)
		}
		return int(v)
	}
	c.NLayer = u("block_count", -1)
	c.NEmbd = u("embedding_length", -1)
	c.NHead = u("attention.head_count", -1)
	if missing != "" {
		return c, nil, fmt.Errorf("missing metadata %s", missing)
	}
	c.NKVHead = u("attention.head_count_kv", c.NHead)
	if c.NHead == 0 || c.NKVHead == 0 {
		return c, nil, fmt.Errorf("%s.attention.head_count = %d, head_count_kv = %d", arch, c.NHead, c.NKVHead)
	}
	c.HeadDim = u("attention.key_length", c.NEmbd/c.NHead)
	if vl := u("attention.value_length", c.HeadDim); vl != c.HeadDim {
		return c, nil, fmt.Errorf("%s.attention.value_length %d != key_length %d is not supported", arch, vl, c.HeadDim)
	}
	if rd := u("rope.dimension_count", c.HeadDim); rd != c.HeadDim {
		return c, nil, fmt.Errorf("partial rotary embeddings (%s.rope.dimension_count %d of head size %d) are not supported", arch, rd, c.HeadDim)
	}
	if st, ok := g.String(arch + ".rope.scaling.type"); ok && st != "none" {
		return c, nil, fmt.Errorf("RoPE scaling %s is not supported", loader.Quote(st))
	}
	c.NFF = u("feed_forward_length", 0)
	c.NExpert = u("expert_count", 0)
	c.NExpertUsed = u("expert_used_count", 0)
	c.NFFExpert = u("expert_feed_forward_length", 0)
	c.NFFShared = u("expert_shared_feed_forward_length", 0)
	c.CtxLen = u("context_length", 2048)
	c.RopeTheta = 10000
	if f, ok := g.Float(arch + ".rope.freq_base"); ok {
		c.RopeTheta = f
	}
	c.NormEps = 1e-5
	if f, ok := g.Float(arch + ".attention.layer_norm_rms_epsilon"); ok {
		c.NormEps = float32(f)
	}
	if arch == "llama" && c.NExpert > 0 {
		c.Family = "mixtral"
	}
	// llama.cpp's converter permutes q/k rows of llama-arch models for interleaved
	// RoPE; the Qwen and OLMoE converters keep the Hugging Face (NeoX) order.
	c.RopeNeoX = arch != "llama"
	c.NormTopK = c.Family == "mixtral" || c.Family == "qwen3moe"
	if v, ok := g.Get(arch + ".expert_weights_norm"); ok {
		if b, ok := v.Bool(); ok {
			c.NormTopK = b
		}
	}
	c.QKNorm = familyQKNorm(c.Family)
	sparse := make([]bool, c.NLayer)
	for i := range sparse {
		sparse[i] = c.NExpert > 0
	}
	return c, sparse, nil
}

func familyQKNorm(family string) string {
	switch family {
	case "qwen3moe":
		return "head"
	case "olmoe":
		return "full"
	}
	return ""
}

func hfConfig(data []byte) (Config, []bool, error) {
	c := Config{Format: "safetensors"}
	if data == nil {
		return c, nil, fmt.Errorf("no config.json")
	}
	var j map[string]any
	if err := json.Unmarshal(data, &j); err != nil {
		return c, nil, fmt.Errorf("config.json: %v", err)
	}
	if a, ok := j["architectures"].([]any); ok && len(a) > 0 {
		c.Arch, _ = a[0].(string)
	}
	if c.Arch == "" {
		c.Arch, _ = j["model_type"].(string)
	}
	c.Family = hfFamilies[c.Arch]
	if c.Family == "" {
		return c, nil, fmt.Errorf("unsupported architecture %s (mole runs %v)", loader.Quote(c.Arch), Families)
	}
	var bad string
	num := func(key string, def float64) float64 {
		switch v := j[key].(type) {
		case float64:
			return v
		case nil:
			if def < 0 && bad == "" {
				bad = "config.json has no " + key
			}
			return max(def, 0)
		default:
			if bad == "" {
				bad = fmt.Sprintf("config.json %s = %v is not a number", key, v)
			}
			return 0
		}
	}
	flag := func(key string, def bool) bool {
		if b, ok := j[key].(bool); ok {
			return b
		}
		return def
	}
	c.NEmbd = int(num("hidden_size", -1))
	c.NLayer = int(num("num_hidden_layers", -1))
	c.NHead = int(num("num_attention_heads", -1))
	if bad != "" {
		return c, nil, fmt.Errorf("%s", bad)
	}
	if c.NHead <= 0 {
		return c, nil, fmt.Errorf("config.json num_attention_heads = %d", c.NHead)
	}
	c.NKVHead = int(num("num_key_value_heads", float64(c.NHead)))
	c.HeadDim = int(num("head_dim", float64(c.NEmbd/c.NHead)))
	c.NFF = int(num("intermediate_size", 0))
	c.Vocab = int(num("vocab_size", 0))
	c.CtxLen = int(num("max_position_embeddings", 2048))
	c.RopeTheta = num("rope_theta", 10000)
	c.NormEps = float32(num("rms_norm_eps", 1e-6))
	c.NExpert = int(num("num_local_experts", num("num_experts", 0)))
	c.NExpertUsed = int(num("num_experts_per_tok", 0))
	c.NFFExpert = int(num("moe_intermediate_size", float64(c.NFF)))
	c.NFFShared = int(num("shared_expert_intermediate_size", 0))
	if bad != "" {
		return c, nil, fmt.Errorf("%s", bad)
	}
	if c.NKVHead <= 0 || c.NHead%c.NKVHead != 0 {
		return c, nil, fmt.Errorf("config.json: %d attention heads are not a multiple of %d KV heads", c.NHead, c.NKVHead)
	}
	if rs, ok := j["rope_scaling"].(map[string]any); ok {
		t, _ := rs["rope_type"].(string)
		if t == "" {
			t, _ = rs["type"].(string)
		}
		if t != "default" {
			return c, nil, fmt.Errorf("RoPE scaling %s is not supported", loader.Quote(t))
		}
	}
	if pr, ok := j["partial_rotary_factor"].(float64); ok && pr != 1 {
		return c, nil, fmt.Errorf("partial rotary embeddings (factor %v) are not supported", pr)
	}
	c.RopeNeoX = true // Hugging Face checkpoints use rotate_half
	c.TiedEmbeddings = flag("tie_word_embeddings", false)
	c.NormTopK = flag("norm_topk_prob", c.Family == "mixtral")
	c.QKNorm = familyQKNorm(c.Family)
	if c.Family == "llama" {
		c.NExpert = 0
	}
	// Qwen MoE configs may keep some layers dense: those listed in mlp_only_layers and
	// those not on the decoder_sparse_step grid.
	step := int(num("decoder_sparse_step", 1))
	var dense []int
	if a, ok := j["mlp_only_layers"].([]any); ok {
		for _, v := range a {
			if f, ok := v.(float64); ok {
				dense = append(dense, int(f))
			}
		}
	}
	sparse := make([]bool, c.NLayer)
	for l := range sparse {
		sparse[l] = c.NExpert > 0 && !slices.Contains(dense, l) && (step <= 1 || (l+1)%step == 0)
	}
	return c, sparse, nil
}

// binder fetches tensors by name and checks their shapes.
type binder struct {
	lm *loader.Model
}

func shapeStr(s []int) string { return fmt.Sprint(s) }

func (b binder) tensor(name string, shape []int, required bool) (*loader.Tensor, error) {
	t, ok := b.lm.Tensor(name)
	if !ok {
		if required {
			return nil, fmt.Errorf("missing tensor %s (expected shape %s)", name, shapeStr(shape))
		}
		return nil, nil
	}
	got := t.Shape
	// A vector may be stored as [n] or [1, n]; compare without leading 1s.
	for len(got) > len(shape) && got[0] == 1 {
		got = got[1:]
	}
	want := shape
	for len(want) > len(got) && want[0] == 1 {
		want = want[1:]
	}
	if t.DType.Mole() && len(want) > 0 {
		// mole's types store rows padded to whole blocks (docs/format.md).
		want = append(want[:len(want)-1:len(want)-1], t.DType.PaddedCols(want[len(want)-1]))
	}
	if !slices.Equal(got, want) {
		return nil, fmt.Errorf("tensor %s has shape %v, expected %s", name, t.Shape, shapeStr(shape))
	}
	return t, nil
}

func (b binder) matrix(name string, rows, cols int, required bool) (*Matrix, error) {
	t, err := b.tensor(name, []int{rows, cols}, required)
	if t == nil || err != nil {
		return nil, err
	}
	mm, err := newMatrix(name, t.DType, rows, cols, t.Data)
	if err != nil {
		return nil, err
	}
	return mm, bindMole(b.lm, mm, name, -1, 0)
}

func (b binder) vector(name string, n int, required bool) ([]float32, error) {
	t, err := b.tensor(name, []int{n}, required)
	if t == nil || err != nil {
		return nil, err
	}
	m, err := newMatrix(name, t.DType, 1, n, t.Data)
	if err != nil {
		return nil, err
	}
	v := make([]float32, n)
	m.RowF32(0, v)
	return v, nil
}

// experts returns nExpert matrices of [rows, cols], from one stacked tensor when the
// file has it, else from per-expert tensors.
func (b binder) experts(stacked, perExpert string, layer, nExpert, rows, cols int) ([]*Matrix, error) {
	out := make([]*Matrix, nExpert)
	if stacked != "" {
		name := fmt.Sprintf(stacked, layer)
		if _, ok := b.lm.Tensor(name); ok || perExpert == "" {
			t, err := b.tensor(name, []int{nExpert, rows, cols}, true)
			if err != nil {
				return nil, err
			}
			if len(t.Data)%nExpert != 0 {
				return nil, fmt.Errorf("tensor %s: %d bytes do not split into %d experts", name, len(t.Data), nExpert)
			}
			per := len(t.Data) / nExpert
			for e := range out {
				if out[e], err = newMatrix(fmt.Sprintf("%s[%d]", name, e), t.DType, rows, cols, t.Data[e*per:(e+1)*per]); err != nil {
					return nil, err
				}
				if err = bindMole(b.lm, out[e], name, e, nExpert); err != nil {
					return nil, err
				}
			}
			return out, nil
		}
	}
	for e := range out {
		var err error
		if out[e], err = b.matrix(fmt.Sprintf(perExpert, layer, e), rows, cols, true); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// bind maps every tensor the family needs onto the Model.
func (m *Model) bind(lm *loader.Model, n naming, sparse []bool) error {
	c := &m.Config
	b := binder{lm}
	emb, ok := lm.Tensor(n.embed)
	if !ok || len(emb.Shape) != 2 {
		return fmt.Errorf("missing tensor %s (expected shape [vocab %d])", n.embed, c.NEmbd)
	}
	c.Vocab = emb.Shape[0]
	var err error
	if m.Embed, err = b.matrix(n.embed, c.Vocab, c.NEmbd, true); err != nil {
		return err
	}
	if m.OutNorm, err = b.vector(n.outNorm, c.NEmbd, true); err != nil {
		return err
	}
	if c.TiedEmbeddings {
		m.Output = m.Embed
	} else if m.Output, err = b.matrix(n.output, c.Vocab, c.NEmbd, false); err != nil {
		return err
	} else if m.Output == nil {
		// GGUF omits output.weight for tied models; so do some HF checkpoints.
		m.Output, c.TiedEmbeddings = m.Embed, true
	}
	qDim, kvDim := c.NHead*c.HeadDim, c.NKVHead*c.HeadDim
	if c.NHead%c.NKVHead != 0 {
		return fmt.Errorf("%d attention heads are not a multiple of %d KV heads", c.NHead, c.NKVHead)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("head size %d is odd", c.HeadDim)
	}
	m.Layers = make([]Layer, c.NLayer)
	for l := range m.Layers {
		L := &m.Layers[l]
		f := func(t string) string { return fmt.Sprintf(t, l) }
		steps := []error{}
		must := func(mm **Matrix, t string, rows, cols int) {
			var e error
			*mm, e = b.matrix(f(t), rows, cols, true)
			steps = append(steps, e)
		}
		vec := func(v *[]float32, t string, n int, required bool) {
			var e error
			*v, e = b.vector(f(t), n, required)
			steps = append(steps, e)
		}
		vec(&L.AttnNorm, n.attnNorm, c.NEmbd, true)
		must(&L.Wq, n.q, qDim, c.NEmbd)
		must(&L.Wk, n.k, kvDim, c.NEmbd)
		must(&L.Wv, n.v, kvDim, c.NEmbd)
		must(&L.Wo, n.o, c.NEmbd, qDim)
		vec(&L.Bq, n.qBias, qDim, false)
		vec(&L.Bk, n.kBias, kvDim, false)
		vec(&L.Bv, n.vBias, kvDim, false)
		vec(&L.Bo, n.oBias, c.NEmbd, false)
		switch c.QKNorm {
		case "head":
			vec(&L.QNorm, n.qNorm, c.HeadDim, true)
			vec(&L.KNorm, n.kNorm, c.HeadDim, true)
		case "full":
			vec(&L.QNorm, n.qNorm, qDim, true)
			vec(&L.KNorm, n.kNorm, kvDim, true)
		}
		vec(&L.FFNNorm, n.ffnNorm, c.NEmbd, true)
		if err := firstErr(steps); err != nil {
			return err
		}
		if !sparse[l] {
			if c.NFF == 0 {
				if t, ok := lm.Tensor(f(n.gate)); ok && len(t.Shape) == 2 {
					c.NFF = t.Shape[0]
				}
			}
			must(&L.Gate, n.gate, c.NFF, c.NEmbd)
			must(&L.Up, n.up, c.NFF, c.NEmbd)
			must(&L.Down, n.down, c.NEmbd, c.NFF)
			if err := firstErr(steps); err != nil {
				return err
			}
			continue
		}
		if c.NExpertUsed <= 0 || c.NExpertUsed > c.NExpert || c.NExpertUsed >= maxFFNParts {
			return fmt.Errorf("%d experts used per token of %d", c.NExpertUsed, c.NExpert)
		}
		must(&L.Router, n.router, c.NExpert, c.NEmbd)
		if err := firstErr(steps); err != nil {
			return err
		}
		// The expert width is taken from the weights when metadata lacks it (GGUF
		// Mixtral files only carry feed_forward_length).
		if c.NFFExpert == 0 {
			c.NFFExpert = expertWidth(lm, n, l)
		}
		if lm.GGUF != nil {
			if L.Latent, err = b.latent(l, c); err != nil {
				return err
			}
		}
		if L.Latent != nil {
			// MoLE: the experts are latent factors (latent.go).
		} else if L.ExpGate, err = b.experts(n.stackGate, n.expGate, l, c.NExpert, c.NFFExpert, c.NEmbd); err != nil {
			return err
		} else if L.ExpUp, err = b.experts(n.stackUp, n.expUp, l, c.NExpert, c.NFFExpert, c.NEmbd); err != nil {
			return err
		} else if L.ExpDown, err = b.experts(n.stackDown, n.expDown, l, c.NExpert, c.NEmbd, c.NFFExpert); err != nil {
			return err
		}
		if c.Family == "qwen2moe" || c.NFFShared > 0 {
			if c.NFFShared == 0 {
				if t, ok := lm.Tensor(f(n.shGate)); ok && len(t.Shape) == 2 {
					c.NFFShared = t.Shape[0]
				}
			}
			if c.NFFShared > 0 {
				must(&L.ShGate, n.shGate, c.NFFShared, c.NEmbd)
				must(&L.ShUp, n.shUp, c.NFFShared, c.NEmbd)
				must(&L.ShDown, n.shDown, c.NEmbd, c.NFFShared)
				must(&L.ShGateInp, n.shGateInp, 1, c.NEmbd)
			}
		}
		if err := firstErr(steps); err != nil {
			return err
		}
	}
	if c.CtxLen <= 0 {
		c.CtxLen = 2048
	}
	return nil
}

func expertWidth(lm *loader.Model, n naming, l int) int {
	if t, ok := lm.Tensor(fmt.Sprintf(n.stackGate, l)); ok && len(t.Shape) == 3 {
		return t.Shape[1]
	}
	if t, ok := lm.Tensor(fmt.Sprintf(n.expGate, l, 0)); ok && len(t.Shape) == 2 {
		return t.Shape[0]
	}
	return 0
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// dequantAll returns a float32 copy of a whole matrix; the converter uses it for small
// tensors.
func dequantAll(mm *Matrix) []float32 {
	out := make([]float32, mm.Rows*mm.Cols)
	for r := 0; r < mm.Rows; r++ {
		mm.RowF32(r, out[r*mm.Cols:])
	}
	return out
}
