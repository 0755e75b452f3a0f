// Body of the int8 GEMM dot kernel (included by neon_int8_arm64.s with DOT16 bound to SDOT
// or to SMULL/SADALP). Argument frame: dst []int32, w []int8, x []int8, rows, cols, ntok, stride int.
// dst[t*stride+r] = sum_k w[r*cols+k]*x[t*cols+k] for r < rows, t < ntok; rows and ntok are
// multiples of 4 and cols a positive multiple of 16 (the Go wrapper does the remainders).
// Blocks of 4 rows x 4 tokens: 16 accumulators, each weight and x load used four times.
	MOVD dst_base+0(FP), R0
	MOVD w_base+24(FP), R1
	MOVD x_base+48(FP), R2
	MOVD rows+72(FP), R3
	MOVD cols+80(FP), R4
	MOVD ntok+88(FP), R15
	MOVD stride+96(FP), R14
	LSL  $2, R14, R14      // dst bytes per token

tok4:
	CMP  $4, R15
	BLT  done
	MOVD R1, R20           // first row of the row block
	MOVD R0, R13           // dst of (token block, row block)
	MOVD R3, R19           // rows left

row4:
	CMP  $4, R19
	BLT  tokend
	MOVD R20, R5
	ADD  R4, R5, R6
	ADD  R4, R6, R7
	ADD  R4, R7, R8
	MOVD R2, R9
	ADD  R4, R9, R10
	ADD  R4, R10, R11
	ADD  R4, R11, R12
	MOVD R4, R21
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16

kloop:
	VLD1.P 16(R5), [V16.B16]
	VLD1.P 16(R6), [V17.B16]
	VLD1.P 16(R7), [V18.B16]
	VLD1.P 16(R8), [V19.B16]
	VLD1.P 16(R9), [V20.B16]
	VLD1.P 16(R10), [V21.B16]
	VLD1.P 16(R11), [V22.B16]
	VLD1.P 16(R12), [V23.B16]
	DOT16(20, 16, 0, 24, 25)
	DOT16(20, 17, 1, 26, 27)
	DOT16(20, 18, 2, 28, 29)
	DOT16(20, 19, 3, 30, 31)
	DOT16(21, 16, 4, 24, 25)
	DOT16(21, 17, 5, 26, 27)
	DOT16(21, 18, 6, 28, 29)
	DOT16(21, 19, 7, 30, 31)
	DOT16(22, 16, 8, 24, 25)
	DOT16(22, 17, 9, 26, 27)
	DOT16(22, 18, 10, 28, 29)
	DOT16(22, 19, 11, 30, 31)
	DOT16(23, 16, 12, 24, 25)
	DOT16(23, 17, 13, 26, 27)
	DOT16(23, 18, 14, 28, 29)
	DOT16(23, 19, 15, 30, 31)
	SUBS $16, R21, R21
	BNE  kloop

	// per token: 4 row accumulators -> one vector [r0 r1 r2 r3]
	VADDP V1.S4, V0.S4, V0.S4
	VADDP V3.S4, V2.S4, V2.S4
	VADDP V2.S4, V0.S4, V0.S4
	VADDP V5.S4, V4.S4, V4.S4
	VADDP V7.S4, V6.S4, V6.S4
	VADDP V6.S4, V4.S4, V4.S4
	VADDP V9.S4, V8.S4, V8.S4
	VADDP V11.S4, V10.S4, V10.S4
	VADDP V10.S4, V8.S4, V8.S4
	VADDP V13.S4, V12.S4, V12.S4
	VADDP V15.S4, V14.S4, V14.S4
	VADDP V14.S4, V12.S4, V12.S4
	VST1 [V0.S4], (R13)
	ADD  R14, R13, R22
	VST1 [V4.S4], (R22)
	ADD  R14, R22, R22
	VST1 [V8.S4], (R22)
	ADD  R14, R22, R22
	VST1 [V12.S4], (R22)
	ADD  $16, R13, R13
	MOVD R8, R20
	SUB  $4, R19, R19
	B    row4

tokend:
	ADD  R14<<2, R0, R0
	ADD  R4<<2, R2, R2
	SUB  $4, R15, R15
	B    tok4

done:
	RET
