// Byte encodings of VEX instructions the Go assembler cannot spell (K1, issue 3).
// Go 1.26 encodes `VPDPBUSD Y..` as EVEX (AVX512_VNNI + AVX512VL), which raises SIGILL on
// AVX-VNNI-only CPUs (Alder/Raptor/Arrow Lake...), so the AVX-VNNI path writes the
// VEX form byte by byte. Arguments are register NUMBERS (0..15) in Go operand order
// (rm, vvvv, dst), register operands only (load memory operands into a register first).
// Every macro here is exercised by TestVEXMacros against the generic twin.

// VEX3_0F38_66 emits C4 [R̄X̄B̄ 00010] [W=0 v̄v̄v̄v̄ L 01] op [11 reg rm].
#define VEX3_0F38_66(op, L, rm, v, r) \
	BYTE $0xC4; \
	BYTE $(0xE2 ^ (((r)&8)<<4) ^ (((rm)&8)<<2)); \
	BYTE $(0x01 | ((L)<<2) | ((15-(v))<<3)); \
	BYTE $(op); \
	BYTE $(0xC0 | (((r)&7)<<3) | ((rm)&7))

// {vex} vpdpbusd ymm(r), ymm(v), ymm(rm): ymm(r).dword[i] += sum_j u8(ymm(v).byte[4i+j]) * s8(ymm(rm).byte[4i+j])
#define VPDPBUSD_VEX_Y(rm, v, r) VEX3_0F38_66(0x50, 1, rm, v, r)
