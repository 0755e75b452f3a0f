package engine

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// family is everything mole knows about one model family: how to recognise its files,
// where its configuration and tensors are, which optional parts its transformer blocks
// have and how they compute, and how to prompt it. Each family is one file of data,
// family_<name>.go, listed in families; Load, the GGUF writer, Quantize, ChatFormatFor
// and bench's gen-model read it instead of switching on family names
// (docs/architecture.md, "Adding a model family").
type family struct {
	name string // Config.Family; an entry of Families

	// hfArchs are the config.json architectures class names of the family, and
	// hfModelTypes its model_type values (used when architectures is absent).
	hfArchs, hfModelTypes []string
	// gguf is the general.architecture llama.cpp reads and writes the family as. Several
	// families may share one (llama.cpp writes Mixtral as "llama" with expert
	// metadata); a GGUF file then gets the one whose moe matches its expert count
	// (ggufConfig).
	gguf string

	// hfKeys and ggufKeys say which metadata keys give each Config field; fields left
	// zero take those of defaultHFKeys and defaultGGUFKeys.
	hfKeys, ggufKeys configKeys
	// hfNames and ggufNames are the tensor names; fields left empty take those of
	// defaultHFNames and defaultGGUFNames (llama.cpp's, which every family shares).
	hfNames, ggufNames naming

	// moe: the family routes tokens to experts. A dense family (Llama) ignores expert
	// metadata and binds every block's dense FFN.
	moe bool
	// qkvBias: the family's checkpoints carry q/k/v projection biases (Qwen2). Load
	// binds biases wherever the file has them; this says what gen-model writes.
	qkvBias bool
	// qkNorm is Config.QKNorm: "" none, "head" RMSNorm over each head of q and k
	// (Qwen3-MoE), "full" RMSNorm over the whole q and k projections (OLMoE).
	qkNorm string
	// sharedExpert is the always-on expert next to the routed ones: "" none (Load still
	// binds one a GGUF file declares), "sigmoid" scaled by sigmoid(ShGateInp·x)
	// (Qwen2-MoE).
	sharedExpert string
	// routing is how router logits become expert weights: "softmax" (softmax over all
	// experts, then the top k; moe.Router) is the only one the blocks implement.
	routing string
	// normTopK is Config.NormTopK when the metadata has no key for it, per format: what
	// the family's Hugging Face modelling code and llama.cpp do by default.
	normTopKHF, normTopKGGUF bool
	// ropeNeoX: the family's Hugging Face checkpoints pair RoPE dimensions (i, i+d/2)
	// (rotate_half) rather than (2i, 2i+1).
	ropeNeoX bool
	// ggufPermuteQK: llama.cpp's converter permutes q/k rows of this GGUF arch from
	// rotate-half into interleaved pairs (and llama.cpp applies interleaved RoPE to it),
	// so its GGUF files run interleaved and WriteGGUF permutes Hugging Face rows
	// (interleavePerm).
	ggufPermuteQK bool
	// ggufFFIsExpertWidth: llama.cpp reads this family's expert width from
	// <arch>.feed_forward_length (Mixtral as arch "llama"), so the writer puts it there.
	ggufFFIsExpertWidth bool

	// chat is the chat layout when the model has no chat template (ChatFormatFor);
	// chatInst replaces it when the vocabulary has [INST] as a token (Mistral-instruct
	// tokenizers on llama-arch models). chatAliases are other names ChatFormatFor
	// accepts for the family: its dense relatives, which mole does not load.
	chat        ChatFormat
	chatInst    ChatFormat
	chatAliases []string

	// genRopeTheta and genNormEps are the family's usual RoPE base and RMSNorm epsilon,
	// which bench's gen-model writes into random models of its shape.
	genRopeTheta float64
	genNormEps   float32
}

// families is the table of every family mole runs, in the order Families lists them.
var families = []*family{&llamaFamily, &mixtralFamily, &qwen2moeFamily, &qwen3moeFamily, &olmoeFamily}

// Families lists the model families Load accepts.
var Families = familyNames()

func familyNames() []string {
	var out []string
	for _, f := range families {
		out = append(out, f.name)
	}
	return out
}

func init() {
	for _, f := range families {
		f.hfKeys = inherit(f.hfKeys, defaultHFKeys)
		f.ggufKeys = inherit(f.ggufKeys, defaultGGUFKeys)
		f.hfNames = inherit(f.hfNames, defaultHFNames)
		f.ggufNames = inherit(f.ggufNames, defaultGGUFNames)
	}
}

// inherit returns over with each zero field replaced by base's (T a struct).
func inherit[T any](over, base T) T {
	o, b := reflect.ValueOf(&over).Elem(), reflect.ValueOf(base)
	for i := range o.NumField() {
		if o.Field(i).IsZero() {
			o.Field(i).Set(b.Field(i))
		}
	}
	return over
}

// familyByName returns the family called name (Config.Family), or nil.
func familyByName(name string) *family {
	for _, f := range families {
		if f.name == name {
			return f
		}
	}
	return nil
}

// familyForHF returns the family of a config.json architectures class name or
// model_type value, or nil.
func familyForHF(arch string) *family {
	for _, f := range families {
		if slices.Contains(f.hfArchs, arch) || slices.Contains(f.hfModelTypes, arch) {
			return f
		}
	}
	return nil
}

// familyForChat returns the family ChatFormatFor falls back on: by name or alias,
// ignoring case; nil for none.
func familyForChat(name string) *family {
	name = strings.ToLower(name)
	for _, f := range families {
		if f.name == name || slices.Contains(f.chatAliases, name) {
			return f
		}
	}
	return nil
}

// check reports what is wrong with a family's data: values the blocks do not implement
// and fields that must be set. The family test runs it over the table.
func (f *family) check() error {
	switch {
	case f.name == "" || f.gguf == "":
		return fmt.Errorf("family %q: name and gguf must be set", f.name)
	case len(f.hfArchs) == 0:
		return fmt.Errorf("family %s: no Hugging Face architectures", f.name)
	case f.qkNorm != "" && f.qkNorm != "head" && f.qkNorm != "full":
		return fmt.Errorf("family %s: qkNorm %q (want \"\", head or full)", f.name, f.qkNorm)
	case f.sharedExpert != "" && f.sharedExpert != "sigmoid":
		return fmt.Errorf("family %s: sharedExpert %q (want \"\" or sigmoid)", f.name, f.sharedExpert)
	case f.routing != "softmax":
		return fmt.Errorf("family %s: routing %q (want softmax)", f.name, f.routing)
	case f.chat == "":
		return fmt.Errorf("family %s: no chat format", f.name)
	case f.genRopeTheta == 0 || f.genNormEps == 0:
		return fmt.Errorf("family %s: genRopeTheta and genNormEps must be set", f.name)
	}
	return nil
}

// configKeys names, for each Config field read from metadata, the keys that give it:
// config.json keys for a Hugging Face folder, keys after "<general.architecture>." for a
// GGUF file. The first key present wins; with none present the field takes its default:
// the Def fields, the family's normTopKHF/normTopKGGUF, 0 or false, or for NKVHead,
// HeadDim and NFFExpert the field they derive from (hfConfig, ggufConfig). A required
// field has no default. GGUF files have no Vocab (the embedding gives it) nor Tied
// (a missing output.weight says it).
type configKeys struct {
	NLayer, NEmbd, NHead                 []string // required
	NKVHead, HeadDim, NFF, Vocab, CtxLen []string
	RopeTheta, NormEps, Tied             []string
	NExpert, NExpertUsed, NFFExpert      []string
	NFFShared, NormTopK                  []string
	DenseLayers, SparseStep              []string // Hugging Face only: dense blocks of an MoE (Qwen)
	DefCtxLen                            int
	DefRopeTheta                         float64
	DefNormEps                           float32
}

// defaultHFKeys are the config.json keys of the transformers Llama-style configs every
// family so far shares.
var defaultHFKeys = configKeys{
	NLayer: []string{"num_hidden_layers"}, NEmbd: []string{"hidden_size"}, NHead: []string{"num_attention_heads"},
	NKVHead: []string{"num_key_value_heads"}, HeadDim: []string{"head_dim"}, NFF: []string{"intermediate_size"},
	Vocab: []string{"vocab_size"}, CtxLen: []string{"max_position_embeddings"},
	RopeTheta: []string{"rope_theta"}, NormEps: []string{"rms_norm_eps"}, Tied: []string{"tie_word_embeddings"},
	NExpert: []string{"num_local_experts", "num_experts"}, NExpertUsed: []string{"num_experts_per_tok"},
	NFFExpert: []string{"moe_intermediate_size"}, NFFShared: []string{"shared_expert_intermediate_size"},
	NormTopK:    []string{"norm_topk_prob"},
	DenseLayers: []string{"mlp_only_layers"}, SparseStep: []string{"decoder_sparse_step"},
	DefCtxLen: 2048, DefRopeTheta: 10000, DefNormEps: 1e-6,
}

// defaultGGUFKeys are llama.cpp's metadata keys (gguf-py's constants.py), shared by
// every architecture.
var defaultGGUFKeys = configKeys{
	NLayer: []string{"block_count"}, NEmbd: []string{"embedding_length"}, NHead: []string{"attention.head_count"},
	NKVHead: []string{"attention.head_count_kv"}, HeadDim: []string{"attention.key_length"},
	NFF: []string{"feed_forward_length"}, CtxLen: []string{"context_length"},
	RopeTheta: []string{"rope.freq_base"}, NormEps: []string{"attention.layer_norm_rms_epsilon"},
	NExpert: []string{"expert_count"}, NExpertUsed: []string{"expert_used_count"},
	NFFExpert: []string{"expert_feed_forward_length"}, NFFShared: []string{"expert_shared_feed_forward_length"},
	NormTopK:  []string{"expert_weights_norm"},
	DefCtxLen: 2048, DefRopeTheta: 10000, DefNormEps: 1e-5,
}

// naming gives a family's tensor names. Templates take the layer (and expert) index.
type naming struct {
	Embed, OutNorm, Output                                  string
	AttnNorm, Q, K, V, O, QBias, KBias, VBias, OBias, QNorm string
	KNorm, FFNNorm, Router, Gate, Up, Down                  string
	ExpGate, ExpUp, ExpDown                                 string // per expert: layer, expert
	StackGate, StackUp, StackDown                           string // stacked [NExpert, rows, cols]: layer
	ShGate, ShUp, ShDown, ShGateInp                         string
}

// defaultGGUFNames are llama.cpp's tensor names, shared by every family. Per-expert
// names are the layout of Mixtral GGUFs written before llama.cpp stacked experts.
var defaultGGUFNames = naming{
	Embed: "token_embd.weight", OutNorm: "output_norm.weight", Output: "output.weight",
	AttnNorm: "blk.%d.attn_norm.weight",
	Q:        "blk.%d.attn_q.weight", K: "blk.%d.attn_k.weight", V: "blk.%d.attn_v.weight", O: "blk.%d.attn_output.weight",
	QBias: "blk.%d.attn_q.bias", KBias: "blk.%d.attn_k.bias", VBias: "blk.%d.attn_v.bias", OBias: "blk.%d.attn_output.bias",
	QNorm: "blk.%d.attn_q_norm.weight", KNorm: "blk.%d.attn_k_norm.weight",
	FFNNorm: "blk.%d.ffn_norm.weight", Router: "blk.%d.ffn_gate_inp.weight",
	Gate: "blk.%d.ffn_gate.weight", Up: "blk.%d.ffn_up.weight", Down: "blk.%d.ffn_down.weight",
	ExpGate: "blk.%d.ffn_gate.%d.weight", ExpUp: "blk.%d.ffn_up.%d.weight", ExpDown: "blk.%d.ffn_down.%d.weight",
	StackGate: "blk.%d.ffn_gate_exps.weight", StackUp: "blk.%d.ffn_up_exps.weight", StackDown: "blk.%d.ffn_down_exps.weight",
	ShGate: "blk.%d.ffn_gate_shexp.weight", ShUp: "blk.%d.ffn_up_shexp.weight", ShDown: "blk.%d.ffn_down_shexp.weight",
	ShGateInp: "blk.%d.ffn_gate_inp_shexp.weight",
}

// hfLayer is the prefix of a Hugging Face block's tensors.
const hfLayer = "model.layers.%d."

// defaultHFNames are the transformers names of Llama-style checkpoints; MoE families
// without a stacked-expert layout name experts mlp.experts.<e>.
var defaultHFNames = naming{
	Embed: "model.embed_tokens.weight", OutNorm: "model.norm.weight", Output: "lm_head.weight",
	AttnNorm: hfLayer + "input_layernorm.weight",
	Q:        hfLayer + "self_attn.q_proj.weight", K: hfLayer + "self_attn.k_proj.weight",
	V: hfLayer + "self_attn.v_proj.weight", O: hfLayer + "self_attn.o_proj.weight",
	QBias: hfLayer + "self_attn.q_proj.bias", KBias: hfLayer + "self_attn.k_proj.bias",
	VBias: hfLayer + "self_attn.v_proj.bias", OBias: hfLayer + "self_attn.o_proj.bias",
	QNorm: hfLayer + "self_attn.q_norm.weight", KNorm: hfLayer + "self_attn.k_norm.weight",
	FFNNorm: hfLayer + "post_attention_layernorm.weight",
	Gate:    hfLayer + "mlp.gate_proj.weight", Up: hfLayer + "mlp.up_proj.weight", Down: hfLayer + "mlp.down_proj.weight",
	Router:  hfLayer + "mlp.gate.weight",
	ExpGate: hfLayer + "mlp.experts.%d.gate_proj.weight", ExpUp: hfLayer + "mlp.experts.%d.up_proj.weight",
	ExpDown: hfLayer + "mlp.experts.%d.down_proj.weight",
	ShGate:  hfLayer + "mlp.shared_expert.gate_proj.weight", ShUp: hfLayer + "mlp.shared_expert.up_proj.weight",
	ShDown: hfLayer + "mlp.shared_expert.down_proj.weight", ShGateInp: hfLayer + "mlp.shared_expert_gate.weight",
}

// FamilyInfo is the part of a family's data that tools outside the engine use: bench's
// gen-model writes random models with the family's parts and constants.
type FamilyInfo struct {
	Name     string // Config.Family
	GGUFArch string // general.architecture llama.cpp writes it as
	MoE      bool   // routed experts (false: a dense FFN in every block)
	QKVBias  bool   // q/k/v projection biases
	QKNorm   string // Config.QKNorm: "", "head" or "full"
	// SharedExpert is the shared expert next to the routed ones: "" none, "sigmoid" one
	// scaled by sigmoid(ShGateInp·x) (Qwen2-MoE).
	SharedExpert string
	NormTopK     bool    // llama.cpp's default top-k renormalisation (<arch>.expert_weights_norm)
	RopeTheta    float64 // the family's usual RoPE base
	NormEps      float32 // the family's usual RMSNorm epsilon
}

// LookupFamily returns the data of the family called name (an entry of Families).
func LookupFamily(name string) (FamilyInfo, bool) {
	f := familyByName(name)
	if f == nil {
		return FamilyInfo{}, false
	}
	return FamilyInfo{Name: f.name, GGUFArch: f.gguf, MoE: f.moe, QKVBias: f.qkvBias, QKNorm: f.qkNorm,
		SharedExpert: f.sharedExpert, NormTopK: f.normTopKGGUF, RopeTheta: f.genRopeTheta, NormEps: f.genNormEps}, true
}
