// Package loader owns model files on disk: it memory-maps GGUF files and Hugging Face
// safetensors folders read-only and exposes zero-copy tensor views (name, shape, dtype,
// bytes) plus the metadata the engine needs to build a model. It also writes GGUF and
// safetensors files, always to a temporary name renamed into place when complete.
//
// Every size and offset read from a file is checked against the file before use: a
// malformed, truncated or hostile file yields an error naming the file and the problem,
// never a panic or an out-of-range read.
//
// Shapes are given outermost first (PyTorch order) for both formats: a GGUF tensor with
// ne = [in, out] appears as Shape [out, in], and a stacked expert tensor with
// ne = [n_embd, n_ff, n_expert] as [n_expert, n_ff, n_embd].
package loader
