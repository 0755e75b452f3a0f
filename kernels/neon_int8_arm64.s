//go:build !purego

#include "textflag.h"
#include "sdot_arm64.h"

// int8 x int8 dot kernels for GemvI8/GemmI8 (see neon_int8_arm64.go).

// DOT16(x, w, acc, t0, t1): acc.4S += 16 products x.16B*w.16B, grouped in fours.
#define DOT16(x, w, acc, t0, t1) SDOT(x, w, acc)

// func i8DotsSDOT(dst []int32, w []int8, x []int8)
TEXT ·i8DotsSDOT(SB), NOSPLIT, $0-72
#include "neon_i8gemv_arm64.h"

// func i8GemmSDOT(dst []int32, w []int8, x []int8, rows, cols, ntok, stride int)
TEXT ·i8GemmSDOT(SB), NOSPLIT, $0-104
#include "neon_i8gemm_arm64.h"

#undef DOT16
// Without dotprod: SMULL/SMULL2 make 8+8 exact int16 products (|p| <= 16384), SADALP adds
// them pairwise into the int32 lanes. (SMULL+SMLAL2 into one int16 vector could overflow:
// (-128)*(-128)*2 = 32768.) Lane sums differ from SDOT's grouping, the total does not.
#define DOT16(x, w, acc, t0, t1) \
	SMULL_8B(x, w, t0);   \
	SMULL2_16B(x, w, t1); \
	SADALP_8H(t0, acc);   \
	SADALP_8H(t1, acc)

// func i8DotsNEON(dst []int32, w []int8, x []int8)
TEXT ·i8DotsNEON(SB), NOSPLIT, $0-72
#include "neon_i8gemv_arm64.h"

// func i8GemmNEON(dst []int32, w []int8, x []int8, rows, cols, ntok, stride int)
TEXT ·i8GemmNEON(SB), NOSPLIT, $0-104
#include "neon_i8gemm_arm64.h"
