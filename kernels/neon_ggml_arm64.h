// Body of the GGML Q8_0/Q4_0 kernel (included by neon_ggml_arm64.s with DOT16 bound to SDOT
// or to SMULL/SADALP, and ROWS to the Q8_0 or Q4_0 row loader). Argument frame:
// out *float32, w *byte, stride, strips, nb int, xq *byte.
// For each strip s < strips, lanes i = 0..3 compute row w + (4s+i)*stride (stride = bytes per
// row; 0 makes all four lanes compute one row) against the nb Q8_0 activation blocks of xq:
//     acc_i = fma(float32(isum_b), float32(d_w*d_x), acc_i) for b = 0..nb-1, in order,
// exactly like gemvQ8_0Generic/gemvQ4_0Generic, and stores the four sums at out + 16s.
// Registers: V0-V3 int sums, V4-V15 SMULL temporaries, V16/V17 x, V20 d_x, V21 d_w (4 lanes),
// V22-V29 row data, V18/V19/V30 constants, V31 float accumulators.
	MOVD out+0(FP), R0
	MOVD w+8(FP), R1
	MOVD stride+16(FP), R2
	MOVD strips+24(FP), R3
	MOVD nb+32(FP), R4
	MOVD xq+40(FP), R5
	VMOVI $15, V30.B16
	VMOVI $8, V19.B16

strip:
	CBZ  R3, done
	MOVD R1, R6
	ADD  R2, R6, R7
	ADD  R2, R7, R8
	ADD  R2, R8, R9
	MOVD R5, R10
	MOVD R4, R11
	VEOR V31.B16, V31.B16, V31.B16

block:
	VLD1.P 2(R10), V20.H[0]
	VLD1.P 32(R10), [V16.B16, V17.B16]
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	ROWS
	DOT16(16, 22, 0, 4, 5)
	DOT16(17, 23, 0, 6, 7)
	DOT16(16, 24, 1, 8, 9)
	DOT16(17, 25, 1, 10, 11)
	DOT16(16, 26, 2, 12, 13)
	DOT16(17, 27, 2, 14, 15)
	DOT16(16, 28, 3, 4, 5)
	DOT16(17, 29, 3, 6, 7)
	VADDP V1.S4, V0.S4, V0.S4
	VADDP V3.S4, V2.S4, V2.S4
	VADDP V2.S4, V0.S4, V0.S4
	SCVTF_4S(0, 0)
	FCVTL_4S(21, 21)
	FCVTL_4S(20, 20)
	FMUL_4S_E0(20, 21, 21)        // d = d_w * d_x, one rounding
	VFMLA V0.S4, V21.S4, V31.S4   // acc += float32(isum) * d, fused
	SUBS $1, R11, R11
	BNE  block

	VST1.P [V31.S4], 16(R0)
	ADD  R2<<2, R1, R1
	SUB  $1, R3, R3
	B    strip

done:
	RET
