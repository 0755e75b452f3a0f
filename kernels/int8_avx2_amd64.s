//go:build !purego

// Hand-written AVX-VNNI (VEX ymm VPDPBUSD, byte-encoded) and AVX2 (VPMADDUBSW +
// VPMADDWD) kernels of int8.go. Register numbers are fixed by the byte macros, so these
// are not generated. Same contract as the AVX-512 kernels (int8_avx512_amd64.s):
// raw sums of (x+128)*w per row, strips of 4 rows, the Go side applies rowSum and scales.
// AVX2 exactness: VPMADDUBSW saturates its int16 pair sums, so x+128 (0..255) is split
// as 2*h + l with h = (x+128)>>1 (0..127) and l = (x+128)&1: |h*w pair| <= 127*128*2 =
// 32512 and |l*w pair| <= 256 never saturate; h parts are widened with VPMADDWD by 2.

#include "textflag.h"
#include "vexmacros_amd64.h"

DATA i8k80<>+0(SB)/8, $0x8080808080808080
DATA i8k80<>+8(SB)/8, $0x8080808080808080
DATA i8k80<>+16(SB)/8, $0x8080808080808080
DATA i8k80<>+24(SB)/8, $0x8080808080808080
GLOBL i8k80<>(SB), RODATA|NOPTR, $32

DATA i8k0f<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA i8k0f<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA i8k0f<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA i8k0f<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL i8k0f<>(SB), RODATA|NOPTR, $32

DATA i8k7f<>+0(SB)/8, $0x7f7f7f7f7f7f7f7f
DATA i8k7f<>+8(SB)/8, $0x7f7f7f7f7f7f7f7f
DATA i8k7f<>+16(SB)/8, $0x7f7f7f7f7f7f7f7f
DATA i8k7f<>+24(SB)/8, $0x7f7f7f7f7f7f7f7f
GLOBL i8k7f<>(SB), RODATA|NOPTR, $32

DATA i8k01<>+0(SB)/8, $0x0101010101010101
DATA i8k01<>+8(SB)/8, $0x0101010101010101
DATA i8k01<>+16(SB)/8, $0x0101010101010101
DATA i8k01<>+24(SB)/8, $0x0101010101010101
GLOBL i8k01<>(SB), RODATA|NOPTR, $32

DATA i8kw1<>+0(SB)/8, $0x0001000100010001
DATA i8kw1<>+8(SB)/8, $0x0001000100010001
DATA i8kw1<>+16(SB)/8, $0x0001000100010001
DATA i8kw1<>+24(SB)/8, $0x0001000100010001
GLOBL i8kw1<>(SB), RODATA|NOPTR, $32

DATA i8kw2<>+0(SB)/8, $0x0002000200020002
DATA i8kw2<>+8(SB)/8, $0x0002000200020002
DATA i8kw2<>+16(SB)/8, $0x0002000200020002
DATA i8kw2<>+24(SB)/8, $0x0002000200020002
GLOBL i8kw2<>(SB), RODATA|NOPTR, $32

// Y0..Y3 (8 int32 each) -> X0 = [sum Y0, sum Y1, sum Y2, sum Y3]; clobbers X8..X11.
#define REDUCE4 \
	VEXTRACTI128 $1, Y0, X8; \
	VPADDD       X8, X0, X0; \
	VEXTRACTI128 $1, Y1, X9; \
	VPADDD       X9, X1, X1; \
	VEXTRACTI128 $1, Y2, X10; \
	VPADDD       X10, X2, X2; \
	VEXTRACTI128 $1, Y3, X11; \
	VPADDD       X11, X3, X3; \
	VPHADDD      X1, X0, X0; \
	VPHADDD      X3, X2, X2; \
	VPHADDD      X2, X0, X0

#define ZERO8 \
	VPXOR Y0, Y0, Y0; \
	VPXOR Y1, Y1, Y1; \
	VPXOR Y2, Y2, Y2; \
	VPXOR Y3, Y3, Y3; \
	VPXOR Y4, Y4, Y4; \
	VPXOR Y5, Y5, Y5; \
	VPXOR Y6, Y6, Y6; \
	VPXOR Y7, Y7, Y7

// func gemvI8AVXVNNI(dots *int32, w *int8, stride int, x *int8, cols int, nstrips int)
// 64 columns per iteration, 8 accumulators (Y0-Y3 even 32, Y4-Y7 odd 32).
TEXT ·gemvI8AVXVNNI(SB), NOSPLIT, $0-48
	MOVQ dots+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ stride+16(FP), DX
	MOVQ x+24(FP), R8
	MOVQ cols+32(FP), CX
	MOVQ nstrips+40(FP), R9
	VMOVDQU i8k80<>(SB), Y15
	MOVQ CX, BX
	ANDQ $-64, BX

vi8_strip:
	TESTQ R9, R9
	JZ    vi8_done
	LEAQ  (SI)(DX*1), R10
	LEAQ  (R10)(DX*1), R11
	LEAQ  (R11)(DX*1), R12
	ZERO8
	XORQ  AX, AX

vi8_loop:
	CMPQ    AX, BX
	JAE     vi8_tail
	VPXOR   (R8)(AX*1), Y15, Y8
	VPXOR   32(R8)(AX*1), Y15, Y9
	VMOVDQU (SI)(AX*1), Y10
	VMOVDQU (R10)(AX*1), Y11
	VMOVDQU (R11)(AX*1), Y12
	VMOVDQU (R12)(AX*1), Y13
	VPDPBUSD_VEX_Y(10, 8, 0)
	VPDPBUSD_VEX_Y(11, 8, 1)
	VPDPBUSD_VEX_Y(12, 8, 2)
	VPDPBUSD_VEX_Y(13, 8, 3)
	VMOVDQU 32(SI)(AX*1), Y10
	VMOVDQU 32(R10)(AX*1), Y11
	VMOVDQU 32(R11)(AX*1), Y12
	VMOVDQU 32(R12)(AX*1), Y13
	VPDPBUSD_VEX_Y(10, 9, 4)
	VPDPBUSD_VEX_Y(11, 9, 5)
	VPDPBUSD_VEX_Y(12, 9, 6)
	VPDPBUSD_VEX_Y(13, 9, 7)
	ADDQ    $64, AX
	JMP     vi8_loop

vi8_tail:
	CMPQ    AX, CX
	JAE     vi8_reduce
	VPXOR   (R8)(AX*1), Y15, Y8
	VMOVDQU (SI)(AX*1), Y10
	VMOVDQU (R10)(AX*1), Y11
	VMOVDQU (R11)(AX*1), Y12
	VMOVDQU (R12)(AX*1), Y13
	VPDPBUSD_VEX_Y(10, 8, 0)
	VPDPBUSD_VEX_Y(11, 8, 1)
	VPDPBUSD_VEX_Y(12, 8, 2)
	VPDPBUSD_VEX_Y(13, 8, 3)

vi8_reduce:
	VPADDD  Y4, Y0, Y0
	VPADDD  Y5, Y1, Y1
	VPADDD  Y6, Y2, Y2
	VPADDD  Y7, Y3, Y3
	REDUCE4
	VMOVDQU X0, (DI)
	ADDQ    $16, DI
	LEAQ    (R12)(DX*1), SI
	DECQ    R9
	JMP     vi8_strip

vi8_done:
	VZEROUPPER
	RET

// func gemvI8AVX2(dots *int32, w *int8, stride int, x *int8, cols int, nstrips int)
// 32 columns per iteration; Y9 = h, Y8 = l of x+128; row r accumulates 2*h.w + l.w in Y(r).
TEXT ·gemvI8AVX2(SB), NOSPLIT, $0-48
	MOVQ    dots+0(FP), DI
	MOVQ    w+8(FP), SI
	MOVQ    stride+16(FP), DX
	MOVQ    x+24(FP), R8
	MOVQ    cols+32(FP), CX
	MOVQ    nstrips+40(FP), R9
	VMOVDQU i8k80<>(SB), Y15
	VMOVDQU i8k7f<>(SB), Y14
	VMOVDQU i8k01<>(SB), Y13
	VMOVDQU i8kw1<>(SB), Y12
	VMOVDQU i8kw2<>(SB), Y7

ai8_strip:
	TESTQ R9, R9
	JZ    ai8_done
	LEAQ  (SI)(DX*1), R10
	LEAQ  (R10)(DX*1), R11
	LEAQ  (R11)(DX*1), R12
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	XORQ  AX, AX

ai8_loop:
	CMPQ  AX, CX
	JAE   ai8_reduce
	VPXOR (R8)(AX*1), Y15, Y8
	VPSRLW $1, Y8, Y9
	VPAND Y14, Y9, Y9
	VPAND Y13, Y8, Y8

#define AI8ROW(P, ACC) \
	VMOVDQU    (P)(AX*1), Y10; \
	VPMADDUBSW Y10, Y9, Y11; \
	VPMADDUBSW Y10, Y8, Y10; \
	VPMADDWD   Y7, Y11, Y11; \
	VPMADDWD   Y12, Y10, Y10; \
	VPADDD     Y11, ACC, ACC; \
	VPADDD     Y10, ACC, ACC

	AI8ROW(SI, Y0)
	AI8ROW(R10, Y1)
	AI8ROW(R11, Y2)
	AI8ROW(R12, Y3)
	ADDQ $32, AX
	JMP  ai8_loop

ai8_reduce:
	REDUCE4
	VMOVDQU X0, (DI)
	ADDQ    $16, DI
	LEAQ    (R12)(DX*1), SI
	DECQ    R9
	JMP     ai8_strip

ai8_done:
	VZEROUPPER
	RET

// ---- A8W4 ----
// Per row and 64 codes (32 code bytes = 2 blocks): Y10 = lo nibbles (codes of x 16-byte
// lanes 0 and 2), Y11 = hi nibbles (x lanes 1 and 3); the activations are permuted to
// match with VPERM2I128, once per 64 codes for all 4 rows. Tables: R13 = row 0's table of
// the current group, DX = tstride, R14 = 3*tstride.

// A4PF: how far ahead (bytes) each row's code stream is prefetched per group, as the
// AVX-512 kernel does (asm/int8 gemvA8W4P): the four rows are separate streams, and
// without it the hardware prefetcher left a 260 MiB GEMV at 65-75% of a plain read loop.
#define A4PF 1024

// x+128 of 64 columns at off(R8) in the code order: Y8 = x lanes 0,2; Y9 = lanes 1,3.
#define VXPREP(off) \
	VPXOR      off(R8), Y15, Y8; \
	VPXOR      off+32(R8), Y15, Y9; \
	VPERM2I128 $0x20, Y9, Y8, Y14; \
	VPERM2I128 $0x31, Y9, Y8, Y9; \
	VMOVDQU    Y14, Y8

#define VROW(P, off, TBL, ACCLO, ACCHI) \
	VMOVDQU        off(P), Y10; \
	VPSRLW         $4, Y10, Y11; \
	VPAND          Y13, Y10, Y10; \
	VPAND          Y13, Y11, Y11; \
	VBROADCASTI128 TBL, Y12; \
	VPSHUFB        Y10, Y12, Y10; \
	VPSHUFB        Y11, Y12, Y11; \
	VPDPBUSD_VEX_Y(10, 8, ACCLO); \
	VPDPBUSD_VEX_Y(11, 9, ACCHI)

// 32 codes (16 bytes) at (P) in natural order [lo, hi], x+128 in Y8.
#define VROW16(P, TBL, ACC) \
	VMOVDQU        (P), X10; \
	VPSRLW         $4, X10, X11; \
	VINSERTI128    $1, X11, Y10, Y10; \
	VPAND          Y13, Y10, Y10; \
	VBROADCASTI128 TBL, Y12; \
	VPSHUFB        Y10, Y12, Y10; \
	VPDPBUSD_VEX_Y(10, 8, ACC)

// func gemvA8W4AVXVNNI(dots *int32, codes *byte, cstride int, tables *int8, tstride int, x *int8, cols int, nstrips int)
TEXT ·gemvA8W4AVXVNNI(SB), NOSPLIT, $0-64
	MOVQ    dots+0(FP), DI
	VMOVDQU i8k80<>(SB), Y15
	VMOVDQU i8k0f<>(SB), Y13

va4_strip:
	MOVQ  nstrips+56(FP), AX
	TESTQ AX, AX
	JZ    va4_done
	MOVQ  codes+8(FP), SI
	MOVQ  cstride+16(FP), AX
	LEAQ  (SI)(AX*1), R10
	LEAQ  (R10)(AX*1), R11
	LEAQ  (R11)(AX*1), R12
	MOVQ  tables+24(FP), R13
	MOVQ  tstride+32(FP), DX
	LEAQ  (DX)(DX*2), R14
	MOVQ  x+40(FP), R8
	MOVQ  cols+48(FP), CX
	SHRQ  $7, CX
	ZERO8

va4_group:
	TESTQ CX, CX
	JZ    va4_partial
	PREFETCHT0 A4PF(SI)
	PREFETCHT0 A4PF(R10)
	PREFETCHT0 A4PF(R11)
	PREFETCHT0 A4PF(R12)
	VXPREP(0)
	VROW(SI, 0, (R13), 0, 4)
	VROW(R10, 0, (R13)(DX*1), 1, 5)
	VROW(R11, 0, (R13)(DX*2), 2, 6)
	VROW(R12, 0, (R13)(R14*1), 3, 7)
	VXPREP(64)
	VROW(SI, 32, (R13), 0, 4)
	VROW(R10, 32, (R13)(DX*1), 1, 5)
	VROW(R11, 32, (R13)(DX*2), 2, 6)
	VROW(R12, 32, (R13)(R14*1), 3, 7)
	ADDQ  $64, SI
	ADDQ  $64, R10
	ADDQ  $64, R11
	ADDQ  $64, R12
	ADDQ  $128, R8
	ADDQ  $16, R13
	DECQ  CX
	JMP   va4_group

va4_partial:
	MOVQ cols+48(FP), BX
	SHRQ $1, BX
	ANDQ $63, BX
	CMPQ BX, $32
	JLT  va4_p16
	VXPREP(0)
	VROW(SI, 0, (R13), 0, 4)
	VROW(R10, 0, (R13)(DX*1), 1, 5)
	VROW(R11, 0, (R13)(DX*2), 2, 6)
	VROW(R12, 0, (R13)(R14*1), 3, 7)
	ADDQ $32, SI
	ADDQ $32, R10
	ADDQ $32, R11
	ADDQ $32, R12
	ADDQ $64, R8
	SUBQ $32, BX

va4_p16:
	TESTQ BX, BX
	JZ    va4_reduce
	VPXOR (R8), Y15, Y8
	VROW16(SI, (R13), 0)
	VROW16(R10, (R13)(DX*1), 1)
	VROW16(R11, (R13)(DX*2), 2)
	VROW16(R12, (R13)(R14*1), 3)

va4_reduce:
	VPADDD  Y4, Y0, Y0
	VPADDD  Y5, Y1, Y1
	VPADDD  Y6, Y2, Y2
	VPADDD  Y7, Y3, Y3
	REDUCE4
	VMOVDQU X0, (DI)
	ADDQ    $16, DI
	MOVQ    codes+8(FP), AX
	MOVQ    cstride+16(FP), BX
	LEAQ    (AX)(BX*4), AX
	MOVQ    AX, codes+8(FP)
	MOVQ    tables+24(FP), AX
	MOVQ    tstride+32(FP), BX
	LEAQ    (AX)(BX*4), AX
	MOVQ    AX, tables+24(FP)
	MOVQ    nstrips+56(FP), AX
	DECQ    AX
	MOVQ    AX, nstrips+56(FP)
	JMP     va4_strip

va4_done:
	VZEROUPPER
	RET

// AVX2 A8W4: Y4/Y5 = h/l of x lanes 0,2 and Y6/Y7 = h/l of x lanes 1,3 (see VXPREP);
// Y12 = int16 ones, Y14 = int16 twos, Y13 = 0x0f, Y15 = 0x80; row r accumulates in Y(r).
#define AXPREP(off) \
	VPXOR      off(R8), Y15, Y8; \
	VPXOR      off+32(R8), Y15, Y9; \
	VPERM2I128 $0x20, Y9, Y8, Y4; \
	VPERM2I128 $0x31, Y9, Y8, Y6; \
	VPAND      i8k01<>(SB), Y4, Y5; \
	VPAND      i8k01<>(SB), Y6, Y7; \
	VPSRLW     $1, Y4, Y4; \
	VPAND      i8k7f<>(SB), Y4, Y4; \
	VPSRLW     $1, Y6, Y6; \
	VPAND      i8k7f<>(SB), Y6, Y6

#define AROW(P, off, TBL, ACC) \
	VMOVDQU        off(P), Y8; \
	VPSRLW         $4, Y8, Y9; \
	VPAND          Y13, Y8, Y8; \
	VPAND          Y13, Y9, Y9; \
	VBROADCASTI128 TBL, Y10; \
	VPSHUFB        Y8, Y10, Y8; \
	VPSHUFB        Y9, Y10, Y9; \
	VPMADDUBSW     Y8, Y4, Y10; \
	VPMADDUBSW     Y9, Y6, Y11; \
	VPMADDWD       Y14, Y10, Y10; \
	VPMADDWD       Y14, Y11, Y11; \
	VPADDD         Y10, ACC, ACC; \
	VPADDD         Y11, ACC, ACC; \
	VPMADDUBSW     Y8, Y5, Y10; \
	VPMADDUBSW     Y9, Y7, Y11; \
	VPADDW         Y11, Y10, Y10; \
	VPMADDWD       Y12, Y10, Y10; \
	VPADDD         Y10, ACC, ACC

// 32 codes at (P) in natural order; Y4/Y5 = h/l of x+128 (natural order).
#define AROW16(P, TBL, ACC) \
	VMOVDQU        (P), X8; \
	VPSRLW         $4, X8, X9; \
	VINSERTI128    $1, X9, Y8, Y8; \
	VPAND          Y13, Y8, Y8; \
	VBROADCASTI128 TBL, Y10; \
	VPSHUFB        Y8, Y10, Y8; \
	VPMADDUBSW     Y8, Y4, Y10; \
	VPMADDWD       Y14, Y10, Y10; \
	VPADDD         Y10, ACC, ACC; \
	VPMADDUBSW     Y8, Y5, Y11; \
	VPMADDWD       Y12, Y11, Y11; \
	VPADDD         Y11, ACC, ACC

// func gemvA8W4AVX2(dots *int32, codes *byte, cstride int, tables *int8, tstride int, x *int8, cols int, nstrips int)
TEXT ·gemvA8W4AVX2(SB), NOSPLIT, $0-64
	MOVQ    dots+0(FP), DI
	VMOVDQU i8k80<>(SB), Y15
	VMOVDQU i8k0f<>(SB), Y13
	VMOVDQU i8kw1<>(SB), Y12
	VMOVDQU i8kw2<>(SB), Y14

aa4_strip:
	MOVQ  nstrips+56(FP), AX
	TESTQ AX, AX
	JZ    aa4_done
	MOVQ  codes+8(FP), SI
	MOVQ  cstride+16(FP), AX
	LEAQ  (SI)(AX*1), R10
	LEAQ  (R10)(AX*1), R11
	LEAQ  (R11)(AX*1), R12
	MOVQ  tables+24(FP), R13
	MOVQ  tstride+32(FP), DX
	LEAQ  (DX)(DX*2), R14
	MOVQ  x+40(FP), R8
	MOVQ  cols+48(FP), CX
	SHRQ  $7, CX
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3

aa4_group:
	TESTQ CX, CX
	JZ    aa4_partial
	PREFETCHT0 A4PF(SI)
	PREFETCHT0 A4PF(R10)
	PREFETCHT0 A4PF(R11)
	PREFETCHT0 A4PF(R12)
	AXPREP(0)
	AROW(SI, 0, (R13), Y0)
	AROW(R10, 0, (R13)(DX*1), Y1)
	AROW(R11, 0, (R13)(DX*2), Y2)
	AROW(R12, 0, (R13)(R14*1), Y3)
	AXPREP(64)
	AROW(SI, 32, (R13), Y0)
	AROW(R10, 32, (R13)(DX*1), Y1)
	AROW(R11, 32, (R13)(DX*2), Y2)
	AROW(R12, 32, (R13)(R14*1), Y3)
	ADDQ  $64, SI
	ADDQ  $64, R10
	ADDQ  $64, R11
	ADDQ  $64, R12
	ADDQ  $128, R8
	ADDQ  $16, R13
	DECQ  CX
	JMP   aa4_group

aa4_partial:
	MOVQ cols+48(FP), BX
	SHRQ $1, BX
	ANDQ $63, BX
	CMPQ BX, $32
	JLT  aa4_p16
	AXPREP(0)
	AROW(SI, 0, (R13), Y0)
	AROW(R10, 0, (R13)(DX*1), Y1)
	AROW(R11, 0, (R13)(DX*2), Y2)
	AROW(R12, 0, (R13)(R14*1), Y3)
	ADDQ $32, SI
	ADDQ $32, R10
	ADDQ $32, R11
	ADDQ $32, R12
	ADDQ $64, R8
	SUBQ $32, BX

aa4_p16:
	TESTQ  BX, BX
	JZ     aa4_reduce
	VPXOR  (R8), Y15, Y4
	VPAND  i8k01<>(SB), Y4, Y5
	VPSRLW $1, Y4, Y4
	VPAND  i8k7f<>(SB), Y4, Y4
	AROW16(SI, (R13), Y0)
	AROW16(R10, (R13)(DX*1), Y1)
	AROW16(R11, (R13)(DX*2), Y2)
	AROW16(R12, (R13)(R14*1), Y3)

aa4_reduce:
	REDUCE4
	VMOVDQU X0, (DI)
	ADDQ    $16, DI
	MOVQ    codes+8(FP), AX
	MOVQ    cstride+16(FP), BX
	LEAQ    (AX)(BX*4), AX
	MOVQ    AX, codes+8(FP)
	MOVQ    tables+24(FP), AX
	MOVQ    tstride+32(FP), BX
	LEAQ    (AX)(BX*4), AX
	MOVQ    AX, tables+24(FP)
	MOVQ    nstrips+56(FP), AX
	DECQ    AX
	MOVQ    AX, nstrips+56(FP)
	JMP     aa4_strip

aa4_done:
	VZEROUPPER
	RET

// func streamReadAVX2(p *byte, n int) uint64 — n a multiple of 512.
TEXT ·streamReadAVX2(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	ZERO8
	XORQ AX, AX

sr2_loop:
	CMPQ   AX, CX
	JAE    sr2_end
	VPADDQ (SI)(AX*1), Y0, Y0
	VPADDQ 32(SI)(AX*1), Y1, Y1
	VPADDQ 64(SI)(AX*1), Y2, Y2
	VPADDQ 96(SI)(AX*1), Y3, Y3
	VPADDQ 128(SI)(AX*1), Y4, Y4
	VPADDQ 160(SI)(AX*1), Y5, Y5
	VPADDQ 192(SI)(AX*1), Y6, Y6
	VPADDQ 224(SI)(AX*1), Y7, Y7
	VPADDQ 256(SI)(AX*1), Y0, Y0
	VPADDQ 288(SI)(AX*1), Y1, Y1
	VPADDQ 320(SI)(AX*1), Y2, Y2
	VPADDQ 352(SI)(AX*1), Y3, Y3
	VPADDQ 384(SI)(AX*1), Y4, Y4
	VPADDQ 416(SI)(AX*1), Y5, Y5
	VPADDQ 448(SI)(AX*1), Y6, Y6
	VPADDQ 480(SI)(AX*1), Y7, Y7
	ADDQ   $512, AX
	JMP    sr2_loop

sr2_end:
	VPADDQ       Y4, Y0, Y0
	VPADDQ       Y5, Y1, Y1
	VPADDQ       Y6, Y2, Y2
	VPADDQ       Y7, Y3, Y3
	VPADDQ       Y2, Y0, Y0
	VPADDQ       Y3, Y1, Y1
	VPADDQ       Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDQ       X1, X0, X0
	VPSHUFD      $0x4e, X0, X1
	VPADDQ       X1, X0, X0
	VMOVQ        X0, AX
	MOVQ         AX, ret+16(FP)
	VZEROUPPER
	RET

// Macro checks (TestVEXMacros): acc (8 int32) += VPDPBUSD(u8 = u, s8 = s) through
// VPDPBUSD_VEX_Y with four register choices covering the R, B and vvvv bits.
#define MACROTEST(name, RA, RU, RS, NA, NU, NS) \
TEXT name(SB), NOSPLIT, $0-24; \
	MOVQ    acc+0(FP), AX; \
	MOVQ    u+8(FP), BX; \
	MOVQ    s+16(FP), CX; \
	VMOVDQU (AX), RA; \
	VMOVDQU (BX), RU; \
	VMOVDQU (CX), RS; \
	VPDPBUSD_VEX_Y(NS, NU, NA); \
	VMOVDQU RA, (AX); \
	VZEROUPPER; \
	RET

// func vexDpbusd0(acc *[8]int32, u, s *[32]byte) etc.
MACROTEST(·vexDpbusd0, Y0, Y1, Y2, 0, 1, 2)
MACROTEST(·vexDpbusd1, Y9, Y14, Y11, 9, 14, 11)
MACROTEST(·vexDpbusd2, Y3, Y12, Y13, 3, 12, 13)
MACROTEST(·vexDpbusd3, Y15, Y7, Y8, 15, 7, 8)
