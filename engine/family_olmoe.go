package engine

// olmoeFamily is OLMoE: RMSNorm over the whole q and k projections before RoPE, and
// plain (not renormalised) top-k softmax weights.
var olmoeFamily = family{
	name:         "olmoe",
	hfArchs:      []string{"OlmoeForCausalLM"},
	hfModelTypes: []string{"olmoe"},
	gguf:         "olmoe",

	moe:      true,
	qkNorm:   "full",
	routing:  "softmax",
	ropeNeoX: true,

	chat: ChatML,

	genRopeTheta: 1e4, genNormEps: 1e-5,
}
