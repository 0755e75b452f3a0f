//go:build !purego

// Hand-written blocked int8 GEMM kernels for the VEX paths (AVX-VNNI), the ymm
// counterpart of the AVX-512 strip loop (asm/int8 gemmI8P): a strip of 3 weight rows
// times tiles of 4 prepared tokens (x+128), 12 accumulators over all columns, 3 weight
// and 4 activation loads per 12 VPDPBUSD. The driver (int8_vex_amd64.go) copies each
// strip into a padded buffer and prepares each token block once, as on AVX-512. The
// byte-coded VPDPBUSD fixes the register numbers, so this file is not generated.

#include "textflag.h"
#include "vexmacros_amd64.h"

DATA i8gk80<>+0(SB)/8, $0x8080808080808080
DATA i8gk80<>+8(SB)/8, $0x8080808080808080
DATA i8gk80<>+16(SB)/8, $0x8080808080808080
DATA i8gk80<>+24(SB)/8, $0x8080808080808080
GLOBL i8gk80<>(SB), RODATA|NOPTR, $32

// func prepI8XAVX2(dst *byte, dstride int, x *int8, xstride int, cols int, ntok int)
// dst[t*dstride+k] = x[t*xstride+k] + 128 (as a byte) for k < cols (a multiple of 32).
TEXT ·prepI8XAVX2(SB), NOSPLIT, $0-48
	MOVQ    dst+0(FP), DI
	MOVQ    dstride+8(FP), DX
	MOVQ    x+16(FP), SI
	MOVQ    xstride+24(FP), R8
	MOVQ    cols+32(FP), CX
	MOVQ    ntok+40(FP), R9
	VMOVDQU i8gk80<>(SB), Y15

pxv_tok:
	TESTQ R9, R9
	JZ    pxv_done
	XORQ  AX, AX

pxv_loop:
	CMPQ    AX, CX
	JAE     pxv_next
	VPXOR   (SI)(AX*1), Y15, Y0
	VMOVDQU Y0, (DI)(AX*1)
	ADDQ    $32, AX
	JMP     pxv_loop

pxv_next:
	ADDQ DX, DI
	ADDQ R8, SI
	DECQ R9
	JMP  pxv_tok

pxv_done:
	VZEROUPPER
	RET

// r0, r1, r2 (xmm): rows 0-2 of a token -> 3 dwords at (DI); clobbers X12, X13.
#define STORE_TOKEN(r0, r1, r2) \
	VPHADDD r1, r0, X12; \
	VPHADDD r2, r2, X13; \
	VPHADDD X13, X12, X12; \
	VMOVQ   X12, (DI); \
	VPEXTRD $2, X12, 8(DI); \
	ADDQ    R13, DI

// x (the low half of y) += the high half of y; clobbers X12.
#define FOLD(y, x) \
	VEXTRACTI128 $1, y, X12; \
	VPADDD       X12, x, x

// func gemmI8StripAVXVNNI(dots *int32, dstride int, w *int8, wstride int, x *byte, xstride int, cols int, ntiles int)
// dots[t*dstride+r] = sum_k x[t*xstride+k]*w[r*wstride+k] for r < 3, t < 4*ntiles (x
// prepared: x+128; cols a multiple of 32). Accumulator of row r, token u: Y(4r+u);
// weights Y12-Y14, activations Y15.
TEXT ·gemmI8StripAVXVNNI(SB), NOSPLIT, $0-64
	MOVQ dots+0(FP), DI
	MOVQ dstride+8(FP), R13
	SHLQ $2, R13
	MOVQ w+16(FP), SI
	MOVQ wstride+24(FP), DX
	LEAQ (SI)(DX*1), R10
	LEAQ (R10)(DX*1), R11
	MOVQ x+32(FP), R8
	MOVQ xstride+40(FP), R9
	MOVQ cols+48(FP), CX

gsv_tile:
	CMPQ  ntiles+56(FP), $0
	JLE   gsv_done
	LEAQ  (R8)(R9*1), BX
	LEAQ  (BX)(R9*1), DX
	LEAQ  (DX)(R9*1), R12
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	VPXOR Y11, Y11, Y11
	XORQ  AX, AX

gsv_loop:
	CMPQ    AX, CX
	JAE     gsv_store
	VMOVDQU (SI)(AX*1), Y12
	VMOVDQU (R10)(AX*1), Y13
	VMOVDQU (R11)(AX*1), Y14
	VMOVDQU (R8)(AX*1), Y15
	VPDPBUSD_VEX_Y(12, 15, 0)
	VPDPBUSD_VEX_Y(13, 15, 4)
	VPDPBUSD_VEX_Y(14, 15, 8)
	VMOVDQU (BX)(AX*1), Y15
	VPDPBUSD_VEX_Y(12, 15, 1)
	VPDPBUSD_VEX_Y(13, 15, 5)
	VPDPBUSD_VEX_Y(14, 15, 9)
	VMOVDQU (DX)(AX*1), Y15
	VPDPBUSD_VEX_Y(12, 15, 2)
	VPDPBUSD_VEX_Y(13, 15, 6)
	VPDPBUSD_VEX_Y(14, 15, 10)
	VMOVDQU (R12)(AX*1), Y15
	VPDPBUSD_VEX_Y(12, 15, 3)
	VPDPBUSD_VEX_Y(13, 15, 7)
	VPDPBUSD_VEX_Y(14, 15, 11)
	ADDQ    $32, AX
	JMP     gsv_loop

gsv_store:
	FOLD(Y0, X0)
	FOLD(Y1, X1)
	FOLD(Y2, X2)
	FOLD(Y3, X3)
	FOLD(Y4, X4)
	FOLD(Y5, X5)
	FOLD(Y6, X6)
	FOLD(Y7, X7)
	FOLD(Y8, X8)
	FOLD(Y9, X9)
	FOLD(Y10, X10)
	FOLD(Y11, X11)
	STORE_TOKEN(X0, X4, X8)
	STORE_TOKEN(X1, X5, X9)
	STORE_TOKEN(X2, X6, X10)
	STORE_TOKEN(X3, X7, X11)
	LEAQ (R12)(R9*1), R8
	DECQ ntiles+56(FP)
	JMP  gsv_tile

gsv_done:
	VZEROUPPER
	RET

DATA i8gk80x<>+0(SB)/8, $0x8080808080808080
DATA i8gk80x<>+8(SB)/8, $0x8080808080808080
GLOBL i8gk80x<>(SB), RODATA|NOPTR, $16

// The AVX2 GEMM multiplies int16: VPMADDUBSW (u8 x s8) saturates its int16 pair sums, but
// VPMADDWD on zero-extended x+128 (0..255) and sign-extended w (-128..127) forms exact
// int32 pair sums (|255*128*2| < 2^31), so both operands are widened once, x per token
// block and w per strip, and the inner loop is one VPMADDWD and one VPADDD per 16 MACs.

// func prepI16XAVX2(dst *byte, dstride int, x *int8, xstride int, cols int, ntok int)
// dst[t*dstride + 2k] = uint16(x[t*xstride+k] + 128) for k < cols (a multiple of 16).
TEXT ·prepI16XAVX2(SB), NOSPLIT, $0-48
	MOVQ    dst+0(FP), DI
	MOVQ    dstride+8(FP), DX
	MOVQ    x+16(FP), SI
	MOVQ    xstride+24(FP), R8
	MOVQ    cols+32(FP), CX
	MOVQ    ntok+40(FP), R9
	VMOVDQU i8gk80x<>(SB), X15

pwx_tok:
	TESTQ R9, R9
	JZ    pwx_done
	XORQ  AX, AX

pwx_loop:
	CMPQ      AX, CX
	JAE       pwx_next
	VPXOR     (SI)(AX*1), X15, X0
	VPMOVZXBW X0, Y0
	VMOVDQU   Y0, (DI)(AX*2)
	ADDQ      $16, AX
	JMP       pwx_loop

pwx_next:
	ADDQ DX, DI
	ADDQ R8, SI
	DECQ R9
	JMP  pwx_tok

pwx_done:
	VZEROUPPER
	RET

// func widenI8AVX2(dst *byte, dstride int, w *int8, wstride int, cols int, nrows int)
// dst[r*dstride + 2k] = int16(w[r*wstride+k]) for k < cols (a multiple of 16).
TEXT ·widenI8AVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ dstride+8(FP), DX
	MOVQ w+16(FP), SI
	MOVQ wstride+24(FP), R8
	MOVQ cols+32(FP), CX
	MOVQ nrows+40(FP), R9

wdn_row:
	TESTQ R9, R9
	JZ    wdn_done
	XORQ  AX, AX

wdn_loop:
	CMPQ      AX, CX
	JAE       wdn_next
	VPMOVSXBW (SI)(AX*1), Y0
	VMOVDQU   Y0, (DI)(AX*2)
	ADDQ      $16, AX
	JMP       wdn_loop

wdn_next:
	ADDQ DX, DI
	ADDQ R8, SI
	DECQ R9
	JMP  wdn_row

wdn_done:
	VZEROUPPER
	RET

// acc += w . x (int16 pairs): VPMADDWD into tmp, then VPADDD.
#define MADD16(w, x, tmp, acc) \
	VPMADDWD w, x, tmp; \
	VPADDD   tmp, acc, acc

// func gemmI16StripAVX2(dots *int32, dstride int, w *byte, wstride int, x *byte, xstride int, cols int, ntiles int)
// dots[t*dstride+r] = sum_k x16[t][k]*w16[r][k] for r < 3, t < 3*ntiles, on int16 rows
// (w16 row r at w + r*wstride, x16 token t at x + t*xstride, strides in bytes; cols
// values a row, a multiple of 16). Accumulator of row r, token u: Y(3r+u); weights
// Y9-Y11, activations Y12, products Y13/Y14.
TEXT ·gemmI16StripAVX2(SB), NOSPLIT, $0-64
	MOVQ dots+0(FP), DI
	MOVQ dstride+8(FP), R13
	SHLQ $2, R13
	MOVQ w+16(FP), SI
	MOVQ wstride+24(FP), DX
	LEAQ (SI)(DX*1), R10
	LEAQ (R10)(DX*1), R11
	MOVQ x+32(FP), R8
	MOVQ xstride+40(FP), R9
	MOVQ cols+48(FP), CX
	SHLQ $1, CX

g16_tile:
	CMPQ  ntiles+56(FP), $0
	JLE   g16_done
	LEAQ  (R8)(R9*1), BX
	LEAQ  (BX)(R9*1), DX
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	VPXOR Y8, Y8, Y8
	XORQ  AX, AX

g16_loop:
	CMPQ    AX, CX
	JAE     g16_store
	VMOVDQU (SI)(AX*1), Y9
	VMOVDQU (R10)(AX*1), Y10
	VMOVDQU (R11)(AX*1), Y11
	VMOVDQU (R8)(AX*1), Y12
	MADD16(Y9, Y12, Y13, Y0)
	MADD16(Y10, Y12, Y14, Y3)
	MADD16(Y11, Y12, Y13, Y6)
	VMOVDQU (BX)(AX*1), Y12
	MADD16(Y9, Y12, Y14, Y1)
	MADD16(Y10, Y12, Y13, Y4)
	MADD16(Y11, Y12, Y14, Y7)
	VMOVDQU (DX)(AX*1), Y12
	MADD16(Y9, Y12, Y13, Y2)
	MADD16(Y10, Y12, Y14, Y5)
	MADD16(Y11, Y12, Y13, Y8)
	ADDQ    $32, AX
	JMP     g16_loop

g16_store:
	FOLD(Y0, X0)
	FOLD(Y1, X1)
	FOLD(Y2, X2)
	FOLD(Y3, X3)
	FOLD(Y4, X4)
	FOLD(Y5, X5)
	FOLD(Y6, X6)
	FOLD(Y7, X7)
	FOLD(Y8, X8)
	STORE_TOKEN(X0, X3, X6)
	STORE_TOKEN(X1, X4, X7)
	STORE_TOKEN(X2, X5, X8)
	LEAQ (DX)(R9*1), R8
	DECQ ntiles+56(FP)
	JMP  g16_tile

g16_done:
	VZEROUPPER
	RET

DATA i8gk0f<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA i8gk0f<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA i8gk0f<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA i8gk0f<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL i8gk0f<>(SB), RODATA|NOPTR, $32

// func unpackA8W4AVX2(dst *int8, dstride int, codes *byte, cstride int, tables *int8, tstride int, cols int, nrows int)
// Writes nrows rows of DGQ A8W4 weights as int8 in column order: dst[r*dstride+k] =
// tables[r*tstride + (k/128)*16 + code(r, k)], codes as in GemvA8W4 (row r at codes +
// r*cstride; in each 16-byte block, byte j holds code j low and code j+16 high); cols a
// multiple of 32. Per 64 columns: one VPSHUFB per nibble half on the group's table
// (both lanes), then the lanes are interleaved back into column order.
TEXT ·unpackA8W4AVX2(SB), NOSPLIT, $0-64
	MOVQ    dst+0(FP), DI
	MOVQ    codes+16(FP), SI
	MOVQ    tables+32(FP), R8
	MOVQ    cols+48(FP), CX
	MOVQ    nrows+56(FP), R9
	VMOVDQU i8gk0f<>(SB), Y15
	MOVQ    CX, R10
	ANDQ    $-64, R10

ua_row:
	TESTQ R9, R9
	JZ    ua_done
	XORQ  AX, AX

ua_loop:
	CMPQ           AX, R10
	JAE            ua_tail
	MOVQ           AX, BX
	SHRQ           $3, BX
	ANDQ           $-16, BX
	VBROADCASTI128 (R8)(BX*1), Y14
	MOVQ           AX, DX
	SHRQ           $1, DX
	VMOVDQU        (SI)(DX*1), Y0
	VPSRLW         $4, Y0, Y1
	VPAND          Y15, Y0, Y0
	VPAND          Y15, Y1, Y1
	VPSHUFB        Y0, Y14, Y0
	VPSHUFB        Y1, Y14, Y1
	VPERM2I128     $0x20, Y1, Y0, Y2
	VPERM2I128     $0x31, Y1, Y0, Y3
	VMOVDQU        Y2, (DI)(AX*1)
	VMOVDQU        Y3, 32(DI)(AX*1)
	ADDQ           $64, AX
	JMP            ua_loop

ua_tail:
	CMPQ    AX, CX
	JAE     ua_next
	MOVQ    AX, BX
	SHRQ    $3, BX
	ANDQ    $-16, BX
	VMOVDQU (R8)(BX*1), X14
	MOVQ    AX, DX
	SHRQ    $1, DX
	VMOVDQU (SI)(DX*1), X0
	VPSRLW  $4, X0, X1
	VPAND   X15, X0, X0
	VPAND   X15, X1, X1
	VPSHUFB X0, X14, X0
	VPSHUFB X1, X14, X1
	VMOVDQU X0, (DI)(AX*1)
	VMOVDQU X1, 16(DI)(AX*1)

ua_next:
	ADDQ dstride+8(FP), DI
	ADDQ cstride+24(FP), SI
	ADDQ tstride+40(FP), R8
	DECQ R9
	JMP  ua_row

ua_done:
	VZEROUPPER
	RET
