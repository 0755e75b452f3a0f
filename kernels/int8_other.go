//go:build purego || !(amd64 || arm64)

package kernels

// Until the arm64 NEON kernels exist (K3 will add int8_arm64.go and narrow this file's
// constraint to purego || !(amd64 || arm64)), every non-amd64 build runs the generic twins.

func gemvI8(out []float32, w []int8, wScale []float32, rowSum []int32, x []int8, xScale float32) {
	gemvI8Generic(out, w, wScale, rowSum, x, xScale)
}

func gemmI8(out []float32, rows int, w []int8, wScale []float32, rowSum []int32, x []int8, xScale []float32) {
	gemmI8Generic(out, rows, w, wScale, rowSum, x, xScale)
}

func gemvA8W4(out []float32, codes []byte, tables []int8, s1 []float32, rowSum []int32, x []int8, xScale float32) {
	gemvA8W4Generic(out, codes, tables, s1, rowSum, x, xScale)
}

func gemmA8W4(out []float32, rows int, codes []byte, tables []int8, s1 []float32, rowSum []int32, x []int8, xScale []float32) {
	gemmA8W4Generic(out, rows, codes, tables, s1, rowSum, x, xScale)
}

func quantizeI8(dst []int8, x []float32) float32 { return quantizeI8Generic(dst, x) }

func gemvA8W4G(out []float32, codes []byte, groups []byte, s1 []float32, rowSum []int32, x []int8, xScale float32) {
	gemvA8W4GGeneric(out, codes, groups, s1, rowSum, x, xScale)
}

func gemmA8W4G(out []float32, rows int, codes []byte, groups []byte, s1 []float32, rowSum []int32, x []int8, xScale []float32) {
	gemmA8W4GGeneric(out, rows, codes, groups, s1, rowSum, x, xScale)
}

func rowSumsA8W4G(rowSum []int32, codes []byte, groups []byte, cols int) {
	rowSumsA8W4GGeneric(rowSum, codes, groups, cols)
}
