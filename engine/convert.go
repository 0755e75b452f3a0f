package engine

import (
	"fmt"
	"strings"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
)

// ggufArch is the llama.cpp architecture name each family is written as. Mixtral is
// arch "llama" with expert metadata, as llama.cpp's converter writes it.
var ggufArch = map[string]string{
	"llama": "llama", "mixtral": "llama", "qwen2moe": "qwen2moe", "qwen3moe": "qwen3moe", "olmoe": "olmoe",
}

// llama.cpp's general.file_type values for the weight types mole writes.
var ggufFileType = map[loader.DType]uint32{loader.F32: 0, loader.F16: 1, loader.Q4_0: 2, loader.Q8_0: 7, loader.BF16: 32}

// ggufQuantVersion is ggml's GGML_QNT_VERSION, written as general.quantization_version.
const ggufQuantVersion = 2

// WriteGGUF writes m as a GGUF file llama.cpp can run: llama.cpp's tensor names and
// metadata keys, experts stacked as [n_expert, rows, cols], weight matrices in dtype
// (F32, F16, BF16, Q8_0 or Q4_0; a matrix whose rows do not split into 32-element
// blocks falls back to F16, as llama-quantize does) and vectors and routers in F32.
//
// For arch "llama" (Llama, Mixtral) the q/k rows of a Hugging Face model are permuted
// from rotate-half pairs (i, i+d/2) into interleaved pairs (2i, 2i+1), exactly as
// llama.cpp's convert_hf_to_gguf.py does, because llama.cpp applies interleaved RoPE to
// that arch. Qwen and OLMoE GGUFs keep the Hugging Face order (llama.cpp uses NeoX RoPE
// for them).
//
// Tokenizer metadata is copied when m was loaded from a GGUF file; a Hugging Face
// tokenizer is converted as llama.cpp's converter does (see setGGUFVocab).
func WriteGGUF(m *Model, path string, dtype loader.DType) error {
	c := &m.Config
	arch, ok := ggufArch[c.Family]
	if !ok {
		return fmt.Errorf("write GGUF: family %q has no GGUF architecture", c.Family)
	}
	ft, ok := ggufFileType[dtype]
	if !ok {
		return fmt.Errorf("write GGUF: cannot write weights as %v (F32, F16, BF16, Q8_0, Q4_0)", dtype)
	}
	w := loader.NewGGUFWriter()
	w.Set("general.architecture", loader.StringValue(arch))
	w.Set("general.file_type", loader.Uint32Value(ft))
	u := func(key string, v int) { w.Set(arch+"."+key, loader.Uint32Value(uint32(v))) }
	u("block_count", c.NLayer)
	u("context_length", c.CtxLen)
	u("embedding_length", c.NEmbd)
	ff := c.NFF
	if c.Family == "mixtral" || ff == 0 {
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
	// llama.cpp's converter always writes the version of ggml's quantized block layouts
	// (2 since the 2023 Q4/Q8 change); readers use it to tell old Q4_0/Q8_0 files apart.
	w.Set("general.quantization_version", loader.Uint32Value(ggufQuantVersion))
	switch {
	case m.src != nil && m.src.GGUF != nil:
		for _, kv := range m.src.GGUF.KV {
			if strings.HasPrefix(kv.Key, "tokenizer.") {
				w.Set(kv.Key, kv.Value)
			}
		}
	case m.Tok != nil:
		var cfgJSON []byte
		if m.src != nil && m.src.HF != nil {
			cfgJSON = m.src.HF.TokenizerConfigJSON
		}
		if err := setGGUFVocab(w, m.Tok.Vocab(), c.Vocab, cfgJSON); err != nil {
			return fmt.Errorf("write GGUF %s: %w", path, err)
		}
	}

	permute := arch == "llama" && c.RopeNeoX
	var err error
	add := func(name string, dt loader.DType, shape []int, data []byte) {
		if err == nil {
			err = w.AddTensor(name, dt, shape, data)
		}
	}
	vec := func(name string, v []float32) {
		if v != nil {
			add(name, loader.F32, []int{len(v)}, kernels.QuantizeF32(nil, v))
		}
	}
	// mat encodes matrices (one, or several stacked) in dtype; rowPerm, when set,
	// gives the source row of each output row.
	mat := func(name string, dt loader.DType, rowPerm func(int) int, ms ...*Matrix) {
		if ms[0] == nil || err != nil {
			return
		}
		rows, cols := ms[0].Rows, ms[0].Cols
		if (dt == loader.Q8_0 || dt == loader.Q4_0) && cols%kernels.QK != 0 {
			dt = loader.F16
		}
		row := make([]float32, cols)
		var data []byte
		for _, mm := range ms {
			for r := 0; r < rows; r++ {
				src := r
				if rowPerm != nil {
					src = rowPerm(r)
				}
				mm.RowF32(src, row)
				data = encodeRow(data, dt, row)
			}
		}
		shape := []int{rows, cols}
		if len(ms) > 1 || strings.HasSuffix(name, "_exps.weight") {
			shape = []int{len(ms), rows, cols}
		}
		add(name, dt, shape, data)
	}
	var qPerm, kPerm func(int) int
	if permute {
		qPerm, kPerm = interleavePerm(c.HeadDim), interleavePerm(c.HeadDim)
	}
	permVec := func(v []float32, perm func(int) int) []float32 {
		if v == nil || perm == nil {
			return v
		}
		out := make([]float32, len(v))
		for i := range out {
			out[i] = v[perm(i)]
		}
		return out
	}

	mat("token_embd.weight", dtype, nil, m.Embed)
	vec("output_norm.weight", m.OutNorm)
	if m.Output != m.Embed {
		mat("output.weight", dtype, nil, m.Output)
	}
	for l := range m.Layers {
		L := &m.Layers[l]
		n := func(s string) string { return fmt.Sprintf("blk.%d.%s", l, s) }
		vec(n("attn_norm.weight"), L.AttnNorm)
		mat(n("attn_q.weight"), dtype, qPerm, L.Wq)
		mat(n("attn_k.weight"), dtype, kPerm, L.Wk)
		mat(n("attn_v.weight"), dtype, nil, L.Wv)
		mat(n("attn_output.weight"), dtype, nil, L.Wo)
		vec(n("attn_q.bias"), permVec(L.Bq, qPerm))
		vec(n("attn_k.bias"), permVec(L.Bk, kPerm))
		vec(n("attn_v.bias"), L.Bv)
		vec(n("attn_output.bias"), L.Bo)
		vec(n("attn_q_norm.weight"), L.QNorm)
		vec(n("attn_k_norm.weight"), L.KNorm)
		vec(n("ffn_norm.weight"), L.FFNNorm)
		if L.Router == nil {
			mat(n("ffn_gate.weight"), dtype, nil, L.Gate)
			mat(n("ffn_up.weight"), dtype, nil, L.Up)
			mat(n("ffn_down.weight"), dtype, nil, L.Down)
			continue
		}
		mat(n("ffn_gate_inp.weight"), loader.F32, nil, L.Router)
		mat(n("ffn_gate_exps.weight"), dtype, nil, L.ExpGate...)
		mat(n("ffn_up_exps.weight"), dtype, nil, L.ExpUp...)
		mat(n("ffn_down_exps.weight"), dtype, nil, L.ExpDown...)
		if L.ShGate != nil {
			mat(n("ffn_gate_shexp.weight"), dtype, nil, L.ShGate)
			mat(n("ffn_up_shexp.weight"), dtype, nil, L.ShUp)
			mat(n("ffn_down_shexp.weight"), dtype, nil, L.ShDown)
			// llama.cpp stores the shared expert's gate as a vector [n_embd].
			vec(n("ffn_gate_inp_shexp.weight"), dequantAll(L.ShGateInp))
		}
	}
	if err != nil {
		return fmt.Errorf("write GGUF %s: %w", path, err)
	}
	return w.WriteFile(path)
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

func encodeRow(dst []byte, dt loader.DType, row []float32) []byte {
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
	panic("encodeRow: unsupported type " + dt.String())
}
