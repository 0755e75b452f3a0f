// Package loader owns model files on disk: it memory-maps GGUF files and Hugging Face
// safetensors folders read-only and exposes zero-copy tensor views (name, shape, dtype,
// bytes) plus the metadata the engine needs to build a model. It also writes GGUF and
// safetensors files, always to a temporary name renamed into place when complete.
//
// Open accepts a .gguf file (or any file starting with the GGUF magic), a .safetensors
// file (read with the small files of its folder), a model.safetensors.index.json, or a
// folder (sharded via the index, model.safetensors, every *.safetensors, or else its only
// .gguf file). OpenHFFiles does the same for a folder held in memory, such as the model
// embedded in the binary. GGUF versions 2 and 3 are read; version 1 is refused.
//
// Every size and offset read from a file is checked against the file before use, with
// overflow-safe arithmetic, and every count is bounded by the bytes left in the file
// before it sizes an allocation: a malformed, truncated or hostile file yields an error
// naming the file and the problem, never a panic, an out-of-range read or a huge
// allocation. FuzzParseGGUF and FuzzParseSafetensors exercise this.
//
// Tensor.Data is a view into the mapping (or into the caller's bytes for OpenHFFiles),
// valid until Model.Close; metadata values are copies and stay valid after Close.
//
// Shapes are given outermost first (PyTorch order) for both formats: a GGUF tensor with
// ne = [in, out] appears as Shape [out, in], and a stacked expert tensor with
// ne = [n_embd, n_ff, n_expert] as [n_expert, n_ff, n_embd].
package loader
