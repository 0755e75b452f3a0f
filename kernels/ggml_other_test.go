//go:build purego || !amd64

package kernels

// setGGMLPerToken: only the amd64 AVX-512 GEMM has a blocked form to switch off.
func setGGMLPerToken(on bool) bool { return false }
