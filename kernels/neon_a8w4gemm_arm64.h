// Body of the A8W4 GEMM dot kernel (included by neon_a8w4_arm64.s with DOT16 bound to SDOT or
// to SMULL/SADALP). Argument frame: dst []int32, codes []byte, tables []int8, x []int8,
// rows, cols, ntok, stride int.
// dst[t*stride+r] = sum_k table(r, k)*x[t*cols+k] for r < rows, t < ntok, with rows a
// multiple of 4 and ntok a multiple of 2 (the Go wrapper does the rest); cols a positive
// multiple of 32, layout as a8w4DotsSDOT. Blocks of 4 rows x 2 tokens: each TBL expansion
// of 16 codes feeds both tokens. acc(t, r) = V(4t+r); x: V16/V17 token 0, V18/V19 token 1;
// tables V24-V27; codes V28; lookups V29/V30; mask V31; SMULL temporaries V8-V15.
	MOVD dst_base+0(FP), R0
	MOVD codes_base+24(FP), R1
	MOVD tables_base+48(FP), R2
	MOVD x_base+72(FP), R3
	MOVD rows+96(FP), R4
	MOVD cols+104(FP), R5
	MOVD ntok+112(FP), R15
	MOVD stride+120(FP), R14
	LSL  $2, R14, R14          // dst bytes per token
	LSR  $1, R5, R6            // code bytes per row
	ADD  $127, R5, R7
	LSR  $7, R7, R7
	LSL  $4, R7, R7            // table bytes per row
	VMOVI $15, V31.B16

tok2:
	CMP  $2, R15
	BLT  done
	MOVD R1, R20
	MOVD R2, R21
	MOVD R0, R13
	MOVD R4, R19

row4:
	CMP  $4, R19
	BLT  tokend
	MOVD R20, R8
	ADD  R6, R8, R9
	ADD  R6, R9, R10
	ADD  R6, R10, R11
	MOVD R21, R12
	MOVD R3, R25
	ADD  R5, R25, R17
	MOVD R5, R22
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16

group:
	CBZ  R22, rowend
	// this group's four tables
	MOVD R12, R16
	VLD1 (R16), [V24.B16]
	ADD  R7, R16, R16
	VLD1 (R16), [V25.B16]
	ADD  R7, R16, R16
	VLD1 (R16), [V26.B16]
	ADD  R7, R16, R16
	VLD1 (R16), [V27.B16]
	ADD  $16, R12, R12
	MOVD $128, R23
	CMP  $128, R22
	CSEL LT, R22, R23, R23     // codes in this group: min(128, left)
	SUB  R23, R22, R22

chunk:
	VLD1.P 32(R25), [V16.B16, V17.B16]
	VLD1.P 32(R17), [V18.B16, V19.B16]
	VLD1.P 16(R8), [V28.B16]
	LUTT(V24.B16, 0, 4)
	VLD1.P 16(R9), [V28.B16]
	LUTT(V25.B16, 1, 5)
	VLD1.P 16(R10), [V28.B16]
	LUTT(V26.B16, 2, 6)
	VLD1.P 16(R11), [V28.B16]
	LUTT(V27.B16, 3, 7)
	SUBS $32, R23, R23
	BNE  chunk
	B    group

rowend:
	VADDP V1.S4, V0.S4, V0.S4
	VADDP V3.S4, V2.S4, V2.S4
	VADDP V2.S4, V0.S4, V0.S4
	VADDP V5.S4, V4.S4, V4.S4
	VADDP V7.S4, V6.S4, V6.S4
	VADDP V6.S4, V4.S4, V4.S4
	VST1 [V0.S4], (R13)
	ADD  R14, R13, R24
	VST1 [V4.S4], (R24)
	ADD  $16, R13, R13
	MOVD R11, R20              // codes of the next row block
	ADD  R7<<2, R21, R21       // tables of the next row block
	SUB  $4, R19, R19
	B    row4

tokend:
	ADD  R14<<1, R0, R0
	ADD  R5<<1, R3, R3
	SUB  $2, R15, R15
	B    tok2

done:
	RET
