//go:build !purego

package kernels

// NEON A8W4 dot kernels (neon_a8w4_arm64.s): dst[r] = sum_k table(r, k/128)[code(r,k)]*x[k]
// for r < len(dst), cols = len(x) a positive multiple of 32, with the layout of
// dotA8W4Generic (cols/2 code bytes and a8w4Groups(cols)*16 table bytes per row; the
// callers check the lengths). The SDOT form needs HasDotProd().

//go:noescape
func a8w4DotsSDOT(dst []int32, codes []byte, tables []int8, x []int8)

//go:noescape
func a8w4DotsNEON(dst []int32, codes []byte, tables []int8, x []int8)

// a8w4DotsArm64 is the A8W4 GEMV dot step on the NEON path.
func a8w4DotsArm64(dst []int32, codes []byte, tables []int8, x []int8, sdot bool) {
	if len(dst) == 0 {
		return
	}
	if len(x) == 0 {
		clear(dst)
		return
	}
	if sdot {
		a8w4DotsSDOT(dst, codes, tables, x)
	} else {
		a8w4DotsNEON(dst, codes, tables, x)
	}
}

// a8w4Gemm* compute dst[t*stride+r] = sum_k table(r, k)*x[t*cols+k] for rows a multiple
// of 4 and ntok a multiple of 2, in blocks of 4 rows x 2 tokens (one TBL for both tokens).
//
//go:noescape
func a8w4GemmSDOT(dst []int32, codes []byte, tables []int8, x []int8, rows, cols, ntok, stride int)

//go:noescape
func a8w4GemmNEON(dst []int32, codes []byte, tables []int8, x []int8, rows, cols, ntok, stride int)

// a8w4GemmDotsArm64 computes dst[t*rows+r] for every r < rows, t < ntok: 4x2 blocks in
// assembly, the remaining rows and tokens by the GEMV kernel.
func a8w4GemmDotsArm64(dst []int32, codes []byte, tables []int8, x []int8, rows, cols, ntok int, sdot bool) {
	if rows == 0 || ntok == 0 {
		return
	}
	if cols == 0 {
		clear(dst[:rows*ntok])
		return
	}
	cb, tb := cols/2, a8w4Groups(cols)*16
	rb, tk := rows&^3, ntok&^1
	if rb > 0 && tk > 0 {
		_ = dst[tk*rows-1]
		_ = codes[rb*cb-1]
		_ = tables[rb*tb-1]
		_ = x[tk*cols-1]
		if sdot {
			a8w4GemmSDOT(dst, codes, tables, x, rb, cols, tk, rows)
		} else {
			a8w4GemmNEON(dst, codes, tables, x, rb, cols, tk, rows)
		}
		if rb < rows {
			for t := 0; t < tk; t++ {
				a8w4DotsArm64(dst[t*rows+rb:(t+1)*rows], codes[rb*cb:rows*cb], tables[rb*tb:rows*tb], x[t*cols:(t+1)*cols], sdot)
			}
		}
	} else {
		tk = 0
	}
	for t := tk; t < ntok; t++ {
		a8w4DotsArm64(dst[t*rows:(t+1)*rows], codes[:rows*cb], tables[:rows*tb], x[t*cols:(t+1)*cols], sdot)
	}
}
