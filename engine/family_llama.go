package engine

// llamaFamily is Llama and the dense Mistral models: a dense SwiGLU FFN in every block.
// llama.cpp writes them as arch "llama" with q/k rows permuted for interleaved RoPE.
var llamaFamily = family{
	name:         "llama",
	hfArchs:      []string{"LlamaForCausalLM", "MistralForCausalLM"},
	hfModelTypes: []string{"llama", "mistral"},
	gguf:         "llama",

	routing:       "softmax",
	ropeNeoX:      true,
	ggufPermuteQK: true,

	// A Llama base model has no chat layout; a Mistral-instruct vocabulary has [INST].
	chat:     Plain,
	chatInst: Mistral,

	genRopeTheta: 1e4, genNormEps: 1e-5,
}
