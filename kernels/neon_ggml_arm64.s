//go:build !purego

#include "textflag.h"
#include "sdot_arm64.h"

// GGML Q8_0 / Q4_0 kernels (see neon_ggml_arm64.go and the body in neon_ggml_arm64.h).

// Q8_0 rows: d (2 bytes) then 32 int8; row i's halves go to V(22+2i), V(23+2i), d to V21.H[i].
#define ROWS_Q8 \
	VLD1.P 2(R6), V21.H[0];              \
	VLD1.P 32(R6), [V22.B16, V23.B16];   \
	VLD1.P 2(R7), V21.H[1];              \
	VLD1.P 32(R7), [V24.B16, V25.B16];   \
	VLD1.P 2(R8), V21.H[2];              \
	VLD1.P 32(R8), [V26.B16, V27.B16];   \
	VLD1.P 2(R9), V21.H[3];              \
	VLD1.P 32(R9), [V28.B16, V29.B16]

// Q4_0 rows: d then 16 bytes, byte j = (q_j + 8) | (q_{j+16} + 8) << 4.
// Q4UNPACKC(mask, eight, lo, hi): hi holds 16 code bytes; lo = low nibbles - 8, hi = high nibbles - 8.
#define Q4UNPACKC(mask, eight, lo, hi) \
	VAND  mask, hi, lo;    \
	VUSHR $4, hi, hi;      \
	VSUB  eight, lo, lo;   \
	VSUB  eight, hi, hi
#define Q4UNPACK(lo, hi) Q4UNPACKC(V30.B16, V19.B16, lo, hi)

#define ROWS_Q4 \
	VLD1.P 2(R6), V21.H[0];            \
	VLD1.P 16(R6), [V23.B16];          \
	VLD1.P 2(R7), V21.H[1];            \
	VLD1.P 16(R7), [V25.B16];          \
	VLD1.P 2(R8), V21.H[2];            \
	VLD1.P 16(R8), [V27.B16];          \
	VLD1.P 2(R9), V21.H[3];            \
	VLD1.P 16(R9), [V29.B16];          \
	Q4UNPACK(V22.B16, V23.B16);        \
	Q4UNPACK(V24.B16, V25.B16);        \
	Q4UNPACK(V26.B16, V27.B16);        \
	Q4UNPACK(V28.B16, V29.B16)

// The two-token kernel keeps its Q4 constants in V12 (0x0F) and V13 (8).
#define ROWS2_Q4 \
	VLD1.P 2(R6), V21.H[0];            \
	VLD1.P 16(R6), [V23.B16];          \
	VLD1.P 2(R7), V21.H[1];            \
	VLD1.P 16(R7), [V25.B16];          \
	VLD1.P 2(R8), V21.H[2];            \
	VLD1.P 16(R8), [V27.B16];          \
	VLD1.P 2(R9), V21.H[3];            \
	VLD1.P 16(R9), [V29.B16];          \
	Q4UNPACKC(V12.B16, V13.B16, V22.B16, V23.B16); \
	Q4UNPACKC(V12.B16, V13.B16, V24.B16, V25.B16); \
	Q4UNPACKC(V12.B16, V13.B16, V26.B16, V27.B16); \
	Q4UNPACKC(V12.B16, V13.B16, V28.B16, V29.B16)

#define DOT16(x, w, acc, t0, t1) SDOT(x, w, acc)

#define ROWS ROWS_Q8
// func q8_0StripsSDOT(out *float32, w *byte, stride, strips, nb int, xq *byte)
TEXT ·q8_0StripsSDOT(SB), NOSPLIT, $0-48
#include "neon_ggml_arm64.h"

#undef ROWS
#define ROWS ROWS_Q4
// func q4_0StripsSDOT(out *float32, w *byte, stride, strips, nb int, xq *byte)
TEXT ·q4_0StripsSDOT(SB), NOSPLIT, $0-48
#include "neon_ggml_arm64.h"

#define ROWS2 ROWS_Q8
// func q8_0PairsSDOT(out *float32, ostride int, w *byte, stride, nb, npairs int, xq *byte)
TEXT ·q8_0PairsSDOT(SB), NOSPLIT, $0-56
#include "neon_ggmlgemm_arm64.h"

#undef ROWS2
#define ROWS2 ROWS2_Q4
// func q4_0PairsSDOT(out *float32, ostride int, w *byte, stride, nb, npairs int, xq *byte)
TEXT ·q4_0PairsSDOT(SB), NOSPLIT, $0-56
#include "neon_ggmlgemm_arm64.h"

#undef DOT16
#define DOT16(x, w, acc, t0, t1) \
	SMULL_8B(x, w, t0);   \
	SMULL2_16B(x, w, t1); \
	SADALP_8H(t0, acc);   \
	SADALP_8H(t1, acc)

#undef ROWS
#define ROWS ROWS_Q8
// func q8_0StripsNEON(out *float32, w *byte, stride, strips, nb int, xq *byte)
TEXT ·q8_0StripsNEON(SB), NOSPLIT, $0-48
#include "neon_ggml_arm64.h"

#undef ROWS
#define ROWS ROWS_Q4
// func q4_0StripsNEON(out *float32, w *byte, stride, strips, nb int, xq *byte)
TEXT ·q4_0StripsNEON(SB), NOSPLIT, $0-48
#include "neon_ggml_arm64.h"

#undef ROWS2
#define ROWS2 ROWS_Q8
// func q8_0PairsNEON(out *float32, ostride int, w *byte, stride, nb, npairs int, xq *byte)
TEXT ·q8_0PairsNEON(SB), NOSPLIT, $0-56
#include "neon_ggmlgemm_arm64.h"

#undef ROWS2
#define ROWS2 ROWS2_Q4
// func q4_0PairsNEON(out *float32, ostride int, w *byte, stride, nb, npairs int, xq *byte)
TEXT ·q4_0PairsNEON(SB), NOSPLIT, $0-56
#include "neon_ggmlgemm_arm64.h"
