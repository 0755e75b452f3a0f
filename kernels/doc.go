// Package kernels owns mole's numeric inner loops: dot products of float32 vectors
// against rows stored as F32, F16, BF16, Q8_0 or Q4_0 bytes (llama.cpp block layouts),
// their dequantising and quantising twins, and the small vector operations of a
// transformer step (RMSNorm, SiLU, softmax, RoPE).
//
// Everything here works on caller-provided slices and never allocates, so the engine
// can call it on the per-token hot path. The code is plain Go for now; architecture
// specific assembly can later replace individual functions behind the same signatures.
// kernels imports nothing else of mole: it knows byte layouts, not file formats.
package kernels
