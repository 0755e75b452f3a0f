//go:build !purego

package kernels

// NEON int8 dot kernels (neon_int8_arm64.s). dst[r] = sum_k w[r*cols+k]*x[k] for
// r < len(dst), cols = len(x); cols must be a positive multiple of 32 and
// len(w) >= len(dst)*cols (the callers check). The SDOT form needs HasDotProd().

//go:noescape
func i8DotsSDOT(dst []int32, w []int8, x []int8)

//go:noescape
func i8DotsNEON(dst []int32, w []int8, x []int8)

// i8Gemm* compute dst[t*stride+r] = sum_k w[r*cols+k]*x[t*cols+k] for rows and ntok
// multiples of 4 (cols a positive multiple of 16), in blocks of 4 rows x 4 tokens.
//
//go:noescape
func i8GemmSDOT(dst []int32, w []int8, x []int8, rows, cols, ntok, stride int)

//go:noescape
func i8GemmNEON(dst []int32, w []int8, x []int8, rows, cols, ntok, stride int)

// i8DotsArm64 is the GEMV dot step on the NEON path: SDOT when sdot, else SMULL/SADALP.
func i8DotsArm64(dst []int32, w, x []int8, sdot bool) {
	if len(dst) == 0 {
		return
	}
	if len(x) == 0 {
		clear(dst)
		return
	}
	if sdot {
		i8DotsSDOT(dst, w, x)
	} else {
		i8DotsNEON(dst, w, x)
	}
}

// i8GemmDotsArm64 computes dst[t*rows+r] = sum_k w[r*cols+k]*x[t*cols+k] for every
// r < rows, t < ntok: 4x4 blocks in assembly, the remaining rows and tokens by the GEMV kernel.
func i8GemmDotsArm64(dst []int32, w, x []int8, rows, cols, ntok int, sdot bool) {
	if rows == 0 || ntok == 0 {
		return
	}
	if cols == 0 {
		clear(dst[:rows*ntok])
		return
	}
	rb, tb := rows&^3, ntok&^3
	if rb > 0 && tb > 0 {
		_ = dst[tb*rows-1]
		_ = w[rb*cols-1]
		_ = x[tb*cols-1]
		if sdot {
			i8GemmSDOT(dst, w, x, rb, cols, tb, rows)
		} else {
			i8GemmNEON(dst, w, x, rb, cols, tb, rows)
		}
		if rb < rows {
			for t := 0; t < tb; t++ {
				i8DotsArm64(dst[t*rows+rb:(t+1)*rows], w[rb*cols:rows*cols], x[t*cols:(t+1)*cols], sdot)
			}
		}
	} else {
		tb = 0
	}
	for t := tb; t < ntok; t++ {
		i8DotsArm64(dst[t*rows:(t+1)*rows], w[:rows*cols], x[t*cols:(t+1)*cols], sdot)
	}
}
