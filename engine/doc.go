// Package engine owns the model graph: it maps a loaded model's tensors and metadata
// (GGUF or Hugging Face safetensors) onto one of the supported families (Llama,
// Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE), runs the forward pass of one token at a time
// against a float32 KV cache on a persistent worker pool, converts Hugging Face models
// to GGUF, and (in the files of the generation helpers) samples and generates text.
//
// Weights are used in place from the memory-mapped file; the per-token path allocates
// nothing once a State exists.
package engine
