//go:build !purego

#include "textflag.h"
#include "sdot_arm64.h"

// A8W4 (int4 codes through a 16-entry int8 table per group of 128) dot kernels for
// GemvA8W4/GemmA8W4 (see neon_a8w4_arm64.go). V31 holds the nibble mask 0x0F.

// LUT2(c, tb, xlo, xhi, acc): the 32 codes in register c (low nibbles: codes 0..15, high
// nibbles: codes 16..31) become int8 weights through table tb (TBL), multiplied with x
// registers xlo/xhi (numbers) into acc. Temporaries V29, V30 and, for the SMULL form, V4..V7.
#define LUT2(c, tb, xlo, xhi, acc) \
	VAND  V31.B16, c, V29.B16;  \
	VUSHR $4, c, V30.B16;       \
	VTBL  V29.B16, [tb], V29.B16; \
	VTBL  V30.B16, [tb], V30.B16; \
	DOT16(xlo, 29, acc, 4, 5);  \
	DOT16(xhi, 30, acc, 6, 7)

// LUTT(tb, acc0, acc1): the 32 codes in V28 through table tb, times token 0 (V16/V17)
// into acc0 and token 1 (V18/V19) into acc1 (GEMM kernel).
#define LUTT(tb, acc0, acc1) \
	VAND  V31.B16, V28.B16, V29.B16; \
	VUSHR $4, V28.B16, V30.B16;      \
	VTBL  V29.B16, [tb], V29.B16;    \
	VTBL  V30.B16, [tb], V30.B16;    \
	DOT16(16, 29, acc0, 8, 9);       \
	DOT16(17, 30, acc0, 10, 11);     \
	DOT16(18, 29, acc1, 12, 13);     \
	DOT16(19, 30, acc1, 14, 15)

#define DOT16(x, w, acc, t0, t1) SDOT(x, w, acc)

// func a8w4DotsSDOT(dst []int32, codes []byte, tables []int8, x []int8)
TEXT ·a8w4DotsSDOT(SB), NOSPLIT, $0-96
#include "neon_a8w4_arm64.h"

// func a8w4GemmSDOT(dst []int32, codes []byte, tables []int8, x []int8, rows, cols, ntok, stride int)
TEXT ·a8w4GemmSDOT(SB), NOSPLIT, $0-128
#include "neon_a8w4gemm_arm64.h"

#undef DOT16
#define DOT16(x, w, acc, t0, t1) \
	SMULL_8B(x, w, t0);   \
	SMULL2_16B(x, w, t1); \
	SADALP_8H(t0, acc);   \
	SADALP_8H(t1, acc)

// func a8w4DotsNEON(dst []int32, codes []byte, tables []int8, x []int8)
TEXT ·a8w4DotsNEON(SB), NOSPLIT, $0-96
#include "neon_a8w4_arm64.h"

// func a8w4GemmNEON(dst []int32, codes []byte, tables []int8, x []int8, rows, cols, ntok, stride int)
TEXT ·a8w4GemmNEON(SB), NOSPLIT, $0-128
#include "neon_a8w4gemm_arm64.h"
