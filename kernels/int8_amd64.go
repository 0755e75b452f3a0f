//go:build !purego

package kernels

import (
	"sync"
	"unsafe"
)

// amd64 drivers of the int8 kernels. The assembly works on strips of 4 rows and returns
// raw int32 sums of (x+128)*w into out itself (viewed as []int32); the epilogue here
// subtracts 128*rowSum and applies the scales. Row counts that are not a multiple of 4
// recompute the last 4 rows (overlapping strip); fewer than 4 rows run the strip kernel
// with row stride 0 into a stack buffer. GEMM token tails work the same way.

// Hand-written VEX kernels (int8_avx2_amd64.s); the masks of the AVX-512 signatures are
// ignored there (the ymm loops need no partial loads: cols is a multiple of 32).

//go:noescape
func gemvI8AVXVNNI(dots *int32, w *int8, stride int, x *int8, cols int, nstrips int)

//go:noescape
func gemvI8AVX2(dots *int32, w *int8, stride int, x *int8, cols int, nstrips int)

//go:noescape
func gemvA8W4AVXVNNI(dots *int32, codes *byte, cstride int, tables *int8, tstride int, x *int8, cols int, nstrips int)

//go:noescape
func gemvA8W4AVX2(dots *int32, codes *byte, cstride int, tables *int8, tstride int, x *int8, cols int, nstrips int)

// maskBytes is a byte mask of the low n bytes (n clamped to 0..64).
func maskBytes(n int) uint64 {
	if n <= 0 {
		return 0
	}
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<uint(n) - 1
}

// i8Masks: AVX-512 tail masks for the cols%128 bytes after the last full 128.
func i8Masks(cols int) (m0, m1 uint64) {
	rem := cols & 127
	return maskBytes(min(rem, 64)), maskBytes(rem - 64)
}

// a4Masks: AVX-512 masks for a trailing partial group of cols%128 codes.
func a4Masks(cols int) (kc, kx0, kx1 uint64) {
	rem := cols & 127
	return maskBytes(rem / 2), maskBytes(min(rem, 64)), maskBytes(rem - 64)
}

func asInt32(out []float32) []int32 {
	return unsafe.Slice((*int32)(unsafe.Pointer(&out[0])), len(out))
}

func i8Strips(isa ISA, dots *int32, w *int8, stride int, x *int8, cols, n int) {
	switch isa {
	case AVX512:
		m0, m1 := i8Masks(cols)
		gemvI8AVX512(dots, w, stride, x, cols, n, m0, m1)
	case AVXVNNI:
		gemvI8AVXVNNI(dots, w, stride, x, cols, n)
	default:
		gemvI8AVX2(dots, w, stride, x, cols, n)
	}
}

func a4Strips(isa ISA, dots *int32, codes *byte, cstride int, tables *int8, tstride int, x *int8, cols, n int) {
	switch isa {
	case AVX512:
		kc, kx0, kx1 := a4Masks(cols)
		gemvA8W4AVX512(dots, codes, cstride, tables, tstride, x, cols, n, kc, kx0, kx1)
	case AVXVNNI:
		gemvA8W4AVXVNNI(dots, codes, cstride, tables, tstride, x, cols, n)
	default:
		gemvA8W4AVX2(dots, codes, cstride, tables, tstride, x, cols, n)
	}
}

func asmISA() bool {
	switch active {
	case AVX512, AVXVNNI, AVX2:
		return true
	}
	return false
}

func gemvI8(out []float32, w []int8, wScale []float32, rowSum []int32, x []int8, xScale float32) {
	rows, cols := len(out), len(x)
	if !asmISA() || cols == 0 {
		gemvI8Generic(out, w, wScale, rowSum, x, xScale)
		return
	}
	isa := active
	dots := asInt32(out)
	if rows >= 4 {
		i8Strips(isa, &dots[0], &w[0], cols, &x[0], cols, rows/4)
		if rows%4 != 0 {
			i8Strips(isa, &dots[rows-4], &w[(rows-4)*cols], cols, &x[0], cols, 1)
		}
	} else {
		var tmp [4]int32
		for r := 0; r < rows; r++ {
			i8Strips(isa, &tmp[0], &w[r*cols], 0, &x[0], cols, 1)
			dots[r] = tmp[0]
		}
	}
	i8Epilogue(out, dots, wScale, rowSum, xScale)
}

func i8Epilogue(out []float32, dots []int32, scale []float32, rowSum []int32, xScale float32) {
	scale, rowSum = scale[:len(out)], rowSum[:len(out)]
	for r := range out {
		out[r] = scale[r] * xScale * float32(dots[r]-rowSum[r]<<7)
	}
}

func gemvA8W4(out []float32, codes []byte, tables []int8, s1 []float32, rowSum []int32, x []int8, xScale float32) {
	rows, cols := len(out), len(x)
	if !asmISA() || cols == 0 {
		gemvA8W4Generic(out, codes, tables, s1, rowSum, x, xScale)
		return
	}
	isa := active
	dots := asInt32(out)
	cb, tb := cols/2, a8w4Groups(cols)*16
	if rows >= 4 {
		a4Strips(isa, &dots[0], &codes[0], cb, &tables[0], tb, &x[0], cols, rows/4)
		if rows%4 != 0 {
			r := rows - 4
			a4Strips(isa, &dots[r], &codes[r*cb], cb, &tables[r*tb], tb, &x[0], cols, 1)
		}
	} else {
		var tmp [4]int32
		for r := 0; r < rows; r++ {
			a4Strips(isa, &tmp[0], &codes[r*cb], 0, &tables[r*tb], 0, &x[0], cols, 1)
			dots[r] = tmp[0]
		}
	}
	i8Epilogue(out, dots, s1, rowSum, xScale)
}

// gemmTokenBlock tokens share one pass of the AVX-512 GEMM over the row strips: their
// activations (gemmTokenBlock*cols bytes) stay in L2 while a 4-row strip sits in L1.
const gemmTokenBlock = 64

func gemmI8(out []float32, rows int, w []int8, wScale []float32, rowSum []int32, x []int8, xScale []float32) {
	ntok := len(xScale)
	cols := len(x) / ntok
	if active != AVX512 || rows < 4 || ntok < 4 || cols == 0 {
		for t, xs := range xScale {
			gemvI8(out[t*rows:(t+1)*rows], w, wScale, rowSum, x[t*cols:(t+1)*cols], xs)
		}
		return
	}
	dots := asInt32(out)
	var m0 uint64
	if cols%64 != 0 {
		m0 = maskBytes(32)
	}
	ns := rows / 4
	r4 := rows - 4
	for t0 := 0; t0 < ntok; t0 += gemmTokenBlock {
		nt := min(gemmTokenBlock, ntok-t0)
		if nt >= 4 {
			gemmI8AVX512(&dots[t0*rows], rows, &w[0], cols, &x[t0*cols], cols, cols, ns, nt/4, m0)
			if rows%4 != 0 {
				gemmI8AVX512(&dots[t0*rows+r4], rows, &w[r4*cols], cols, &x[t0*cols], cols, cols, 1, nt/4, m0)
			}
		}
		if nt%4 != 0 {
			t1 := t0 + nt - 4 // overlapping tile (ntok >= 4)
			gemmI8AVX512(&dots[t1*rows], rows, &w[0], cols, &x[t1*cols], cols, cols, ns, 1, m0)
			if rows%4 != 0 {
				gemmI8AVX512(&dots[t1*rows+r4], rows, &w[r4*cols], cols, &x[t1*cols], cols, cols, 1, 1, m0)
			}
		}
	}
	for t, xs := range xScale {
		i8Epilogue(out[t*rows:(t+1)*rows], dots[t*rows:(t+1)*rows], wScale, rowSum, xs)
	}
}

// a8w4Prep holds the prepared activations of one token block of the AVX-512 A8W4 GEMM
// (gemmTokenBlock tokens, padded to whole groups): taken per call, so concurrent calls
// (the engine's pool) each get their own without allocating in steady state.
var a8w4Prep = sync.Pool{New: func() any { return new([]byte) }}

func gemmA8W4(out []float32, rows int, codes []byte, tables []int8, s1 []float32, rowSum []int32, x []int8, xScale []float32) {
	ntok := len(xScale)
	cols := len(x) / ntok
	if active != AVX512 || rows < 4 || ntok < 4 || cols == 0 {
		for t, xs := range xScale {
			gemvA8W4(out[t*rows:(t+1)*rows], codes, tables, s1, rowSum, x[t*cols:(t+1)*cols], xs)
		}
		return
	}
	dots := asInt32(out)
	kc, kx0, kx1 := a4Masks(cols)
	cb, tb := cols/2, a8w4Groups(cols)*16
	// The activations of each token block are prepared once (x+128, chunks in the
	// kernel's order) instead of once per 4-row strip.
	pc := a8w4Groups(cols) * 128
	bp := a8w4Prep.Get().(*[]byte)
	if need := min(gemmTokenBlock, ntok) * pc; cap(*bp) < need {
		*bp = make([]byte, need)
	}
	xp := (*bp)[:cap(*bp)]
	ns := rows / 4
	r4 := rows - 4
	for t0 := 0; t0 < ntok; t0 += gemmTokenBlock {
		nt := min(gemmTokenBlock, ntok-t0)
		prepA8W4XAVX512(&xp[0], pc, &x[t0*cols], cols, cols, nt, kx0, kx1)
		if nt >= 4 {
			gemmA8W4PAVX512(&dots[t0*rows], rows, &codes[0], cb, &tables[0], tb, &xp[0], pc, cols, ns, nt/4, kc)
			if rows%4 != 0 {
				gemmA8W4PAVX512(&dots[t0*rows+r4], rows, &codes[r4*cb], cb, &tables[r4*tb], tb, &xp[0], pc, cols, 1, nt/4, kc)
			}
		}
		if nt%4 != 0 {
			// overlapping tile of the last four tokens (ntok >= 4)
			if nt < 4 {
				prepA8W4XAVX512(&xp[0], pc, &x[(t0+nt-4)*cols], cols, cols, 4, kx0, kx1)
			}
			t1, o := t0+nt-4, max(nt-4, 0)*pc
			gemmA8W4PAVX512(&dots[t1*rows], rows, &codes[0], cb, &tables[0], tb, &xp[o], pc, cols, ns, 1, kc)
			if rows%4 != 0 {
				gemmA8W4PAVX512(&dots[t1*rows+r4], rows, &codes[r4*cb], cb, &tables[r4*tb], tb, &xp[o], pc, cols, 1, 1, kc)
			}
		}
	}
	a8w4Prep.Put(bp)
	for t, xs := range xScale {
		i8Epilogue(out[t*rows:(t+1)*rows], dots[t*rows:(t+1)*rows], s1, rowSum, xs)
	}
}

func quantizeI8(dst []int8, x []float32) float32 { return quantizeI8Generic(dst, x) }

//go:noescape
func streamReadAVX2(p *byte, n int) uint64

// VPDPBUSD_VEX_Y checks (vexmacros_amd64.h): acc += u8(u) . s8(s) per dword.

//go:noescape
func vexDpbusd0(acc *[8]int32, u, s *[32]byte)

//go:noescape
func vexDpbusd1(acc *[8]int32, u, s *[32]byte)

//go:noescape
func vexDpbusd2(acc *[8]int32, u, s *[32]byte)

//go:noescape
func vexDpbusd3(acc *[8]int32, u, s *[32]byte)
