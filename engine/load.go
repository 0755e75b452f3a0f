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

// Load builds a Model over an opened file or folder. It refuses architectures it does
// not implement by name, and names any missing or mis-shaped tensor with the shape it
// expected. The worker pool uses runtime.GOMAXPROCS(0) goroutines; see SetThreads.
func Load(lm *loader.Model) (*Model, error) {
	var (
		cfg    Config
		fam    *family
		sparse []bool
		err    error
	)
	switch {
	case lm.GGUF != nil:
		cfg, fam, sparse, err = ggufConfig(lm.GGUF)
	case lm.HF != nil:
		cfg, fam, sparse, err = hfConfig(lm.HF.ConfigJSON)
	default:
		return nil, fmt.Errorf("%s: neither a GGUF file nor a safetensors folder", lm.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", lm.Path, err)
	}
	names := fam.hfNames
	if lm.GGUF != nil {
		names = fam.ggufNames
	}
	m := &Model{Config: cfg, src: lm}
	if err := m.bind(lm, fam, names, sparse); err != nil {
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

// ggufConfig reads a GGUF file's metadata through its family's keys (family.go).
func ggufConfig(g *loader.GGUFFile) (Config, *family, []bool, error) {
	arch := g.Architecture()
	c := Config{Arch: arch, Format: "gguf"}
	if arch == "" {
		return c, nil, nil, fmt.Errorf("GGUF file has no general.architecture")
	}
	// Families sharing an arch (Llama, Mixtral) differ in whether they have experts.
	var fam *family
	for _, f := range families {
		if f.gguf != arch {
			continue
		}
		if fam == nil {
			fam = f
		}
		if n, ok := ggufUint(g, arch, f.ggufKeys.NExpert); f.moe == (ok && n > 0) {
			fam = f
			break
		}
	}
	if fam == nil {
		return c, nil, nil, fmt.Errorf("unsupported architecture %s (mole runs %v)", loader.Quote(arch), Families)
	}
	c.Family = fam.name
	k := &fam.ggufKeys
	var missing string
	u := func(keys []string, def int) int {
		v, ok := ggufUint(g, arch, keys)
		if !ok {
			if def < 0 && missing == "" {
				missing = arch + "." + keys[0]
			}
			return max(def, 0)
		}
		return int(v)
	}
	float := func(keys []string, def float64) float64 {
		for _, key := range keys {
			if f, ok := g.Float(arch + "." + key); ok {
				return f
			}
		}
		return def
	}
	c.NLayer = u(k.NLayer, -1)
	c.NEmbd = u(k.NEmbd, -1)
	c.NHead = u(k.NHead, -1)
	if missing != "" {
		return c, fam, nil, fmt.Errorf("missing metadata %s", missing)
	}
	c.NKVHead = u(k.NKVHead, c.NHead)
	if c.NHead == 0 || c.NKVHead == 0 {
		return c, fam, nil, fmt.Errorf("%s.attention.head_count = %d, head_count_kv = %d", arch, c.NHead, c.NKVHead)
	}
	c.HeadDim = u(k.HeadDim, c.NEmbd/c.NHead)
	// What the blocks do not implement is refused under llama.cpp's own keys; a family
	// that implements it gets configKeys fields for them.
	if vl := u([]string{"attention.value_length"}, c.HeadDim); vl != c.HeadDim {
		return c, fam, nil, fmt.Errorf("%s.attention.value_length %d != key_length %d is not supported", arch, vl, c.HeadDim)
	}
	if rd := u([]string{"rope.dimension_count"}, c.HeadDim); rd != c.HeadDim {
		return c, fam, nil, fmt.Errorf("partial rotary embeddings (%s.rope.dimension_count %d of head size %d) are not supported", arch, rd, c.HeadDim)
	}
	if st, ok := g.String(arch + ".rope.scaling.type"); ok && st != "none" {
		return c, fam, nil, fmt.Errorf("RoPE scaling %s is not supported", loader.Quote(st))
	}
	c.NFF = u(k.NFF, 0)
	c.NExpert = u(k.NExpert, 0)
	c.NExpertUsed = u(k.NExpertUsed, 0)
	c.NFFExpert = u(k.NFFExpert, 0)
	c.NFFShared = u(k.NFFShared, 0)
	c.CtxLen = u(k.CtxLen, k.DefCtxLen)
	c.RopeTheta = float(k.RopeTheta, k.DefRopeTheta)
	c.NormEps = float32(float(k.NormEps, float64(k.DefNormEps)))
	if !fam.moe {
		c.NExpert = 0
	}
	c.RopeNeoX = fam.ropeNeoX && !fam.ggufPermuteQK
	c.NormTopK = fam.normTopKGGUF
	for _, key := range k.NormTopK {
		if v, ok := g.Get(arch + "." + key); ok {
			if b, ok := v.Bool(); ok {
				c.NormTopK = b
				break
			}
		}
	}
	c.QKNorm = fam.qkNorm
	sparse := make([]bool, c.NLayer)
	for i := range sparse {
		sparse[i] = c.NExpert > 0
	}
	return c, fam, sparse, nil
}

// ggufUint returns the first of arch.key for keys the file has as an integer.
func ggufUint(g *loader.GGUFFile, arch string, keys []string) (uint64, bool) {
	for _, key := range keys {
		if v, ok := g.Uint(arch + "." + key); ok {
			return v, true
		}
	}
	return 0, false
}

// hfConfig reads a Hugging Face config.json through its family's keys (family.go).
func hfConfig(data []byte) (Config, *family, []bool, error) {
	c := Config{Format: "safetensors"}
	if data == nil {
		return c, nil, nil, fmt.Errorf("no config.json")
	}
	var j map[string]any
	if err := json.Unmarshal(data, &j); err != nil {
		return c, nil, nil, fmt.Errorf("config.json: %v", err)
	}
	if a, ok := j["architectures"].([]any); ok && len(a) > 0 {
		c.Arch, _ = a[0].(string)
	}
	if c.Arch == "" {
		c.Arch, _ = j["model_type"].(string)
	}
	fam := familyForHF(c.Arch)
	if fam == nil {
		return c, nil, nil, fmt.Errorf("unsupported architecture %s (mole runs %v)", loader.Quote(c.Arch), Families)
	}
	c.Family = fam.name
	k := &fam.hfKeys
	var bad string
	num := func(keys []string, def float64) float64 {
		for _, key := range keys {
			switch v := j[key].(type) {
			case float64:
				return v
			case nil:
				continue
			default:
				if bad == "" {
					bad = fmt.Sprintf("config.json %s = %v is not a number", key, v)
				}
				return 0
			}
		}
		if def < 0 && bad == "" {
			bad = "config.json has no " + keys[0]
		}
		return max(def, 0)
	}
	flag := func(keys []string, def bool) bool {
		for _, key := range keys {
			if b, ok := j[key].(bool); ok {
				return b
			}
		}
		return def
	}
	c.NEmbd = int(num(k.NEmbd, -1))
	c.NLayer = int(num(k.NLayer, -1))
	c.NHead = int(num(k.NHead, -1))
	if bad != "" {
		return c, fam, nil, fmt.Errorf("%s", bad)
	}
	if c.NHead <= 0 {
		return c, fam, nil, fmt.Errorf("config.json %s = %d", k.NHead[0], c.NHead)
	}
	c.NKVHead = int(num(k.NKVHead, float64(c.NHead)))
	c.HeadDim = int(num(k.HeadDim, float64(c.NEmbd/c.NHead)))
	c.NFF = int(num(k.NFF, 0))
	c.Vocab = int(num(k.Vocab, 0))
	c.CtxLen = int(num(k.CtxLen, float64(k.DefCtxLen)))
	c.RopeTheta = num(k.RopeTheta, k.DefRopeTheta)
	c.NormEps = float32(num(k.NormEps, float64(k.DefNormEps)))
	c.NExpert = int(num(k.NExpert, 0))
	c.NExpertUsed = int(num(k.NExpertUsed, 0))
	c.NFFExpert = int(num(k.NFFExpert, float64(c.NFF)))
	c.NFFShared = int(num(k.NFFShared, 0))
	if bad != "" {
		return c, fam, nil, fmt.Errorf("%s", bad)
	}
	if c.NKVHead <= 0 || c.NHead%c.NKVHead != 0 {
		return c, fam, nil, fmt.Errorf("config.json: %d attention heads are not a multiple of %d KV heads", c.NHead, c.NKVHead)
	}
	if rs, ok := j["rope_scaling"].(map[string]any); ok {
		t, _ := rs["rope_type"].(string)
		if t == "" {
			t, _ = rs["type"].(string)
		}
		if t != "default" {
			return c, fam, nil, fmt.Errorf("RoPE scaling %s is not supported", loader.Quote(t))
		}
	}
	if pr, ok := j["partial_rotary_factor"].(float64); ok && pr != 1 {
		return c, fam, nil, fmt.Errorf("partial rotary embeddings (factor %v) are not supported", pr)
	}
	c.RopeNeoX = fam.ropeNeoX
	c.TiedEmbeddings = flag(k.Tied, false)
	c.NormTopK = flag(k.NormTopK, fam.normTopKHF)
	c.QKNorm = fam.qkNorm
	if !fam.moe {
		c.NExpert = 0
	}
	// An MoE config may keep some blocks dense: those listed in mlp_only_layers and
	// those not on the decoder_sparse_step grid (Qwen).
	step := int(num(k.SparseStep, 1))
	var dense []int
	for _, key := range k.DenseLayers {
		if a, ok := j[key].([]any); ok {
			for _, v := range a {
				if f, ok := v.(float64); ok {
					dense = append(dense, int(f))
				}
			}
			break
		}
	}
	sparse := make([]bool, c.NLayer)
	for l := range sparse {
		sparse[l] = c.NExpert > 0 && !slices.Contains(dense, l) && (step <= 1 || (l+1)%step == 0)
	}
	return c, fam, sparse, nil
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
func (m *Model) bind(lm *loader.Model, fam *family, n naming, sparse []bool) error {
	c := &m.Config
	b := binder{lm}
	emb, ok := lm.Tensor(n.Embed)
	if !ok || len(emb.Shape) != 2 {
		return fmt.Errorf("missing tensor %s (expected shape [vocab %d])", n.Embed, c.NEmbd)
	}
	c.Vocab = emb.Shape[0]
	var err error
	if m.Embed, err = b.matrix(n.Embed, c.Vocab, c.NEmbd, true); err != nil {
		return err
	}
	if m.OutNorm, err = b.vector(n.OutNorm, c.NEmbd, true); err != nil {
		return err
	}
	if c.TiedEmbeddings {
		m.Output = m.Embed
	} else if m.Output, err = b.matrix(n.Output, c.Vocab, c.NEmbd, false); err != nil {
		return err
	} else if m.Output == nil {
		// GGUF omits output.weight for tied models; so do some HF checkpoints.
		m.Output, c.TiedEmbeddings = m.Embed, true
	}
	if c.NHead%c.NKVHead != 0 {
		return fmt.Errorf("%d attention heads are not a multiple of %d KV heads", c.NHead, c.NKVHead)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("head size %d is odd", c.HeadDim)
	}
	m.Layers = make([]Layer, c.NLayer)
	for l := range m.Layers {
		lb := &layerBinder{b: b, c: c, n: n, l: l}
		if err := lb.attention(&m.Layers[l]); err != nil {
			return err
		}
		if !sparse[l] {
			err = lb.denseFFN(&m.Layers[l])
		} else {
			err = lb.moe(&m.Layers[l], fam)
		}
		if err != nil {
			return err
		}
	}
	if c.CtxLen <= 0 {
		c.CtxLen = 2048
	}
	return nil
}

// layerBinder binds the tensors of layer l. Its matrix and vector methods record each
// error and go on, so that a group of tensors reads as a list; err then returns the
// first of them, as binding each tensor in turn would.
type layerBinder struct {
	b     binder
	c     *Config
	n     naming
	l     int
	steps []error
}

func (lb *layerBinder) name(t string) string { return fmt.Sprintf(t, lb.l) }

// matrix binds the required matrix named by template t.
func (lb *layerBinder) matrix(mm **Matrix, t string, rows, cols int) {
	var e error
	*mm, e = lb.b.matrix(lb.name(t), rows, cols, true)
	lb.steps = append(lb.steps, e)
}

// vector binds the vector named by template t.
func (lb *layerBinder) vector(v *[]float32, t string, n int, required bool) {
	var e error
	*v, e = lb.b.vector(lb.name(t), n, required)
	lb.steps = append(lb.steps, e)
}

func (lb *layerBinder) err() error { return firstErr(lb.steps) }

// attention binds the norms, projections, biases and q/k norms of the attention block,
// and the FFN norm.
func (lb *layerBinder) attention(L *Layer) error {
	c, n := lb.c, lb.n
	qDim, kvDim := c.NHead*c.HeadDim, c.NKVHead*c.HeadDim
	lb.vector(&L.AttnNorm, n.AttnNorm, c.NEmbd, true)
	lb.matrix(&L.Wq, n.Q, qDim, c.NEmbd)
	lb.matrix(&L.Wk, n.K, kvDim, c.NEmbd)
	lb.matrix(&L.Wv, n.V, kvDim, c.NEmbd)
	lb.matrix(&L.Wo, n.O, c.NEmbd, qDim)
	lb.vector(&L.Bq, n.QBias, qDim, false)
	lb.vector(&L.Bk, n.KBias, kvDim, false)
	lb.vector(&L.Bv, n.VBias, kvDim, false)
	lb.vector(&L.Bo, n.OBias, c.NEmbd, false)
	switch c.QKNorm {
	case "head":
		lb.vector(&L.QNorm, n.QNorm, c.HeadDim, true)
		lb.vector(&L.KNorm, n.KNorm, c.HeadDim, true)
	case "full":
		lb.vector(&L.QNorm, n.QNorm, qDim, true)
		lb.vector(&L.KNorm, n.KNorm, kvDim, true)
	}
	lb.vector(&L.FFNNorm, n.FFNNorm, c.NEmbd, true)
	return lb.err()
}

// denseFFN binds a dense layer's gate, up and down projections, taking the FFN width
// from the gate when the metadata lacks it.
func (lb *layerBinder) denseFFN(L *Layer) error {
	c, n := lb.c, lb.n
	if c.NFF == 0 {
		if t, ok := lb.b.lm.Tensor(lb.name(n.Gate)); ok && len(t.Shape) == 2 {
			c.NFF = t.Shape[0]
		}
	}
	lb.matrix(&L.Gate, n.Gate, c.NFF, c.NEmbd)
	lb.matrix(&L.Up, n.Up, c.NFF, c.NEmbd)
	lb.matrix(&L.Down, n.Down, c.NEmbd, c.NFF)
	return lb.err()
}

// moe binds a MoE layer's router, its experts (stacked, per expert, or MoLE's latent
// factors) and its shared expert when the family or the file has one.
func (lb *layerBinder) moe(L *Layer, fam *family) error {
	c, n, l, b := lb.c, lb.n, lb.l, lb.b
	if c.NExpertUsed <= 0 || c.NExpertUsed > c.NExpert || c.NExpertUsed >= maxFFNParts {
		return fmt.Errorf("%d experts used per token of %d", c.NExpertUsed, c.NExpert)
	}
	lb.matrix(&L.Router, n.Router, c.NExpert, c.NEmbd)
	if err := lb.err(); err != nil {
		return err
	}
	// The expert width is taken from the weights when metadata lacks it (GGUF
	// Mixtral files only carry feed_forward_length).
	if c.NFFExpert == 0 {
		c.NFFExpert = expertWidth(b.lm, n, l)
	}
	var err error
	if b.lm.GGUF != nil {
		if L.Latent, err = b.latent(l, c); err != nil {
			return err
		}
	}
	if L.Latent != nil {
		// MoLE: the experts are latent factors (latent.go).
	} else if L.ExpGate, err = b.experts(n.StackGate, n.ExpGate, l, c.NExpert, c.NFFExpert, c.NEmbd); err != nil {
		return err
	} else if L.ExpUp, err = b.experts(n.StackUp, n.ExpUp, l, c.NExpert, c.NFFExpert, c.NEmbd); err != nil {
		return err
	} else if L.ExpDown, err = b.experts(n.StackDown, n.ExpDown, l, c.NExpert, c.NEmbd, c.NFFExpert); err != nil {
		return err
	}
	// A family with a shared expert may leave its width to the weights; any file
	// that declares one gets it bound, with the sigmoid gate the blocks apply.
	if fam.sharedExpert != "" || c.NFFShared > 0 {
		if c.NFFShared == 0 {
			if t, ok := b.lm.Tensor(lb.name(n.ShGate)); ok && len(t.Shape) == 2 {
				c.NFFShared = t.Shape[0]
			}
		}
		if c.NFFShared > 0 {
			lb.matrix(&L.ShGate, n.ShGate, c.NFFShared, c.NEmbd)
			lb.matrix(&L.ShUp, n.ShUp, c.NFFShared, c.NEmbd)
			lb.matrix(&L.ShDown, n.ShDown, c.NEmbd, c.NFFShared)
			lb.matrix(&L.ShGateInp, n.ShGateInp, 1, c.NEmbd)
		}
	}
	return lb.err()
}

func expertWidth(lm *loader.Model, n naming, l int) int {
	if t, ok := lm.Tensor(fmt.Sprintf(n.StackGate, l)); ok && len(t.Shape) == 3 {
		return t.Shape[1]
	}
	if t, ok := lm.Tensor(fmt.Sprintf(n.ExpGate, l, 0)); ok && len(t.Shape) == 2 {
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
