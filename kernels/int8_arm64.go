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

// The table-free A8W4 products on NEON expand the tables of a few rows at a time from the
// stored pairs into a small buffer (a8w4Tables) and run the table kernels on those rows;
// the GEMM then runs the GEMV kernel per token on each chunk (its tables stay in L1).

func gemvA8W4G(out []float32, codes []byte, groups []byte, s1 []float32, rowSum []int32, x []int8, xScale float32) {
	if Active() != NEON || len(x) == 0 {
		gemvA8W4GGeneric(out, codes, groups, s1, rowSum, x, xScale)
		return
	}
	dots := neonDots(out)
	a8w4GDotsArm64(dots, 1, codes, groups, x)
	neonEpilogue(out, dots, s1, xScale)
}

func gemmA8W4G(out []float32, rows int, codes []byte, groups []byte, s1 []float32, rowSum []int32, x []int8, xScale []float32) {
	ntok := len(xScale)
	if Active() != NEON || len(x) == 0 {
		gemmA8W4GGeneric(out, rows, codes, groups, s1, rowSum, x, xScale)
		return
	}
	dots := neonDots(out[:ntok*rows])
	a8w4GDotsArm64(dots, ntok, codes, groups, x)
	for t, xs := range xScale {
		neonEpilogue(out[t*rows:(t+1)*rows], dots[t*rows:(t+1)*rows], s1, xs)
	}
}

// a8w4GDotsArm64 writes the exact sums of len(dots)/ntok rows times ntok tokens of x
// (token-major) from tables expanded a chunk of rows at a time.
func a8w4GDotsArm64(dots []int32, ntok int, codes []byte, groups []byte, x []int8) {
	rows, cols := len(dots)/ntok, len(x)/ntok
	cb, gb, tb := cols/2, a8w4Groups(cols)*2, a8w4Groups(cols)*16
	sdot := HasDotProd()
	buf := a8w4Tables.Get()
	chunk := a8w4ChunkRows(rows, tb)
	if cap(*buf) < chunk*tb {
		*buf = make([]int8, chunk*tb)
	}
	for r0 := 0; r0 < rows; r0 += chunk {
		r1 := min(rows, r0+chunk)
		t := (*buf)[:(r1-r0)*tb]
		A8W4Tables(t, groups[r0*gb:r1*gb])
		for k := 0; k < ntok; k++ {
			a8w4DotsArm64(dots[k*rows+r0:k*rows+r1], codes[r0*cb:r1*cb], t, x[k*cols:(k+1)*cols], sdot)
		}
	}
	a8w4Tables.Put(buf)
}

func rowSumsA8W4G(rowSum []int32, codes []byte, groups []byte, cols int) {
	rowSumsA8W4GGeneric(rowSum, codes, groups, cols)
}
