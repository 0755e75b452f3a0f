//go:build !purego

package kernels

import "unsafe"

// arm64 hooks of the int8 kernels (K1's int8.go validates the arguments). On the NEON path
// the assembly (neon_int8_arm64.s, neon_a8w4_arm64.s; SDOT when the CPU has dotprod, else
// SMULL/SADALP) writes the exact int32 sums into out itself, viewed as []int32, and the
// epilogue applies the scales as scale[r] * xScale * float32(sum), like the generic twins
// (so every path returns the same bits). Signed x signed products need no rowSum.
// Every other ISA value runs the generic twin.

func neonDots(out []float32) []int32 {
	return unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(out))), len(out))
}

func neonEpilogue(out []float32, dots []int32, scale []float32, xScale float32) {
	scale, dots = scale[:len(out)], dots[:len(out)]
	for r := range out {
		out[r] = scale[r] * xScale * float32(dots[r])
	}
}

func gemvI8(out []float32, w []int8, wScale []float32, rowSum []int32, x []int8, xScale float32) {
	rows, cols := len(out), len(x)
	if Active() != NEON || cols == 0 {
		gemvI8Generic(out, w, wScale, rowSum, x, xScale)
		return
	}
	dots := neonDots(out)
	i8DotsArm64(dots, w[:rows*cols], x, HasDotProd())
	neonEpilogue(out, dots, wScale, xScale)
}

func gemmI8(out []float32, rows int, w []int8, wScale []float32, rowSum []int32, x []int8, xScale []float32) {
	ntok := len(xScale)
	cols := len(x) / ntok
	if Active() != NEON || cols == 0 {
		gemmI8Generic(out, rows, w, wScale, rowSum, x, xScale)
		return
	}
	dots := neonDots(out[:ntok*rows])
	i8GemmDotsArm64(dots, w[:rows*cols], x[:ntok*cols], rows, cols, ntok, HasDotProd())
	for t, xs := range xScale {
		neonEpilogue(out[t*rows:(t+1)*rows], dots[t*rows:(t+1)*rows], wScale, xs)
	}
}

func gemvA8W4(out []float32, codes []byte, tables []int8, s1 []float32, rowSum []int32, x []int8, xScale float32) {
	rows, cols := len(out), len(x)
	if Active() != NEON || cols == 0 {
		gemvA8W4Generic(out, codes, tables, s1, rowSum, x, xScale)
		return
	}
	dots := neonDots(out)
	a8w4DotsArm64(dots, codes[:rows*cols/2], tables[:rows*a8w4Groups(cols)*16], x, HasDotProd())
	neonEpilogue(out, dots, s1, xScale)
}

func gemmA8W4(out []float32, rows int, codes []byte, tables []int8, s1 []float32, rowSum []int32, x []int8, xScale []float32) {
	ntok := len(xScale)
	cols := len(x) / ntok
	if Active() != NEON || cols == 0 {
		gemmA8W4Generic(out, rows, codes, tables, s1, rowSum, x, xScale)
		return
	}
	dots := neonDots(out[:ntok*rows])
	a8w4GemmDotsArm64(dots, codes[:rows*cols/2], tables[:rows*a8w4Groups(cols)*16], x[:ntok*cols], rows, cols, ntok, HasDotProd())
	for t, xs := range xScale {
		neonEpilogue(out[t*rows:(t+1)*rows], dots[t*rows:(t+1)*rows], s1, xs)
	}
}

func quantizeI8(dst []int8, x []float32) float32 { return quantizeI8Generic(dst, x) }
