// Body of the MWQ dot kernels (included twice by mwq_arm64.s with PLANE_BEGIN, MASKDOT,
// PLANE_END and FINISH bound to the SDOT or the widening form). For i < n:
//   dots[i] = sum_{j<nb} 2^j sum_{k<128} x[(i%groups)*128+k] * bit_j(i, k)
// where block i's plane j is the 16 bytes at blocks + i*stride + 16*j.
// Registers: V0..V7 the group's 128 activations, V8..V15 the TBL indices, V16 the lane
// bits, V17 the current plane, V18..V21 masks, V24/V25 (and V26/V27) accumulators.
	MOVD dots+0(FP), R0
	MOVD n+8(FP), R1
	MOVD blocks+16(FP), R2
	MOVD stride+24(FP), R3
	MOVD nb+32(FP), R4
	MOVD x+40(FP), R5
	MOVD groups+48(FP), R6
	MOVD $mwqIdx<>(SB), R7
	VLD1.P 64(R7), [V8.B16, V9.B16, V10.B16, V11.B16]
	VLD1.P 64(R7), [V12.B16, V13.B16, V14.B16, V15.B16]
	VLD1   (R7), [V16.B16]
	MOVD R5, R8 // activations of block i's group
	MOVD R6, R9 // blocks left before the group index wraps to 0
	CBZ  R1, done

block:
	VLD1 (R8), [V0.B16, V1.B16, V2.B16, V3.B16]
	ADD  $64, R8, R10
	VLD1 (R10), [V4.B16, V5.B16, V6.B16, V7.B16]
	VEOR V24.B16, V24.B16, V24.B16
	VEOR V25.B16, V25.B16, V25.B16
	MOVD R4, R10 // planes left: the next is plane R10-1

plane:
	SUB  $1, R10, R10
	ADD  R10<<4, R2, R11
	VLD1 (R11), [V17.B16]
	PLANE_BEGIN
	MASKDOT(V8.B16, V0.B16, 0, V18.B16, 18, 0)
	MASKDOT(V9.B16, V1.B16, 1, V19.B16, 19, 1)
	MASKDOT(V10.B16, V2.B16, 2, V20.B16, 20, 0)
	MASKDOT(V11.B16, V3.B16, 3, V21.B16, 21, 1)
	MASKDOT(V12.B16, V4.B16, 4, V18.B16, 18, 0)
	MASKDOT(V13.B16, V5.B16, 5, V19.B16, 19, 1)
	MASKDOT(V14.B16, V6.B16, 6, V20.B16, 20, 0)
	MASKDOT(V15.B16, V7.B16, 7, V21.B16, 21, 1)
	PLANE_END
	CBNZ R10, plane

	FINISH
	MOVW.P R12, 4(R0)
	ADD  R3, R2, R2
	ADD  $128, R8, R8
	SUB  $1, R9, R9
	CBNZ R9, next
	MOVD R5, R8
	MOVD R6, R9

next:
	SUBS $1, R1, R1
	BNE  block

done:
	RET
