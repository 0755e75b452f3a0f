// Copyright: mole authors. Encoding macros for arm64 instructions that Go's assembler
// (go1.26) does not know. Arguments are register numbers 0..31 in Go operand order:
// sources first, destination last, i.e. OP(m, n, d) encodes "op Vd, Vn, Vm".
// Every macro is executed by a test (neon_macros_test.go) against scalar Go, with low and
// high register numbers so that each bit of every register field is exercised, and its
// encoding was checked with GNU as (aarch64-linux-gnu-as -march=armv8.2-a+dotprod).
//
// Memory operands are not supported: load into registers first.

// SDOT Vd.4S, Vn.16B, Vm.16B (FEAT_DotProd): d[i] += sum_{j<4} n[4i+j]*m[4i+j], signed.
#define SDOT(m, n, d) WORD $(0x4E809400 | ((m)<<16) | ((n)<<5) | (d))

// UDOT Vd.4S, Vn.16B, Vm.16B (FEAT_DotProd): as SDOT, unsigned bytes.
#define UDOT(m, n, d) WORD $(0x6E809400 | ((m)<<16) | ((n)<<5) | (d))

// SDOT Vd.4S, Vn.16B, Vm.4B[idx] (FEAT_DotProd, by element): d[i] += sum_j n[4i+j]*m[4*idx+j].
// m may be V0..V31 (M:Rm); idx 0..3 is H:L.
#define SDOT_E(m, idx, n, d) WORD $(0x4F80E000 | (((idx)&1)<<21) | ((m)<<16) | (((idx)>>1)<<11) | ((n)<<5) | (d))

// SMULL Vd.8H, Vn.8B, Vm.8B: d[i] = int16(n[i])*int16(m[i]) for the low 8 bytes.
#define SMULL_8B(m, n, d) WORD $(0x0E20C000 | ((m)<<16) | ((n)<<5) | (d))

// SMULL2 Vd.8H, Vn.16B, Vm.16B: the same for the high 8 bytes.
#define SMULL2_16B(m, n, d) WORD $(0x4E20C000 | ((m)<<16) | ((n)<<5) | (d))

// SMLAL Vd.8H, Vn.8B, Vm.8B and SMLAL2 (high halves): d[i] += n[i]*m[i] in int16 (wraps).
#define SMLAL_8B(m, n, d) WORD $(0x0E208000 | ((m)<<16) | ((n)<<5) | (d))
#define SMLAL2_16B(m, n, d) WORD $(0x4E208000 | ((m)<<16) | ((n)<<5) | (d))

// SADALP Vd.4S, Vn.8H: d[i] += int32(n[2i]) + int32(n[2i+1]).
#define SADALP_8H(n, d) WORD $(0x4E606800 | ((n)<<5) | (d))

// FCVTL Vd.4S, Vn.4H: the low four binary16 lanes of n widened (exactly) to float32.
#define FCVTL_4S(n, d) WORD $(0x0E217800 | ((n)<<5) | (d))

// SCVTF Vd.4S, Vn.4S: int32 lanes to float32 (round to nearest even).
#define SCVTF_4S(n, d) WORD $(0x4E21D800 | ((n)<<5) | (d))

// FMUL Vd.4S, Vn.4S, Vm.4S; FMUL Vd.4S, Vn.4S, Vm.S[idx] (by element: idx 0..3 is H:L,
// m may be V0..V31); FMUL_4S_E0 is lane 0.
#define FMUL_4S(m, n, d) WORD $(0x6E20DC00 | ((m)<<16) | ((n)<<5) | (d))
#define FMUL_4S_E(m, idx, n, d) WORD $(0x4F809000 | (((idx)&1)<<21) | ((m)<<16) | (((idx)>>1)<<11) | ((n)<<5) | (d))
#define FMUL_4S_E0(m, n, d) FMUL_4S_E(m, 0, n, d)
