package engine

// qwen2moeFamily is Qwen1.5-MoE and Qwen2-MoE: q/k/v biases, and next to the routed
// experts a shared expert scaled by a sigmoid gate (transformers' Qwen2MoeSparseMoeBlock).
// Top-k weights are not renormalised unless norm_topk_prob says so.
var qwen2moeFamily = family{
	name:         "qwen2moe",
	hfArchs:      []string{"Qwen2MoeForCausalLM"},
	hfModelTypes: []string{"qwen2_moe"},
	gguf:         "qwen2moe",

	moe:          true,
	qkvBias:      true,
	sharedExpert: "sigmoid",
	routing:      "softmax",
	ropeNeoX:     true,

	chat:        ChatML,
	chatAliases: []string{"qwen2"},

	genRopeTheta: 1e6, genNormEps: 1e-6,
}
