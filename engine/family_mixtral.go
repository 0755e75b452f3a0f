package engine

// mixtralFamily is Mixtral: Llama blocks whose FFN is a softmax top-k router over
// SwiGLU experts, renormalised (transformers' MixtralSparseMoeBlock). llama.cpp writes
// it as arch "llama" with expert metadata and its expert width in feed_forward_length.
var mixtralFamily = family{
	name:         "mixtral",
	hfArchs:      []string{"MixtralForCausalLM"},
	hfModelTypes: []string{"mixtral"},
	gguf:         "llama",

	// Mixtral's block is block_sparse_moe, with w1 (gate), w3 (up) and w2 (down).
	hfNames: naming{
		Router:  hfLayer + "block_sparse_moe.gate.weight",
		ExpGate: hfLayer + "block_sparse_moe.experts.%d.w1.weight",
		ExpUp:   hfLayer + "block_sparse_moe.experts.%d.w3.weight",
		ExpDown: hfLayer + "block_sparse_moe.experts.%d.w2.weight",
	},

	moe:                 true,
	routing:             "softmax",
	normTopKHF:          true,
	normTopKGGUF:        true,
	ropeNeoX:            true,
	ggufPermuteQK:       true,
	ggufFFIsExpertWidth: true,

	chat:        Mistral,
	chatAliases: []string{"mistral"},

	genRopeTheta: 1e6, genNormEps: 1e-5,
}
