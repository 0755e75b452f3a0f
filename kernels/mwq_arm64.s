//go:build !purego

#include "textflag.h"
#include "sdot_arm64.h"

// MWQ bit-plane dot kernels for MWQDots (see mwq_arm64.go). The body, shared by the two
// forms, is neon_mwq_arm64.h; the macros below are what differs.

// SADALP Vd.8H, Vn.16B: d[i] += int16(n[2i]) + int16(n[2i+1]). Not in sdot_arm64.h (its
// 8H->4S form is); size field 00 of the same encoding, checked against the ARM ARM.
#define SADALP_16B(n, d) WORD $(0x4E206800 | ((n)<<5) | (d))

// Constants: the TBL indices that spread mask bytes 2t and 2t+1 over lanes 0..7 and
// 8..15 of chunk t (t = 0..7: weights 16t..16t+15), then the bit each lane keeps.
DATA mwqIdx<>+0(SB)/8, $0x0000000000000000
DATA mwqIdx<>+8(SB)/8, $0x0101010101010101
DATA mwqIdx<>+16(SB)/8, $0x0202020202020202
DATA mwqIdx<>+24(SB)/8, $0x0303030303030303
DATA mwqIdx<>+32(SB)/8, $0x0404040404040404
DATA mwqIdx<>+40(SB)/8, $0x0505050505050505
DATA mwqIdx<>+48(SB)/8, $0x0606060606060606
DATA mwqIdx<>+56(SB)/8, $0x0707070707070707
DATA mwqIdx<>+64(SB)/8, $0x0808080808080808
DATA mwqIdx<>+72(SB)/8, $0x0909090909090909
DATA mwqIdx<>+80(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA mwqIdx<>+88(SB)/8, $0x0b0b0b0b0b0b0b0b
DATA mwqIdx<>+96(SB)/8, $0x0c0c0c0c0c0c0c0c
DATA mwqIdx<>+104(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA mwqIdx<>+112(SB)/8, $0x0e0e0e0e0e0e0e0e
DATA mwqIdx<>+120(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA mwqIdx<>+128(SB)/8, $0x8040201008040201
DATA mwqIdx<>+136(SB)/8, $0x8040201008040201
GLOBL mwqIdx<>(SB), RODATA|NOPTR, $144

// SDOT form. A mask byte is -1 where the weight's bit is set, so SDOT accumulates
// -(x·bits); the planes are taken from the highest down with the accumulators doubled
// before each (Horner: acc = 2*acc + plane), and the total is negated at the end.
// MASKDOT(idx, xr, xn, t, tn, a): chunk of mask register idx, activations xr (number xn),
// temporary t (number tn), accumulator V24+a.
#define PLANE_BEGIN \
	VADD V24.S4, V24.S4, V24.S4; \
	VADD V25.S4, V25.S4, V25.S4
#define MASKDOT(idx, xr, xn, t, tn, a) \
	VTBL   idx, [V17.B16], t;  \
	VCMTST V16.B16, t, t;      \
	SDOT(xn, tn, 24+(a))
#define PLANE_END
#define FINISH \
	VADD  V25.S4, V24.S4, V24.S4; \
	VADDV V24.S4, V24;            \
	VMOV  V24.S[0], R12;          \
	NEG   R12, R12

// func mwqDotsSDOT(dots *int32, n int, blocks *byte, stride int, nb int, x *int8, groups int)
TEXT ·mwqDotsSDOT(SB), NOSPLIT, $0-56
#include "neon_mwq_arm64.h"

// Widening form (no dotprod): the masks select activations (AND), SADALP sums them pairwise
// into int16 lanes (V26, V27: at most 4 x 2 x 128 = 1024 per lane and plane), and at the
// end of each plane into the doubled int32 accumulator V24.
#undef PLANE_BEGIN
#undef MASKDOT
#undef PLANE_END
#undef FINISH
#define PLANE_BEGIN \
	VEOR V26.B16, V26.B16, V26.B16; \
	VEOR V27.B16, V27.B16, V27.B16
#define MASKDOT(idx, xr, xn, t, tn, a) \
	VTBL   idx, [V17.B16], t;  \
	VCMTST V16.B16, t, t;      \
	VAND   xr, t, t;           \
	SADALP_16B(tn, 26+(a))
#define PLANE_END \
	VADD V24.S4, V24.S4, V24.S4; \
	SADALP_8H(26, 24);           \
	SADALP_8H(27, 24)
#define FINISH \
	VADDV V24.S4, V24; \
	VMOV  V24.S[0], R12

// func mwqDotsNEON(dots *int32, n int, blocks *byte, stride int, nb int, x *int8, groups int)
TEXT ·mwqDotsNEON(SB), NOSPLIT, $0-56
#include "neon_mwq_arm64.h"
