// Body of the A8W4 dot kernel (included by neon_a8w4_arm64.s with DOT16 bound to SDOT or
// to SMULL/SADALP). Argument frame: dst []int32, codes []byte, tables []int8, x []int8.
// dst[r] = sum_k tables[r][k/128][code(r,k)] * x[k], cols = len(x) a positive multiple of 32;
// a row has cols/2 code bytes (per 32 codes 16 bytes: byte j = code j | code j+16 << 4) and
// ceil(cols/128) tables of 16 int8 (a trailing partial group has its own table).
// One TBL per 16 codes turns codes into int8 weights, then SDOT against x.
// Four rows per pass, then single rows.
	MOVD dst_base+0(FP), R0
	MOVD dst_len+8(FP), R4
	MOVD codes_base+24(FP), R1
	MOVD tables_base+48(FP), R2
	MOVD x_base+72(FP), R3
	MOVD x_len+80(FP), R5
	LSR  $1, R5, R6            // code bytes per row
	ADD  $127, R5, R7
	LSR  $7, R7, R7
	LSL  $4, R7, R7            // table bytes per row
	VMOVI $15, V31.B16

row4:
	CMP  $4, R4
	BLT  row1
	MOVD R1, R8
	ADD  R6, R8, R9
	ADD  R6, R9, R10
	ADD  R6, R10, R11
	MOVD R2, R12
	ADD  R7, R12, R13
	ADD  R7, R13, R14
	ADD  R7, R14, R15
	MOVD R3, R19
	MOVD R5, R20
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16

group4:
	CMP  $128, R20
	BLT  part4
	VLD1.P 64(R19), [V16.B16, V17.B16, V18.B16, V19.B16]
	VLD1.P 64(R19), [V20.B16, V21.B16, V22.B16, V23.B16]
	VLD1.P 16(R12), [V24.B16]
	VLD1.P 64(R8), [V25.B16, V26.B16, V27.B16, V28.B16]
	LUT2(V25.B16, V24.B16, 16, 17, 0)
	LUT2(V26.B16, V24.B16, 18, 19, 0)
	LUT2(V27.B16, V24.B16, 20, 21, 0)
	LUT2(V28.B16, V24.B16, 22, 23, 0)
	VLD1.P 16(R13), [V8.B16]
	VLD1.P 64(R9), [V9.B16, V10.B16, V11.B16, V12.B16]
	LUT2(V9.B16, V8.B16, 16, 17, 1)
	LUT2(V10.B16, V8.B16, 18, 19, 1)
	LUT2(V11.B16, V8.B16, 20, 21, 1)
	LUT2(V12.B16, V8.B16, 22, 23, 1)
	VLD1.P 16(R14), [V24.B16]
	VLD1.P 64(R10), [V25.B16, V26.B16, V27.B16, V28.B16]
	LUT2(V25.B16, V24.B16, 16, 17, 2)
	LUT2(V26.B16, V24.B16, 18, 19, 2)
	LUT2(V27.B16, V24.B16, 20, 21, 2)
	LUT2(V28.B16, V24.B16, 22, 23, 2)
	VLD1.P 16(R15), [V8.B16]
	VLD1.P 64(R11), [V9.B16, V10.B16, V11.B16, V12.B16]
	LUT2(V9.B16, V8.B16, 16, 17, 3)
	LUT2(V10.B16, V8.B16, 18, 19, 3)
	LUT2(V11.B16, V8.B16, 20, 21, 3)
	LUT2(V12.B16, V8.B16, 22, 23, 3)
	SUB  $128, R20, R20
	B    group4

part4:
	// 1..3 blocks of 32 codes left, all under one (partial-group) table per row
	CBZ  R20, end4
	VLD1.P 16(R12), [V8.B16]
	VLD1.P 16(R13), [V9.B16]
	VLD1.P 16(R14), [V10.B16]
	VLD1.P 16(R15), [V11.B16]

block4:
	VLD1.P 32(R19), [V16.B16, V17.B16]
	VLD1.P 16(R8), [V25.B16]
	VLD1.P 16(R9), [V26.B16]
	VLD1.P 16(R10), [V27.B16]
	VLD1.P 16(R11), [V28.B16]
	LUT2(V25.B16, V8.B16, 16, 17, 0)
	LUT2(V26.B16, V9.B16, 16, 17, 1)
	LUT2(V27.B16, V10.B16, 16, 17, 2)
	LUT2(V28.B16, V11.B16, 16, 17, 3)
	SUBS $32, R20, R20
	BNE  block4

end4:
	VADDP V1.S4, V0.S4, V0.S4
	VADDP V3.S4, V2.S4, V2.S4
	VADDP V2.S4, V0.S4, V0.S4
	VST1.P [V0.S4], 16(R0)
	MOVD R11, R1
	MOVD R15, R2
	SUB  $4, R4, R4
	B    row4

row1:
	CBZ  R4, done
	MOVD R3, R19
	MOVD R5, R20
	VEOR V0.B16, V0.B16, V0.B16

group1:
	CMP  $128, R20
	BLT  part1
	VLD1.P 64(R19), [V16.B16, V17.B16, V18.B16, V19.B16]
	VLD1.P 64(R19), [V20.B16, V21.B16, V22.B16, V23.B16]
	VLD1.P 16(R2), [V24.B16]
	VLD1.P 64(R1), [V25.B16, V26.B16, V27.B16, V28.B16]
	LUT2(V25.B16, V24.B16, 16, 17, 0)
	LUT2(V26.B16, V24.B16, 18, 19, 0)
	LUT2(V27.B16, V24.B16, 20, 21, 0)
	LUT2(V28.B16, V24.B16, 22, 23, 0)
	SUB  $128, R20, R20
	B    group1

part1:
	CBZ  R20, end1
	VLD1.P 16(R2), [V8.B16]

block1:
	VLD1.P 32(R19), [V16.B16, V17.B16]
	VLD1.P 16(R1), [V25.B16]
	LUT2(V25.B16, V8.B16, 16, 17, 0)
	SUBS $32, R20, R20
	BNE  block1

end1:
	VADDV V0.S4, V0
	VMOV  V0.S[0], R21
	MOVW.P R21, 4(R0)
	SUB  $1, R4, R4
	B    row1

done:
	RET
