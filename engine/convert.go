package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
)

// llama.cpp's general.file_type values for the weight types mole writes.
var ggufFileType = map[loader.DType]uint32{loader.F32: 0, loader.F16: 1, loader.Q4_0: 2, loader.Q8_0: 7, loader.BF16: 32}

// ggufQuantVersion is ggml's GGML_QNT_VERSION, written as general.quantization_version.
const ggufQuantVersion = 2

// WriteGGUF writes m as a GGUF file llama.cpp can run: llama.cpp's tensor names and
// metadata keys, experts stacked as [n_expert, rows, cols], weight matrices in dtype
// (F32, F16, BF16, Q8_0 or Q4_0; a matrix whose rows do not split into 32-element
// blocks falls back to F16, as llama-quantize does) and vectors and routers in F32.
//
// For families whose ggufPermuteQK is set (arch "llama": Llama, Mixtral) the q/k rows
// of a Hugging Face model are permuted from rotate-half pairs (i, i+d/2) into
// interleaved pairs (2i, 2i+1), exactly as llama.cpp's convert_hf_to_gguf.py does,
// because llama.cpp applies interleaved RoPE to that arch. Qwen and OLMoE GGUFs keep the
// Hugging Face order (llama.cpp uses NeoX RoPE for them).
//
// Tokenizer metadata is copied when m was loaded from a GGUF file; a Hugging Face
// tokenizer is converted as llama.cpp's converter does (see setGGUFVocab).
func WriteGGUF(m *Model, path string, dtype loader.DType) error {
	return WriteGGUFWith(m, path, GGUFOptions{DType: dtype})
}

// EncodedTensor is one tensor a GGUFOptions.Encode returns for one matrix: the matrix
// itself (Suffix "") or a companion (".scale", ".group", an MWQ plane), with the shape
// of one matrix; for stacked experts the writer concatenates the experts' tensors and
// prepends the expert dimension.
type EncodedTensor struct {
	Suffix string
	DType  loader.DType
	Shape  []int
	Data   []byte
}

// GGUFOptions configures WriteGGUFWith.
type GGUFOptions struct {
	// DType is the type of the weight matrices Encode leaves to the writer (and of all
	// of them when Encode is nil): F32, F16, BF16, Q8_0 or Q4_0.
	DType loader.DType
	// Encode, when set, encodes one weight matrix (w row-major [rows][cols], after the
	// writer's q/k row permutation; expert is the index within a stacked tensor, else
	// -1). It returns nil to leave the matrix to DType. Routers are never passed to it.
	Encode func(name string, w []float32, rows, cols, expert int) ([]EncodedTensor, error)
	// Router is the routers' type: F32 (the default), F16 or Q8_0.
	Router loader.DType
	// Meta is added to the metadata (mole.quant.* keys).
	Meta map[string]loader.Value
	// Progress, when set, is called after each weight matrix with the weights done and
	// the total.
	Progress func(done, total int64)
}

// WriteGGUFWith is WriteGGUF with per-matrix encoding (mole quantize). general.file_type
// is written only for files whose matrices are all in one llama.cpp type.
func WriteGGUFWith(m *Model, path string, o GGUFOptions) error {
	return WriteGGUFContext(context.Background(), m, path, o)
}

// WriteGGUFContext is WriteGGUFWith stopped by ctx: once ctx is cancelled the encoding
// stops within 256 rows (or one expert given to Encode), the temporary file is removed
// and path is left as it was.
func WriteGGUFContext(ctx context.Context, m *Model, path string, o GGUFOptions) error {
	out, err := loader.CreateAtomic(ctx, path)
	if err != nil {
		return err
	}
	defer out.Abort()
	if err := WriteGGUFTo(ctx, m, out, o); err != nil {
		return err
	}
	return out.Commit()
}

// WriteGGUFTo encodes m into out, which the caller commits: a command creates out before
// its long work (loader.CreateAtomic), so that an unwritable destination fails first.
func WriteGGUFTo(ctx context.Context, m *Model, out *loader.AtomicFile, o GGUFOptions) error {
	path := out.Path()
	fam, ft, router, err := ggufTarget(&m.Config, o)
	if err != nil {
		return err
	}
	w := loader.NewGGUFWriter()
	if err := setGGUFMetadata(w, m, fam, ft, o); err != nil {
		return fmt.Errorf("write GGUF %s: %w", path, err)
	}
	tw := &ggufTensorWriter{ctx: ctx, w: w, o: o}
	if o.Progress != nil {
		tw.total = m.weightCount()
	}
	tw.writeModel(m, fam.ggufPermuteQK && m.Config.RopeNeoX, router)
	if tw.err != nil {
		return fmt.Errorf("write GGUF %s: %w", path, tw.err)
	}
	if err := w.Encode(out); err != nil {
		return fmt.Errorf("write GGUF %s: %w", path, err)
	}
	return nil
}

// ggufTarget checks, before anything is encoded, that m's family and the requested
// types can be written, and returns the family, the general.file_type of o.DType and
// the routers' type (F32 when o leaves it unset).
func ggufTarget(c *Config, o GGUFOptions) (*family, uint32, loader.DType, error) {
	fam := familyByName(c.Family)
	if fam == nil {
		return nil, 0, 0, fmt.Errorf("write GGUF: family %q has no GGUF architecture", c.Family)
	}
	// The writer names tensors as llama.cpp does (defaultGGUFNames), and so do Quantize
	// and the calibration statistics; a family whose GGUF names differ is read but not
	// yet written.
	if fam.ggufNames != defaultGGUFNames {
		return nil, 0, 0, fmt.Errorf("write GGUF: family %s has its own GGUF tensor names, which the writer does not support", fam.name)
	}
	ft, ok := ggufFileType[o.DType]
	if !ok {
		return nil, 0, 0, fmt.Errorf("write GGUF: cannot write weights as %v (F32, F16, BF16, Q8_0, Q4_0)", o.DType)
	}
	router := o.Router
	if router == 0 {
		router = loader.F32
	}
	if _, ok := ggufFileType[router]; !ok {
		return nil, 0, 0, fmt.Errorf("write GGUF: cannot write routers as %v", router)
	}
	return fam, ft, router, nil
}

// setGGUFMetadata sets the metadata keys, in the order they have always been written
// (the writer keeps insertion order, and the same model must give the same bytes): the
// general keys and o.Meta, the hyperparameters, then the tokenizer.
func setGGUFMetadata(w *loader.GGUFWriter, m *Model, fam *family, ft uint32, o GGUFOptions) error {
	c := &m.Config
	w.Set("general.architecture", loader.StringValue(fam.gguf))
	if o.Encode == nil {
		w.Set("general.file_type", loader.Uint32Value(ft))
	}
	// Sorted, so that the same model quantized twice gives the same bytes (map order
	// is random).
	for _, k := range slices.Sorted(maps.Keys(o.Meta)) {
		w.Set(k, o.Meta[k])
	}
	setGGUFHyperparams(w, c, fam)
	// llama.cpp's converter always writes the version of ggml's quantized block layouts
	// (2 since the 2023 Q4/Q8 change); readers use it to tell old Q4_0/Q8_0 files apart.
	w.Set("general.quantization_version", loader.Uint32Value(ggufQuantVersion))
	switch {
	case m.src != nil && m.src.GGUF != nil:
		for _, kv := range m.src.GGUF.KV {
			// A MoLE file's description (mole.mole.*) stays with its latent tensors.
			if strings.HasPrefix(kv.Key, "tokenizer.") || strings.HasPrefix(kv.Key, "mole.mole.") {
				w.Set(kv.Key, kv.Value)
			}
		}
	case m.Tok != nil:
		var cfgJSON []byte
		if m.src != nil && m.src.HF != nil {
			cfgJSON = m.src.HF.TokenizerConfigJSON
		}
		return setGGUFVocab(w, m.Tok.Vocab(), c.Vocab, cfgJSON)
	}
	return nil
}

// setGGUFHyperparams sets the <arch>.* keys llama.cpp reads the model's shape from.
func setGGUFHyperparams(w *loader.GGUFWriter, c *Config, fam *family) {
	arch := fam.gguf
	u := func(key string, v int) { w.Set(arch+"."+key, loader.Uint32Value(uint32(v))) }
	u("block_count", c.NLayer)
	u("context_length", c.CtxLen)
	u("embedding_length", c.NEmbd)
	ff := c.NFF
	if fam.ggufFFIsExpertWidth || ff == 0 {
		ff = c.NFFExpert // llama.cpp reads the expert width from here for arch llama
	}
	u("feed_forward_length", ff)
	u("attention.head_count", c.NHead)
	u("attention.head_count_kv", c.NKVHead)
	u("attention.key_length", c.HeadDim)
	u("attention.value_length", c.HeadDim)
	u("rope.dimension_count", c.HeadDim)
	u("vocab_size", c.Vocab)
	w.Set(arch+".rope.freq_base", loader.Float32Value(float32(c.RopeTheta)))
	w.Set(arch+".attention.layer_norm_rms_epsilon", loader.Float32Value(c.NormEps))
	if c.NExpert > 0 {
		u("expert_count", c.NExpert)
		u("expert_used_count", c.NExpertUsed)
		u("expert_feed_forward_length", c.NFFExpert)
		if c.NFFShared > 0 {
			u("expert_shared_feed_forward_length", c.NFFShared)
		}
		w.Set(arch+".expert_weights_norm", loader.BoolValue(c.NormTopK))
	}
}

// ggufTensorWriter adds m's tensors to w. The first error sticks in err and every later
// tensor is skipped, so that the long list of tensors reads without a check per line.
type ggufTensorWriter struct {
	ctx         context.Context
	w           *loader.GGUFWriter
	o           GGUFOptions
	err         error
	done, total int64 // weights encoded and in all (Progress)
}

func (tw *ggufTensorWriter) add(name string, dt loader.DType, shape []int, data []byte) {
	if tw.err == nil {
		tw.err = tw.w.AddTensor(name, dt, shape, data)
	}
}

// vec adds v (when present) as an F32 vector.
func (tw *ggufTensorWriter) vec(name string, v []float32) {
	if v != nil {
		tw.add(name, loader.F32, []int{len(v)}, kernels.QuantizeF32(nil, v))
	}
}

// mat encodes matrices (one, or several stacked) in dt; rowPerm, when set, gives the
// source row of each output row.
func (tw *ggufTensorWriter) mat(name string, dt loader.DType, rowPerm func(int) int, ms ...*Matrix) {
	if ms[0] == nil || tw.err != nil {
		return
	}
	ctx, o := tw.ctx, tw.o
	if tw.err = ctx.Err(); tw.err != nil {
		return
	}
	rows, cols := ms[0].Rows, ms[0].Cols
	if o.Progress != nil {
		defer func() {
			tw.done += int64(len(ms) * rows * cols)
			o.Progress(tw.done, tw.total)
		}()
	}
	if o.Encode != nil && dt == o.DType && !strings.HasSuffix(name, "ffn_gate_inp.weight") {
		var ok bool
		if ok, tw.err = encodeMatrices(ctx, tw.w, name, rowPerm, o.Encode, ms); ok || tw.err != nil {
			return
		}
	}
	if (dt == loader.Q8_0 || dt == loader.Q4_0) && cols%kernels.QK != 0 {
		dt = loader.F16
	}
	row := make([]float32, cols)
	var data []byte
	for _, mm := range ms {
		for r := 0; r < rows; r++ {
			// Every 256 rows, so that ^C stops an embedding of 32,000 rows or a
			// stack of experts promptly.
			if r%256 == 0 {
				if tw.err = ctx.Err(); tw.err != nil {
					return
				}
			}
			src := r
			if rowPerm != nil {
				src = rowPerm(r)
			}
			mm.RowF32(src, row)
			data = EncodeRow(data, dt, row)
		}
	}
	shape := []int{rows, cols}
	if len(ms) > 1 || strings.HasSuffix(name, "_exps.weight") {
		shape = []int{len(ms), rows, cols}
	}
	tw.add(name, dt, shape, data)
}

// writeModel adds m's tensors in llama.cpp's order; permute applies llama.cpp's q/k row
// permutation (see WriteGGUF), router is the routers' type.
func (tw *ggufTensorWriter) writeModel(m *Model, permute bool, router loader.DType) {
	dtype := tw.o.DType
	var qPerm, kPerm func(int) int
	if permute {
		qPerm, kPerm = interleavePerm(m.Config.HeadDim), interleavePerm(m.Config.HeadDim)
	}
	tw.mat("token_embd.weight", dtype, nil, m.Embed)
	tw.vec("output_norm.weight", m.OutNorm)
	if m.Output != m.Embed {
		tw.mat("output.weight", dtype, nil, m.Output)
	}
	for l := range m.Layers {
		tw.writeLayer(l, &m.Layers[l], qPerm, kPerm, router)
	}
}

// writeLayer adds layer l's tensors: attention, then the dense FFN or the router, the
// experts (stacked, or MoLE's latent tensors) and the shared expert.
func (tw *ggufTensorWriter) writeLayer(l int, L *Layer, qPerm, kPerm func(int) int, router loader.DType) {
	dtype := tw.o.DType
	n := func(s string) string { return fmt.Sprintf("blk.%d.%s", l, s) }
	tw.vec(n("attn_norm.weight"), L.AttnNorm)
	tw.mat(n("attn_q.weight"), dtype, qPerm, L.Wq)
	tw.mat(n("attn_k.weight"), dtype, kPerm, L.Wk)
	tw.mat(n("attn_v.weight"), dtype, nil, L.Wv)
	tw.mat(n("attn_output.weight"), dtype, nil, L.Wo)
	tw.vec(n("attn_q.bias"), permuteVec(L.Bq, qPerm))
	tw.vec(n("attn_k.bias"), permuteVec(L.Bk, kPerm))
	tw.vec(n("attn_v.bias"), L.Bv)
	tw.vec(n("attn_output.bias"), L.Bo)
	tw.vec(n("attn_q_norm.weight"), L.QNorm)
	tw.vec(n("attn_k_norm.weight"), L.KNorm)
	tw.vec(n("ffn_norm.weight"), L.FFNNorm)
	if L.Router == nil {
		tw.mat(n("ffn_gate.weight"), dtype, nil, L.Gate)
		tw.mat(n("ffn_up.weight"), dtype, nil, L.Up)
		tw.mat(n("ffn_down.weight"), dtype, nil, L.Down)
		return
	}
	tw.mat(n("ffn_gate_inp.weight"), router, nil, L.Router)
	if L.Latent != nil { // MoLE (latent_convert.go)
		for _, t := range L.Latent.latentTensors(l) {
			tw.mat(t.name, dtype, nil, t.ms...)
		}
	} else {
		tw.mat(n("ffn_gate_exps.weight"), dtype, nil, L.ExpGate...)
		tw.mat(n("ffn_up_exps.weight"), dtype, nil, L.ExpUp...)
		tw.mat(n("ffn_down_exps.weight"), dtype, nil, L.ExpDown...)
	}
	if L.ShGate != nil {
		tw.mat(n("ffn_gate_shexp.weight"), dtype, nil, L.ShGate)
		tw.mat(n("ffn_up_shexp.weight"), dtype, nil, L.ShUp)
		tw.mat(n("ffn_down_shexp.weight"), dtype, nil, L.ShDown)
		// llama.cpp stores the shared expert's gate as a vector [n_embd].
		tw.vec(n("ffn_gate_inp_shexp.weight"), dequantAll(L.ShGateInp))
	}
}

// permuteVec applies a row permutation to a bias (nil perm: v itself).
func permuteVec(v []float32, perm func(int) int) []float32 {
	if v == nil || perm == nil {
		return v
	}
	out := make([]float32, len(v))
	for i := range out {
		out[i] = v[perm(i)]
	}
	return out
}

// interleavePerm maps an output row to its source row for llama.cpp's q/k permutation
// (reshape(heads, 2, d/2, cols).swapaxes(1, 2)): within each head, output row 2j+s is
// source row s*d/2 + j, so rotate-half pair (j, j+d/2) becomes interleaved pair
// (2j, 2j+1). Heads are whole multiples of d, so the head count does not matter.
func interleavePerm(d int) func(int) int {
	return func(r int) int {
		h, i := r/d, r%d
		j, s := i/2, i%2
		return h*d + s*d/2 + j
	}
}

// EncodeRow appends row encoded as dt (F32, F16, BF16, Q8_0 or Q4_0, llama.cpp's block
// layouts) to dst; writers of GGUF files share it.
func EncodeRow(dst []byte, dt loader.DType, row []float32) []byte {
	switch dt {
	case loader.F32:
		return kernels.QuantizeF32(dst, row)
	case loader.F16:
		return kernels.QuantizeF16(dst, row)
	case loader.BF16:
		return kernels.QuantizeBF16(dst, row)
	case loader.Q8_0:
		return kernels.QuantizeQ8_0(dst, row)
	case loader.Q4_0:
		return kernels.QuantizeQ4_0(dst, row)
	}
	panic("EncodeRow: unsupported type " + dt.String())
}

// encodeMatrices writes ms (one matrix, or the experts of a stacked tensor) through
// encode; it reports false when encode leaves them to the writer's default type.
func encodeMatrices(ctx context.Context, w *loader.GGUFWriter, name string, rowPerm func(int) int,
	encode func(string, []float32, int, int, int) ([]EncodedTensor, error), ms []*Matrix) (bool, error) {
	rows, cols := ms[0].Rows, ms[0].Cols
	stacked := len(ms) > 1 || strings.HasSuffix(name, "_exps.weight")
	var parts []EncodedTensor
	buf := make([]float32, rows*cols)
	for e, mm := range ms {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		for r := 0; r < rows; r++ {
			src := r
			if rowPerm != nil {
				src = rowPerm(r)
			}
			mm.RowF32(src, buf[r*cols:(r+1)*cols])
		}
		ex := -1
		if stacked {
			ex = e
		}
		ts, err := encode(name, buf, rows, cols, ex)
		if err != nil {
			return false, fmt.Errorf("%s: %w", name, err)
		}
		if ts == nil {
			if e > 0 {
				return false, fmt.Errorf("%s: expert %d left unencoded after expert 0 was encoded", name, e)
			}
			return false, nil
		}
		if e == 0 {
			parts = ts
			continue
		}
		if len(ts) != len(parts) {
			return false, fmt.Errorf("%s: expert %d encodes to %d tensors, expert 0 to %d", name, e, len(ts), len(parts))
		}
		for i := range parts {
			parts[i].Data = append(parts[i].Data, ts[i].Data...)
		}
	}
	for _, p := range parts {
		shape := p.Shape
		if stacked {
			shape = append([]int{len(ms)}, shape...)
		}
		if err := w.AddTensor(name+p.Suffix, p.DType, shape, p.Data); err != nil {
			return false, err
		}
	}
	return true, nil
}

// weightCount is the number of elements of m's weight matrices (progress totals).
func (m *Model) weightCount() int64 {
	var n int64
	add := func(ms ...*Matrix) {
		for _, mm := range ms {
			if mm != nil {
				n += int64(mm.Rows) * int64(mm.Cols)
			}
		}
	}
	add(m.Embed)
	if m.Output != m.Embed {
		add(m.Output)
	}
	for l := range m.Layers {
		L := &m.Layers[l]
		add(L.Wq, L.Wk, L.Wv, L.Wo, L.Gate, L.Up, L.Down, L.Router, L.ShGate, L.ShUp, L.ShDown)
		add(L.ExpGate...)
		add(L.ExpUp...)
		add(L.ExpDown...)
		if L.Latent != nil {
			n += L.Latent.Params()
		}
	}
	return n
}
