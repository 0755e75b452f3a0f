// Body of the int8 GEMV dot kernel (included twice by neon_int8_arm64.s with DOT16 bound to
// SDOT or to the SMULL/SADALP sequence). Argument frame: dst []int32, w []int8, x []int8.
// dst[r] = sum_k w[r*cols+k]*x[k] for r < len(dst), cols = len(x) (a positive multiple of 32).
// Four rows per pass (four weight streams, two accumulators each), then single rows.
	MOVD dst_base+0(FP), R0
	MOVD dst_len+8(FP), R3
	MOVD w_base+24(FP), R1
	MOVD x_base+48(FP), R2
	MOVD x_len+56(FP), R4

rows4:
	CMP  $4, R3
	BLT  rows1
	MOVD R1, R5
	ADD  R4, R5, R6
	ADD  R4, R6, R7
	ADD  R4, R7, R8
	MOVD R2, R9
	MOVD R4, R10
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16

loop4:
	VLD1.P 32(R9), [V16.B16, V17.B16]
	VLD1.P 32(R5), [V18.B16, V19.B16]
	VLD1.P 32(R6), [V20.B16, V21.B16]
	VLD1.P 32(R7), [V22.B16, V23.B16]
	VLD1.P 32(R8), [V24.B16, V25.B16]
	DOT16(16, 18, 0, 26, 27)
	DOT16(17, 19, 1, 28, 29)
	DOT16(16, 20, 2, 30, 31)
	DOT16(17, 21, 3, 26, 27)
	DOT16(16, 22, 4, 28, 29)
	DOT16(17, 23, 5, 30, 31)
	DOT16(16, 24, 6, 26, 27)
	DOT16(17, 25, 7, 28, 29)
	SUBS $32, R10, R10
	BNE  loop4

	VADD  V1.S4, V0.S4, V0.S4
	VADD  V3.S4, V2.S4, V2.S4
	VADD  V5.S4, V4.S4, V4.S4
	VADD  V7.S4, V6.S4, V6.S4
	VADDP V2.S4, V0.S4, V0.S4
	VADDP V6.S4, V4.S4, V4.S4
	VADDP V4.S4, V0.S4, V0.S4
	VST1.P [V0.S4], 16(R0)
	MOVD R8, R1
	SUB  $4, R3, R3
	B    rows4

rows1:
	CBZ  R3, done
	MOVD R2, R9
	MOVD R4, R10
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16

loop1:
	VLD1.P 32(R9), [V16.B16, V17.B16]
	VLD1.P 32(R1), [V18.B16, V19.B16]
	DOT16(16, 18, 0, 26, 27)
	DOT16(17, 19, 1, 28, 29)
	SUBS $32, R10, R10
	BNE  loop1

	VADD  V1.S4, V0.S4, V0.S4
	VADDV V0.S4, V0
	VMOV  V0.S[0], R11
	MOVW.P R11, 4(R0)
	SUB  $1, R3, R3
	B    rows1

done:
	RET
