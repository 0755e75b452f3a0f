package engine

// qwen3moeFamily is Qwen3-MoE: RMSNorm over each head of q and k before RoPE, no
// biases, no shared expert. llama.cpp always renormalises its top-k weights; the
// Hugging Face config says so with norm_topk_prob.
var qwen3moeFamily = family{
	name:         "qwen3moe",
	hfArchs:      []string{"Qwen3MoeForCausalLM"},
	hfModelTypes: []string{"qwen3_moe"},
	gguf:         "qwen3moe",

	moe:          true,
	qkNorm:       "head",
	routing:      "softmax",
	normTopKGGUF: true,
	ropeNeoX:     true,

	chat:        ChatML,
	chatAliases: []string{"qwen3"},

	genRopeTheta: 1e6, genNormEps: 1e-6,
}
