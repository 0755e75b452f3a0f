//go:build purego || !amd64

package kernels

// gemvMWQFused reports that no fused GemvMWQ kernel exists here: GemvMWQ runs the
// two-pass form (MWQDots, then the combination in Go).
func gemvMWQFused(out []float32, base []byte, b1 int, planes [][]byte, x []int8, xSums []int32, xScale float32) bool {
	return false
}
