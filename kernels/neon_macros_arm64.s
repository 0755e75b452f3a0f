//go:build !purego

// Test harness for the encoding macros of sdot_arm64.h: each function loads d, n, m
// from memory, runs one macro with fixed register numbers and stores d back. Used only by
// neon_macros_test.go; the kernels never call these.

#include "textflag.h"
#include "sdot_arm64.h"

// func macroSDOTA(d, n, m *[16]byte)
TEXT ·macroSDOTA(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V29.B16]
	VLD1 (R1), [V17.B16]
	VLD1 (R2), [V3.B16]
	SDOT(3, 17, 29)
	VST1 [V29.B16], (R0)
	RET

// func macroSDOTB(d, n, m *[16]byte)
TEXT ·macroSDOTB(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V2.B16]
	VLD1 (R1), [V14.B16]
	VLD1 (R2), [V28.B16]
	SDOT(28, 14, 2)
	VST1 [V2.B16], (R0)
	RET

// func macroUDOTA(d, n, m *[16]byte)
TEXT ·macroUDOTA(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V29.B16]
	VLD1 (R1), [V17.B16]
	VLD1 (R2), [V3.B16]
	UDOT(3, 17, 29)
	VST1 [V29.B16], (R0)
	RET

// func macroUDOTB(d, n, m *[16]byte)
TEXT ·macroUDOTB(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V2.B16]
	VLD1 (R1), [V14.B16]
	VLD1 (R2), [V28.B16]
	UDOT(28, 14, 2)
	VST1 [V2.B16], (R0)
	RET

// func macroSMULL8BA(d, n, m *[16]byte)
TEXT ·macroSMULL8BA(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V29.B16]
	VLD1 (R1), [V17.B16]
	VLD1 (R2), [V3.B16]
	SMULL_8B(3, 17, 29)
	VST1 [V29.B16], (R0)
	RET

// func macroSMULL8BB(d, n, m *[16]byte)
TEXT ·macroSMULL8BB(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V2.B16]
	VLD1 (R1), [V14.B16]
	VLD1 (R2), [V28.B16]
	SMULL_8B(28, 14, 2)
	VST1 [V2.B16], (R0)
	RET

// func macroSMULL216BA(d, n, m *[16]byte)
TEXT ·macroSMULL216BA(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V29.B16]
	VLD1 (R1), [V17.B16]
	VLD1 (R2), [V3.B16]
	SMULL2_16B(3, 17, 29)
	VST1 [V29.B16], (R0)
	RET

// func macroSMULL216BB(d, n, m *[16]byte)
TEXT ·macroSMULL216BB(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V2.B16]
	VLD1 (R1), [V14.B16]
	VLD1 (R2), [V28.B16]
	SMULL2_16B(28, 14, 2)
	VST1 [V2.B16], (R0)
	RET

// func macroSMLAL8BA(d, n, m *[16]byte)
TEXT ·macroSMLAL8BA(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V29.B16]
	VLD1 (R1), [V17.B16]
	VLD1 (R2), [V3.B16]
	SMLAL_8B(3, 17, 29)
	VST1 [V29.B16], (R0)
	RET

// func macroSMLAL8BB(d, n, m *[16]byte)
TEXT ·macroSMLAL8BB(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V2.B16]
	VLD1 (R1), [V14.B16]
	VLD1 (R2), [V28.B16]
	SMLAL_8B(28, 14, 2)
	VST1 [V2.B16], (R0)
	RET

// func macroSMLAL216BA(d, n, m *[16]byte)
TEXT ·macroSMLAL216BA(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V29.B16]
	VLD1 (R1), [V17.B16]
	VLD1 (R2), [V3.B16]
	SMLAL2_16B(3, 17, 29)
	VST1 [V29.B16], (R0)
	RET

// func macroSMLAL216BB(d, n, m *[16]byte)
TEXT ·macroSMLAL216BB(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V2.B16]
	VLD1 (R1), [V14.B16]
	VLD1 (R2), [V28.B16]
	SMLAL2_16B(28, 14, 2)
	VST1 [V2.B16], (R0)
	RET

// func macroSADALP8HA(d, n, m *[16]byte)
TEXT ·macroSADALP8HA(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V29.B16]
	VLD1 (R1), [V17.B16]
	VLD1 (R2), [V3.B16]
	SADALP_8H(17, 29)
	VST1 [V29.B16], (R0)
	RET

// func macroSADALP8HB(d, n, m *[16]byte)
TEXT ·macroSADALP8HB(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V2.B16]
	VLD1 (R1), [V14.B16]
	VLD1 (R2), [V28.B16]
	SADALP_8H(14, 2)
	VST1 [V2.B16], (R0)
	RET

// func macroSDOTEA(d, n, m *[16]byte)
TEXT ·macroSDOTEA(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V29.B16]
	VLD1 (R1), [V17.B16]
	VLD1 (R2), [V3.B16]
	SDOT_E(3, 3, 17, 29)
	VST1 [V29.B16], (R0)
	RET

// func macroSDOTEB(d, n, m *[16]byte)
TEXT ·macroSDOTEB(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V2.B16]
	VLD1 (R1), [V14.B16]
	VLD1 (R2), [V28.B16]
	SDOT_E(28, 1, 14, 2)
	VST1 [V2.B16], (R0)
	RET

// func macroSDOTEC(d, n, m *[16]byte)
TEXT ·macroSDOTEC(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V29.B16]
	VLD1 (R1), [V17.B16]
	VLD1 (R2), [V3.B16]
	SDOT_E(3, 2, 17, 29)
	VST1 [V29.B16], (R0)
	RET

// func macroSDOTED(d, n, m *[16]byte)
TEXT ·macroSDOTED(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V2.B16]
	VLD1 (R1), [V14.B16]
	VLD1 (R2), [V28.B16]
	SDOT_E(28, 0, 14, 2)
	VST1 [V2.B16], (R0)
	RET

// func macroFCVTL4SA(d, n, m *[16]byte)
TEXT ·macroFCVTL4SA(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V29.B16]
	VLD1 (R1), [V17.B16]
	VLD1 (R2), [V3.B16]
	FCVTL_4S(17, 29)
	VST1 [V29.B16], (R0)
	RET

// func macroSCVTF4SA(d, n, m *[16]byte)
TEXT ·macroSCVTF4SA(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V29.B16]
	VLD1 (R1), [V17.B16]
	VLD1 (R2), [V3.B16]
	SCVTF_4S(17, 29)
	VST1 [V29.B16], (R0)
	RET

// func macroFMUL4SA(d, n, m *[16]byte)
TEXT ·macroFMUL4SA(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V29.B16]
	VLD1 (R1), [V17.B16]
	VLD1 (R2), [V3.B16]
	FMUL_4S(3, 17, 29)
	VST1 [V29.B16], (R0)
	RET

// func macroFMUL4SE0A(d, n, m *[16]byte)
TEXT ·macroFMUL4SE0A(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V29.B16]
	VLD1 (R1), [V17.B16]
	VLD1 (R2), [V3.B16]
	FMUL_4S_E0(3, 17, 29)
	VST1 [V29.B16], (R0)
	RET

// func macroFCVTL4SB(d, n, m *[16]byte)
TEXT ·macroFCVTL4SB(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V2.B16]
	VLD1 (R1), [V14.B16]
	VLD1 (R2), [V28.B16]
	FCVTL_4S(14, 2)
	VST1 [V2.B16], (R0)
	RET

// func macroSCVTF4SB(d, n, m *[16]byte)
TEXT ·macroSCVTF4SB(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V2.B16]
	VLD1 (R1), [V14.B16]
	VLD1 (R2), [V28.B16]
	SCVTF_4S(14, 2)
	VST1 [V2.B16], (R0)
	RET

// func macroFMUL4SB(d, n, m *[16]byte)
TEXT ·macroFMUL4SB(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V2.B16]
	VLD1 (R1), [V14.B16]
	VLD1 (R2), [V28.B16]
	FMUL_4S(28, 14, 2)
	VST1 [V2.B16], (R0)
	RET

// func macroFMUL4SE0B(d, n, m *[16]byte)
TEXT ·macroFMUL4SE0B(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V2.B16]
	VLD1 (R1), [V14.B16]
	VLD1 (R2), [V28.B16]
	FMUL_4S_E0(28, 14, 2)
	VST1 [V2.B16], (R0)
	RET

// func macroFMUL4SEA(d, n, m *[16]byte)
TEXT ·macroFMUL4SEA(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V29.B16]
	VLD1 (R1), [V17.B16]
	VLD1 (R2), [V3.B16]
	FMUL_4S_E(3, 3, 17, 29)
	VST1 [V29.B16], (R0)
	RET

// func macroFMUL4SEB(d, n, m *[16]byte)
TEXT ·macroFMUL4SEB(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V2.B16]
	VLD1 (R1), [V14.B16]
	VLD1 (R2), [V28.B16]
	FMUL_4S_E(28, 1, 14, 2)
	VST1 [V2.B16], (R0)
	RET

// func macroFMUL4SEC(d, n, m *[16]byte)
TEXT ·macroFMUL4SEC(SB), NOSPLIT, $0-24
	MOVD d+0(FP), R0
	MOVD n+8(FP), R1
	MOVD m+16(FP), R2
	VLD1 (R0), [V29.B16]
	VLD1 (R1), [V17.B16]
	VLD1 (R2), [V3.B16]
	FMUL_4S_E(3, 2, 17, 29)
	VST1 [V29.B16], (R0)
	RET
