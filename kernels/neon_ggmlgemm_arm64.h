// Body of the GGML Q8_0/Q4_0 two-token kernel (included by neon_ggml_arm64.s with DOT16 and
// ROWS2 bound per form/format). Argument frame:
// out *float32, ostride int, w *byte, stride, nb, npairs int, xq *byte.
// One strip of four rows (w, w+stride, ...; lanes = rows) against npairs pairs of tokens:
// token 2p+j has its nb activation blocks at xq + (2p+j)*nb*34 and its four results at
// out + (2p+j)*ostride bytes. Per token and lane the float steps are those of the one-token
// kernel (d = d_w*d_x rounded once, acc = fma(float32(isum), d, acc), blocks in order).
// Registers: V0-V3 / V4-V7 int sums of tokens 0 / 1, V8-V11 SMULL temporaries, V12/V13 Q4
// constants, V14/V15 d per token, V16/V17 x of token 0, V18/V19 x of token 1, V20 d_x (H[0],
// H[1]), V21 d_w (4 lanes), V22-V29 row data, V30/V31 float accumulators of tokens 0 / 1.
	MOVD out+0(FP), R0
	MOVD ostride+8(FP), R14
	MOVD w+16(FP), R1
	MOVD stride+24(FP), R2
	MOVD nb+32(FP), R4
	MOVD npairs+40(FP), R3
	MOVD xq+48(FP), R5
	MOVD $34, R12
	MUL  R4, R12, R12          // activation bytes per token
	VMOVI $15, V12.B16
	VMOVI $8, V13.B16

pair:
	CBZ  R3, done
	MOVD R1, R6
	ADD  R2, R6, R7
	ADD  R2, R7, R8
	ADD  R2, R8, R9
	MOVD R5, R10
	ADD  R12, R10, R13
	MOVD R4, R11
	VEOR V30.B16, V30.B16, V30.B16
	VEOR V31.B16, V31.B16, V31.B16

block:
	VLD1.P 2(R10), V20.H[0]
	VLD1.P 32(R10), [V16.B16, V17.B16]
	VLD1.P 2(R13), V20.H[1]
	VLD1.P 32(R13), [V18.B16, V19.B16]
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16
	ROWS2
	DOT16(16, 22, 0, 8, 9)
	DOT16(17, 23, 0, 10, 11)
	DOT16(18, 22, 4, 8, 9)
	DOT16(19, 23, 4, 10, 11)
	DOT16(16, 24, 1, 8, 9)
	DOT16(17, 25, 1, 10, 11)
	DOT16(18, 24, 5, 8, 9)
	DOT16(19, 25, 5, 10, 11)
	DOT16(16, 26, 2, 8, 9)
	DOT16(17, 27, 2, 10, 11)
	DOT16(18, 26, 6, 8, 9)
	DOT16(19, 27, 6, 10, 11)
	DOT16(16, 28, 3, 8, 9)
	DOT16(17, 29, 3, 10, 11)
	DOT16(18, 28, 7, 8, 9)
	DOT16(19, 29, 7, 10, 11)
	VADDP V1.S4, V0.S4, V0.S4
	VADDP V3.S4, V2.S4, V2.S4
	VADDP V2.S4, V0.S4, V0.S4
	VADDP V5.S4, V4.S4, V4.S4
	VADDP V7.S4, V6.S4, V6.S4
	VADDP V6.S4, V4.S4, V4.S4
	SCVTF_4S(0, 0)
	SCVTF_4S(4, 4)
	FCVTL_4S(21, 21)
	FCVTL_4S(20, 20)
	FMUL_4S_E(20, 0, 21, 14)      // d = d_w * d_x(token 0)
	FMUL_4S_E(20, 1, 21, 15)      // d = d_w * d_x(token 1)
	VFMLA V0.S4, V14.S4, V30.S4
	VFMLA V4.S4, V15.S4, V31.S4
	SUBS $1, R11, R11
	BNE  block

	VST1 [V30.S4], (R0)
	ADD  R14, R0, R0
	VST1 [V31.S4], (R0)
	ADD  R14, R0, R0
	ADD  R12<<1, R5, R5
	SUB  $1, R3, R3
	B    pair

done:
	RET
