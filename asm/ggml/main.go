// Command ggml generates kernels/ggml_amd64.s: GEMV and GEMM kernels for llama.cpp's Q8_0
// and Q4_0 weight blocks against activations quantised to Q8_0 blocks. The
// blocked GEMMs (AVX-512 and AVX-VNNI) are described at gemmPrep and gemmPrepVNNI below.
//
// Every GEMV kernel computes four rows (a strip) at a time and loops over strips:
//
//	func gemvQ8_0AVX512(out *float32, w *byte, stride, strips, nb int, xq *byte)
//
// out receives 4*strips floats; row r of strip s starts at w + (4s+r)*stride; a row is
// nb blocks; xq holds nb activation blocks (f16 d + 32 int8). Per block and row the
// exact int32 dot product is formed, the four rows' sums are reduced into one xmm
// (lane r = row r), converted to float and accumulated with one FMA by d_w*d_x:
//
//	acc[r] = fma(float32(isum[r]), float32(d_w[r]*d_x), acc[r])
//
// in block order, which is exactly what the pure-Go twin in kernels/ggml_generic.go
// does, so every path returns bit-identical floats.
//
// Paths (same code shape, different int8 product):
//   - AVX512: EVEX VPDPBUSD on ymm (AVX512_VNNI + VL).
//   - AVXVNNI: VEX VPDPBUSD on ymm, BYTE-encoded through the VPDPBUSD_VEX_Y macro of
//     kernels/vexmacros_amd64.h (Go's assembler only emits the EVEX form).
//   - AVX2: VPMADDUBSW + VPMADDWD.
//
// Q8_0 uses the sign trick (|w| as the unsigned operand, x*sign(w) as the signed one);
// activations never hold -128 (QuantizeQ8_0Act rounds into [-127, 127]), so it is exact.
// Q4_0 on VNNI loads the 16 code bytes into both halves of a ymm and masks them with
// [0x0F x16 | 0xF0 x16]: the low half holds the low nibbles (elements 0..15), the high
// half 16 x the high nibbles (elements 16..31). The -8 offset comes from starting each
// accumulator at -(8*x) (low half) / -(128*x) (high half) pair sums, and the high half
// is shifted right by 4 (exact) after the reduction. On AVX2 the nibbles are unpacked
// and the offset is subtracted from the int16 pair sums.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/ir"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/pass"
	"github.com/mmcloughlin/avo/printer"
	"github.com/mmcloughlin/avo/reg"
)

const vexHeader = "vexmacros_amd64.h"

var c = build.NewContext()

type isa int

const (
	avx2 isa = iota
	avxvnni
	avx512
)

var isaName = map[isa]string{avx2: "AVX2", avxvnni: "AVXVNNI", avx512: "AVX512"}

// Physical registers are used throughout: the AVX-VNNI macro takes register numbers.
var (
	out, w, stride, strips, nb, xq = reg.RDI, reg.RSI, reg.RBX, reg.RCX, reg.RDX, reg.R8
	rowp, cnt, xp, stride3         = reg.R9, reg.R10, reg.R11, reg.R12
)

var ys = []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7, reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15}
var xs = []reg.VecPhysical{reg.X0, reg.X1, reg.X2, reg.X3, reg.X4, reg.X5, reg.X6, reg.X7, reg.X8, reg.X9, reg.X10, reg.X11, reg.X12, reg.X13, reg.X14, reg.X15}

// dpbusd emits dst += u8(u) . s8(s) (dword sums of 4 byte products), on ymm.
func dpbusd(k isa, s, u, dst int) {
	switch k {
	case avx512:
		c.VPDPBUSD(ys[s], ys[u], ys[dst])
	case avxvnni:
		c.Instruction(&ir.Instruction{
			Opcode:  fmt.Sprintf("VPDPBUSD_VEX_Y(%d, %d, %d)", s, u, dst),
			Inputs:  []Op{ys[s], ys[u], ys[dst]},
			Outputs: []Op{ys[dst]},
		})
	default:
		panic("dpbusd on " + isaName[k])
	}
}

func rowMem(r int, disp int) Mem {
	m := Mem{Base: rowp, Disp: disp}
	switch r {
	case 1:
		m.Index, m.Scale = stride, 1
	case 2:
		m.Index, m.Scale = stride, 2
	case 3:
		m.Index, m.Scale = stride3, 1
	}
	return m
}

var (
	constMaskQ4VNNI Mem // [0x0F x16 | 0xF0 x16]
	constEightsVNNI Mem // [8 x16 | 128 x16]
	constLow4       Mem // 0x0F x32
	constEights     Mem // 8 x32
	constSign       Mem // 0x80 x32
	constOnes16     Mem // int16 1 x16
)

func globals() {
	bytes32 := func(name string, f func(i int) byte) Mem {
		m := c.StaticGlobal(name)
		c.DataAttributes(attr.RODATA | attr.NOPTR)
		for i := 0; i < 32; i++ {
			c.AddDatum(i, U8(f(i)))
		}
		return m
	}
	constMaskQ4VNNI = bytes32("ggmlMaskQ4VNNI", func(i int) byte {
		if i < 16 {
			return 0x0F
		}
		return 0xF0
	})
	constEightsVNNI = bytes32("ggmlEightsVNNI", func(i int) byte {
		if i < 16 {
			return 8
		}
		return 128
	})
	constLow4 = bytes32("ggmlLow4", func(int) byte { return 0x0F })
	constEights = bytes32("ggmlEights", func(int) byte { return 8 })
	constSign = bytes32("ggmlSign", func(int) byte { return 0x80 })
	constOnes16 = bytes32("ggmlOnes16", func(i int) byte {
		if i%2 == 0 {
			return 1
		}
		return 0
	})
}

// gemv emits one kernel. q4 selects Q4_0 weights (18-byte blocks) instead of Q8_0 (34).
func gemv(k isa, q4 bool) {
	typ := "Q8_0"
	blk := 34
	if q4 {
		typ, blk = "Q4_0", 18
	}
	name := "gemv" + typ + isaName[k]
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(out *float32, w *byte, stride, strips, nb int, xq *byte)")
	c.Pragma("noescape")
	c.Commentf("%s: %s weights x Q8_0 activations, 4 rows per strip.", isaName[k], typ)
	c.Load(c.Param("out"), out)
	c.Load(c.Param("w"), w)
	c.Load(c.Param("stride"), stride)
	c.Load(c.Param("strips"), strips)
	c.Load(c.Param("nb"), nb)
	c.Load(c.Param("xq"), xq)
	c.LEAQ(Mem{Base: stride, Index: stride, Scale: 2}, stride3)

	// Constants: Y9 mask, Y10 eights or ones, Y11 zero, Y12 ones (AVX2 Q4_0).
	switch {
	case k != avx2 && q4:
		c.VMOVDQU(constMaskQ4VNNI, ys[9])
		c.VMOVDQU(constEightsVNNI, ys[10])
		c.VPXOR(ys[11], ys[11], ys[11])
	case k == avx2 && q4:
		c.VMOVDQU(constLow4, ys[9])
		c.VMOVDQU(constEights, ys[10])
		c.VMOVDQU(constOnes16, ys[12])
	case k == avx2:
		c.VMOVDQU(constOnes16, ys[10])
	}

	c.Label(name + "_strip")
	c.VXORPS(xs[15], xs[15], xs[15])
	c.MOVQ(w, rowp)
	c.MOVQ(xq, xp)
	c.MOVQ(nb, cnt)

	c.Label(name + "_block")
	// Scales: X13 = d_w of the four rows * d_x.
	c.VPBROADCASTW(rowMem(0, 0), xs[13])
	c.VPINSRW(U8(1), rowMem(1, 0), xs[13], xs[13])
	c.VPINSRW(U8(2), rowMem(2, 0), xs[13], xs[13])
	c.VPINSRW(U8(3), rowMem(3, 0), xs[13], xs[13])
	c.VCVTPH2PS(xs[13], xs[13])
	c.VPBROADCASTW(Mem{Base: xp}, xs[14])
	c.VCVTPH2PS(xs[14], xs[14])
	c.VMULPS(xs[14], xs[13], xs[13])

	// Activations.
	c.VMOVDQU(Mem{Base: xp, Disp: 2}, ys[0])

	switch {
	case !q4:
		for r := 0; r < 4; r++ {
			acc := 4 + r
			c.VMOVDQU(rowMem(r, 2), ys[1])
			c.VPABSB(ys[1], ys[2])
			c.VPSIGNB(ys[1], ys[0], ys[3])
			if k == avx2 {
				c.VPMADDUBSW(ys[3], ys[2], ys[acc])
				c.VPMADDWD(ys[10], ys[acc], ys[acc])
			} else {
				c.VPXOR(ys[acc], ys[acc], ys[acc])
				dpbusd(k, 3, 2, acc)
			}
		}
	case k != avx2:
		// Y8 = -(pair sums of [8 x | 128 x]).
		c.VPXOR(ys[8], ys[8], ys[8])
		dpbusd(k, 0, 10, 8)
		c.VPSUBD(ys[8], ys[11], ys[8])
		for r := 0; r < 4; r++ {
			acc := 4 + r
			c.VBROADCASTI128(rowMem(r, 2), ys[1])
			c.VPAND(ys[9], ys[1], ys[1])
			c.VMOVDQA(ys[8], ys[acc])
			dpbusd(k, 0, 1, acc)
		}
	default:
		// Y8 = int16 pair sums of 8*x.
		c.VPMADDUBSW(ys[0], ys[10], ys[8])
		for r := 0; r < 4; r++ {
			acc := 4 + r
			c.VBROADCASTI128(rowMem(r, 2), ys[1])
			c.VPSRLW(U8(4), ys[1], ys[2])
			c.VPBLENDD(U8(0xF0), ys[2], ys[1], ys[1])
			c.VPAND(ys[9], ys[1], ys[1])
			c.VPMADDUBSW(ys[0], ys[1], ys[acc])
			c.VPSUBW(ys[8], ys[acc], ys[acc])
			c.VPMADDWD(ys[12], ys[acc], ys[acc])
		}
	}

	// Reduce Y4..Y7 into X4 = [row0, row1, row2, row3].
	c.VPHADDD(ys[5], ys[4], ys[4])
	c.VPHADDD(ys[7], ys[6], ys[6])
	c.VPHADDD(ys[6], ys[4], ys[4])
	c.VEXTRACTI128(U8(1), ys[4], xs[5])
	if q4 && k != avx2 {
		c.VPSRAD(U8(4), xs[5], xs[5])
	}
	c.VPADDD(xs[5], xs[4], xs[4])
	c.VCVTDQ2PS(xs[4], xs[4])
	c.VFMADD231PS(xs[13], xs[4], xs[15])

	c.ADDQ(U32(blk), rowp)
	c.ADDQ(U32(34), xp)
	c.DECQ(cnt)
	c.JNZ(LabelRef(name + "_block"))

	c.VMOVUPS(xs[15], Mem{Base: out})
	c.ADDQ(U32(16), out)
	c.LEAQ(Mem{Base: w, Index: stride, Scale: 4}, w)
	c.DECQ(strips)
	c.JNZ(LabelRef(name + "_strip"))
	c.VZEROUPPER()
	c.RET()
}

// ---------------------------------------------------------------------------------------
// Blocked GEMM (AVX-512): tokens in the lanes.
//
// The GEMV above reduces every (row, block) dot product horizontally; a GEMM built from it
// spends most of its time in reductions and reloads every weight block once per token.
// Here the activations of a group of 16 tokens are prepared once per call (gemmPrepQ8Act)
// so that lane i of a zmm holds token i: per block b, eight vectors xT[j] (lane i = bytes
// 4j..4j+3 of token i's 32 values), the correction vector -c*sum(x) (c = 128 for Q8_0
// weights, 8 for Q4_0) and the 16 scales d_x as float32. A weight dword (4 bytes of one
// row) is broadcast to all lanes as VPDPBUSD's unsigned operand: Q8_0 as w XOR 0x80 =
// w+128 (hence -128*sum(x)), Q4_0 as its low or high nibbles (q, hence -8*sum(x)); the
// activations are the signed operand, so any int8 value is exact. Starting each block's
// int32 accumulator at the correction gives the block's exact dot product in every lane,
// and the float step is the GEMV's, per lane:
//
//	acc = fma(float32(isum), d_w*d_x, acc)     (VMULPS dw, dx; VFMADD231PS)
//
// in block order from +0, so each output is bit-identical to GemvQ8_0/GemvQ4_0.
//
// Prepared layout (gemmPrepBytes per group and block): [b][g] of
//
//	8 x 64 bytes xT[j] | 64 bytes int32 correction | 64 bytes float32 d_x
//
// so that the groups of one block are adjacent (one stream for a tile of groups).
//
// gemmQ8_0R4M3AVX512(out, ostride, w, rb, nstrips, xp, bstride, nb, tmask): R rows x M
// groups of 16 tokens per register tile (R*M int32 and R*M float accumulators), looping
// over nstrips strips of R rows (row r of strip s at w + (R*s+r)*rb). Output (row r,
// token 16v+i) goes to out[(16v+i)*ostride + R*s + r] through a scatter; the lanes of the
// last group are masked by tmask.
// ---------------------------------------------------------------------------------------

const gemmPrepBytes = 640

var (
	constIota  Mem // int32 0..15
	constPermA Mem // qword indices 0,1,8,9,4,5,12,13
	constPermB Mem // qword indices 2,3,10,11,6,7,14,15
)

func gemmGlobals() {
	dwords := func(name string, v []uint32) Mem {
		m := c.StaticGlobal(name)
		c.DataAttributes(attr.RODATA | attr.NOPTR)
		for i, x := range v {
			c.AddDatum(4*i, U32(x))
		}
		return m
	}
	var iota []uint32
	for i := 0; i < 16; i++ {
		iota = append(iota, uint32(i))
	}
	constIota = dwords("ggmlIota", iota)
	qw := func(v ...uint32) []uint32 {
		var r []uint32
		for _, x := range v {
			r = append(r, x, 0)
		}
		return r
	}
	constPermA = dwords("ggmlPermA", qw(0, 1, 8, 9, 4, 5, 12, 13))
	constPermB = dwords("ggmlPermB", qw(2, 3, 10, 11, 6, 7, 14, 15))
}

var zs = []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7, reg.Z8, reg.Z9, reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15,
	reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20, reg.Z21, reg.Z22, reg.Z23, reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31}

// gemmPrep emits gemmPrepActAVX512(xp *byte, bstride int, xq *byte, xb, ngroups, nb int, c uint8):
// prepares ngroups groups of 16 tokens (token i of group g at xq + (16g+i)*xb) into xp
// (group g, block b at xp + b*bstride + g*gemmPrepBytes). c is the correction factor
// (128 for Q8_0 weights, 8 for Q4_0).
func gemmPrep() {
	name := "gemmPrepActAVX512"
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(xp *byte, bstride int, xq *byte, xb, ngroups, nb int, c uint8)")
	c.Pragma("noescape")
	c.Comment("Prepare Q8_0 activations for the blocked GEMM: tokens in the lanes.")
	xp, bstride, xq, xb, ngroups, nb := reg.RDI, reg.RBX, reg.RSI, reg.RCX, reg.RDX, reg.R8
	xb3, xb5, xb7, p0, p8, cnt, dst, _ := reg.R9, reg.R10, reg.R11, reg.R12, reg.R13, reg.R14, reg.RAX, reg.RBP
	c.Load(c.Param("xp"), xp)
	c.Load(c.Param("bstride"), bstride)
	c.Load(c.Param("xq"), xq)
	c.Load(c.Param("xb"), xb)
	c.Load(c.Param("ngroups"), ngroups)
	c.Load(c.Param("nb"), nb)
	c.Load(c.Param("c"), reg.AL)
	c.MOVBLZX(reg.AL, reg.EAX)
	c.VPBROADCASTB(reg.EAX, zs[31]) // correction bytes (u8)
	c.LEAQ(Mem{Base: xb, Index: xb, Scale: 2}, xb3)
	c.LEAQ(Mem{Base: xb, Index: xb, Scale: 4}, xb5)
	c.LEAQ(Mem{Base: xb3, Index: xb, Scale: 4}, xb7)
	// Z30: gather indices i*xb; Z29, Z28: qword permutations; Z27: zero.
	c.VPBROADCASTD(reg.ECX, zs[30])
	c.VPMULLD(constIota, zs[30], zs[30])
	c.VMOVDQU64(constPermA, zs[29])
	c.VMOVDQU64(constPermB, zs[28])
	c.VPXORD(zs[27], zs[27], zs[27])

	off := func(base reg.Register, k int, disp int) Mem {
		m := Mem{Base: base, Disp: disp}
		switch k {
		case 1:
			m.Index, m.Scale = xb, 1
		case 2:
			m.Index, m.Scale = xb, 2
		case 3:
			m.Index, m.Scale = xb3, 1
		case 4:
			m.Index, m.Scale = xb, 4
		case 5:
			m.Index, m.Scale = xb5, 1
		case 6:
			m.Index, m.Scale = xb3, 2
		case 7:
			m.Index, m.Scale = xb7, 1
		}
		return m
	}

	c.Label(name + "_group")
	c.MOVQ(xq, p0)
	c.LEAQ(Mem{Base: xq, Index: xb, Scale: 8}, p8)
	c.MOVQ(xp, dst)
	c.MOVQ(nb, cnt)
	c.Label(name + "_block")
	// Z0..Z7: [token k | token k+8], the 32 values of the block.
	for k := 0; k < 8; k++ {
		c.VMOVDQU(off(p0, k, 2), ys[k])
		c.VINSERTI64X4(U8(1), off(p8, k, 2), zs[k], zs[k])
	}
	// Dword interleave of token pairs, then qword interleave of pairs of pairs.
	for k := 0; k < 8; k += 2 {
		c.VPUNPCKLDQ(zs[k+1], zs[k], zs[8+k])
		c.VPUNPCKHDQ(zs[k+1], zs[k], zs[9+k])
	}
	// Z8=L01 Z9=H01 Z10=L23 Z11=H23 Z12=L45 Z13=H45 Z14=L67 Z15=H67
	// Q[q][a] (q: tokens 0-3 / 4-7, a: dword in 128-bit lane) -> Z16..Z23 = Q0a0..Q0a3, Q1a0..Q1a3
	for q := 0; q < 2; q++ {
		l0, h0, l1, h1 := zs[8+4*q], zs[9+4*q], zs[10+4*q], zs[11+4*q]
		c.VPUNPCKLQDQ(l1, l0, zs[16+4*q])
		c.VPUNPCKHQDQ(l1, l0, zs[17+4*q])
		c.VPUNPCKLQDQ(h1, h0, zs[18+4*q])
		c.VPUNPCKHQDQ(h1, h0, zs[19+4*q])
	}
	// xT[a] = permA(Q0a, Q1a), xT[4+a] = permB(Q0a, Q1a): Z0..Z7.
	for a := 0; a < 4; a++ {
		c.VMOVDQA64(zs[16+a], zs[a])
		c.VPERMT2Q(zs[20+a], zs[29], zs[a])
		c.VMOVDQA64(zs[16+a], zs[4+a])
		c.VPERMT2Q(zs[20+a], zs[28], zs[4+a])
	}
	// Correction: -(c * sum x) per lane.
	c.VPXORD(zs[8], zs[8], zs[8])
	c.VPXORD(zs[9], zs[9], zs[9])
	for j := 0; j < 8; j++ {
		c.VPDPBUSD(zs[j], zs[31], zs[8+j%2])
		c.VMOVDQU32(zs[j], Mem{Base: dst, Disp: 64 * j})
	}
	c.VPADDD(zs[9], zs[8], zs[8])
	c.VPSUBD(zs[8], zs[27], zs[8])
	c.VMOVDQU32(zs[8], Mem{Base: dst, Disp: 512})
	// d_x: gather the dwords at the block starts, keep their low halves, convert.
	c.KXNORW(reg.K1, reg.K1, reg.K1)
	c.VPXORD(zs[10], zs[10], zs[10])
	c.VPGATHERDD(Mem{Base: p0, Index: zs[30], Scale: 1}, reg.K1, zs[10])
	c.VPMOVDW(zs[10], ys[10])
	c.VCVTPH2PS(ys[10], zs[10])
	c.VMOVUPS(zs[10], Mem{Base: dst, Disp: 576})

	c.ADDQ(U32(34), p0)
	c.ADDQ(U32(34), p8)
	c.ADDQ(bstride, dst)
	c.DECQ(cnt)
	c.JNZ(LabelRef(name + "_block"))

	c.LEAQ(Mem{Base: xq, Index: xb, Scale: 8}, xq)
	c.LEAQ(Mem{Base: xq, Index: xb, Scale: 8}, xq)
	c.ADDQ(U32(gemmPrepBytes), xp)
	c.DECQ(ngroups)
	c.JNZ(LabelRef(name + "_group"))
	c.VZEROUPPER()
	c.RET()
}

// gemmPrepW emits gemmPrepWQ8_0AVX512 / gemmPrepWQ4_0AVX512(wp *byte, w *byte, rb, rows, nb int):
// rewrites rows rows of weight blocks (row r at w + r*rb) into the unsigned form the GEMM
// broadcasts, one row per gemmWRowBytes(nb) = nb*36 bytes at wp: nb blocks of 32 bytes
// (Q8_0: w XOR 0x80 = w+128; Q4_0: the codes 0..15 in element order), then the nb
// scales d_w as float32. The VPDPBUSD operand then is a plain broadcast load, which costs
// no vector ALU slot.
//
// With signed set (gemmPrepWSQ8_0AVX2 / gemmPrepWSQ4_0AVX2, for the AVX2 GEMM's sign trick)
// the 32 bytes are the signed weights: w itself, or q-8.
func gemmPrepW(q4, signed bool) {
	typ, blk := "Q8_0", 34
	if q4 {
		typ, blk = "Q4_0", 18
	}
	name := "gemmPrepW" + typ + "AVX512"
	if signed {
		name = "gemmPrepWS" + typ + "AVX2"
	}
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(wp *byte, w *byte, rb, rows, nb int)")
	c.Pragma("noescape")
	c.Commentf("Prepare %s weight rows for the blocked GEMM.", typ)
	wp, w, rb, rows, nb := reg.RDI, reg.RSI, reg.RBX, reg.RCX, reg.RDX
	src, dst, dwp, cnt := reg.R8, reg.R9, reg.R10, reg.R11
	c.Load(c.Param("wp"), wp)
	c.Load(c.Param("w"), w)
	c.Load(c.Param("rb"), rb)
	c.Load(c.Param("rows"), rows)
	c.Load(c.Param("nb"), nb)
	if q4 {
		c.VMOVDQU(constLow4, ys[9])
	} else {
		c.VMOVDQU(constSign, ys[9]) // a VEX load: this kernel also serves the AVX-VNNI path
	}
	c.Label(name + "_row")
	c.MOVQ(w, src)
	c.MOVQ(wp, dst)
	c.MOVQ(nb, dwp)
	c.SHLQ(U8(5), dwp)
	c.ADDQ(wp, dwp)
	c.MOVQ(nb, cnt)
	c.Label(name + "_block")
	if q4 {
		c.VMOVDQU(Mem{Base: src, Disp: 2}, xs[0])
		c.VPSRLW(U8(4), xs[0], xs[1])
		c.VINSERTI128(U8(1), xs[1], ys[0], ys[0])
		c.VPAND(ys[9], ys[0], ys[0])
		if signed {
			c.VPSUBB(constEights, ys[0], ys[0])
		}
	} else {
		c.VMOVDQU(Mem{Base: src, Disp: 2}, ys[0])
		if !signed {
			c.VPXOR(ys[9], ys[0], ys[0])
		}
	}
	c.VMOVDQU(ys[0], Mem{Base: dst})
	c.MOVWLZX(Mem{Base: src}, reg.EAX)
	c.VMOVD(reg.EAX, xs[2])
	c.VCVTPH2PS(xs[2], xs[2])
	c.VMOVSS(xs[2], Mem{Base: dwp})
	c.ADDQ(U32(blk), src)
	c.ADDQ(U32(32), dst)
	c.ADDQ(U32(4), dwp)
	c.DECQ(cnt)
	c.JNZ(LabelRef(name + "_block"))
	c.ADDQ(rb, w)
	c.MOVQ(dwp, wp)
	c.DECQ(rows)
	c.JNZ(LabelRef(name + "_row"))
	c.VZEROUPPER()
	c.RET()
}

// gemmKernel emits gemmR{R}M{M}AVX512(out, ostride, wp, rs, nstrips, xp, bstride, nb, tmask, fs, flags):
// the register tile of R prepared weight rows (gemmPrepW, row r of strip s at
// wp + (R*s+r)*rs) x M groups of 16 prepared tokens (gemmPrep, group v at xp + v*640,
// block b at + b*bstride). Per block: R*M int32 accumulators start at the tokens'
// correction, take 8 VPDPBUSD each (weight dword broadcast from memory as the unsigned
// operand, xT[j] as the signed one), and each float accumulator takes one FMA by
// d_w*d_x. The output (row r, token 16v+i) goes to out[(16v+i)*ostride + R*s + r]
// through a scatter; tmask masks the lanes of the last group. For rows longer than a token
// block's budget the caller splits the blocks into chunks: flags&1 starts each strip from
// the float sums saved at fs (R*M zmm per strip, strip after strip) instead of +0, and
// flags&2 saves them there instead of scattering them; the FMA sequence per output is
// unchanged.
func gemmKernel(R, M int) {
	name := fmt.Sprintf("gemmR%dM%dAVX512", R, M)
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(out *float32, ostride int, wp *byte, rs, nstrips int, xp *byte, bstride, nb int, tmask uint16, fs *float32, flags int)")
	c.Pragma("noescape")
	c.Commentf("AVX512: prepared weights x prepared activations, %d rows x %d groups of 16 tokens.", R, M)
	out, w, rb, nstrips, xp, bstride, nb := reg.RDI, reg.RSI, reg.RBX, reg.RCX, reg.R8, reg.R13, reg.RDX
	rb3, rowp, cnt, xpp, dwp := reg.R12, reg.R9, reg.R10, reg.R11, reg.R14
	rb5 := reg.RAX // ostride is reloaded for the scatter
	c.Load(c.Param("out"), out)
	c.Load(c.Param("wp"), w)
	c.Load(c.Param("rs"), rb)
	c.Load(c.Param("nstrips"), nstrips)
	c.Load(c.Param("xp"), xp)
	c.Load(c.Param("bstride"), bstride)
	c.Load(c.Param("nb"), nb)
	c.Load(c.Param("tmask"), reg.R9W)
	c.KMOVW(reg.R9L, reg.K2)
	c.LEAQ(Mem{Base: rb, Index: rb, Scale: 2}, rb3)
	setRb5 := func() {
		if R > 4 {
			c.LEAQ(Mem{Base: rb, Index: rb, Scale: 4}, rb5)
		}
	}
	setRb5()
	row := func(base reg.Register, r, disp int) Mem {
		m := Mem{Base: base, Disp: disp}
		switch r {
		case 0:
		case 1:
			m.Index, m.Scale = rb, 1
		case 2:
			m.Index, m.Scale = rb, 2
		case 3:
			m.Index, m.Scale = rb3, 1
		case 4:
			m.Index, m.Scale = rb, 4
		case 5:
			m.Index, m.Scale = rb5, 1
		default:
			panic("row")
		}
		return m
	}
	I := func(r, v int) reg.VecPhysical { return zs[r*M+v] }
	F := func(r, v int) reg.VecPhysical { return zs[R*M+r*M+v] }
	X := func(v int) reg.VecPhysical { return zs[2*R*M+v] }
	DX := func(v int) reg.VecPhysical { return zs[2*R*M+M+v] }
	wb, dw, d := zs[29], zs[30], zs[31]
	if 2*R*M+2*M > 29 {
		panic("gemm tile too large")
	}

	c.Label(name + "_strip")
	// flags&1: continue the float sums saved in fs (a later chunk of blocks); else from +0.
	c.Load(c.Param("flags"), rowp)
	c.TESTQ(U32(1), rowp)
	c.JZ(LabelRef(name + "_zero"))
	c.Load(c.Param("fs"), rowp)
	for r := 0; r < R; r++ {
		for v := 0; v < M; v++ {
			c.VMOVUPS(Mem{Base: rowp, Disp: 64 * (r*M + v)}, F(r, v))
		}
	}
	c.JMP(LabelRef(name + "_zerodone"))
	c.Label(name + "_zero")
	for r := 0; r < R; r++ {
		for v := 0; v < M; v++ {
			c.VPXORD(F(r, v), F(r, v), F(r, v))
		}
	}
	c.Label(name + "_zerodone")
	c.MOVQ(w, rowp)
	c.MOVQ(nb, dwp)
	c.SHLQ(U8(5), dwp)
	c.ADDQ(w, dwp)
	c.MOVQ(xp, xpp)
	c.MOVQ(nb, cnt)

	c.Label(name + "_block")
	for v := 0; v < M; v++ {
		c.VMOVUPS(Mem{Base: xpp, Disp: v*gemmPrepBytes + 576}, DX(v))
		for r := 0; r < R; r++ {
			c.VMOVDQU32(Mem{Base: xpp, Disp: v*gemmPrepBytes + 512}, I(r, v))
		}
	}
	for j := 0; j < 8; j++ {
		for v := 0; v < M; v++ {
			c.VMOVDQU32(Mem{Base: xpp, Disp: v*gemmPrepBytes + 64*j}, X(v))
		}
		for r := 0; r < R; r++ {
			c.VPBROADCASTD(row(rowp, r, 4*j), wb)
			for v := 0; v < M; v++ {
				c.VPDPBUSD(X(v), wb, I(r, v))
			}
		}
	}
	for r := 0; r < R; r++ {
		c.VBROADCASTSS(row(dwp, r, 0), dw)
		for v := 0; v < M; v++ {
			c.VCVTDQ2PS(I(r, v), I(r, v))
			c.VMULPS(DX(v), dw, d)
			c.VFMADD231PS(d, I(r, v), F(r, v))
		}
	}
	c.ADDQ(U32(32), rowp)
	c.ADDQ(U32(4), dwp)
	c.ADDQ(bstride, xpp)
	c.DECQ(cnt)
	c.JNZ(LabelRef(name + "_block"))

	// flags&2: save the float sums to fs (more chunks of blocks follow) instead of storing.
	c.Load(c.Param("flags"), rowp)
	c.TESTQ(U32(2), rowp)
	c.JZ(LabelRef(name + "_scatter"))
	c.Load(c.Param("fs"), cnt)
	for r := 0; r < R; r++ {
		for v := 0; v < M; v++ {
			c.VMOVUPS(F(r, v), Mem{Base: cnt, Disp: 64 * (r*M + v)})
		}
	}
	c.JMP(LabelRef(name + "_advance"))

	// Scatter: lane i of F(r, v) -> out[(16v+i)*ostride + r].
	c.Label(name + "_scatter")
	idx, outp := X(0), dwp
	c.Load(c.Param("ostride"), reg.RAX)
	c.VPBROADCASTD(reg.EAX, idx)
	c.VPMULLD(constIota, idx, idx)
	c.SHLQ(U8(6), reg.RAX) // ostride*64 bytes: 16 tokens of floats
	c.MOVQ(out, outp)
	for v := 0; v < M; v++ {
		for r := 0; r < R; r++ {
			if v == M-1 {
				c.KMOVW(reg.K2, reg.K1)
			} else {
				c.KXNORW(reg.K1, reg.K1, reg.K1)
			}
			c.VPSCATTERDD(F(r, v), reg.K1, Mem{Base: outp, Index: idx, Scale: 4, Disp: 4 * r})
		}
		if v < M-1 {
			c.ADDQ(reg.RAX, outp)
		}
	}
	c.Label(name + "_advance")
	c.TESTQ(U32(3), rowp)
	c.JZ(LabelRef(name + "_next"))
	c.Load(c.Param("fs"), cnt)
	c.ADDQ(U32(64*R*M), cnt)
	c.Store(cnt, c.Param("fs"))
	c.Label(name + "_next")
	c.ADDQ(U32(4*R), out)
	switch R {
	case 1:
		c.ADDQ(rb, w)
	case 6:
		c.LEAQ(Mem{Base: w, Index: rb3, Scale: 2}, w)
	default:
		panic("R")
	}
	setRb5()
	c.DECQ(nstrips)
	c.JNZ(LabelRef(name + "_strip"))
	c.VZEROUPPER()
	c.RET()
}

// gemmTiles lists the (R, M) register tiles emitted; kernels/ggml_amd64.go dispatches on
// the same list.
var gemmTiles = [][2]int{{6, 1}, {6, 2}, {1, 1}, {1, 2}}

// ---------------------------------------------------------------------------------------
// Blocked GEMM on AVX-VNNI (ymm, VEX; 16 registers): the same scheme with groups of 8
// tokens. gemmPrepActAVXVNNI prepares [b][g] records of 320 bytes (8 x 32 bytes xT[j],
// 32 bytes int32 correction, 32 bytes float32 d_x); the weights come from gemmPrepW (VEX
// only). The float accumulators of a strip live in a scratch area fs ([R][M][8] floats per
// strip, zeroed by the kernel) rather than in registers; the caller copies them to out.
// ---------------------------------------------------------------------------------------

const gemmPrep8Bytes = 320

func gemmPrepVNNI(k isa) {
	name := "gemmPrepAct" + isaName[k]
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(xp *byte, bstride int, xq *byte, xb, ngroups, nb int, c uint8)")
	c.Pragma("noescape")
	c.Comment("Prepare Q8_0 activations for the AVX-VNNI blocked GEMM: 8 tokens in the lanes.")
	xp, bstride, xq, xb, ngroups, nb := reg.RDI, reg.RBX, reg.RSI, reg.RCX, reg.RDX, reg.R8
	xb3, xb5, xb7, p0, cnt, dst := reg.R9, reg.R10, reg.R11, reg.R12, reg.R14, reg.R13
	c.Load(c.Param("xp"), xp)
	c.Load(c.Param("bstride"), bstride)
	c.Load(c.Param("xq"), xq)
	c.Load(c.Param("xb"), xb)
	c.Load(c.Param("ngroups"), ngroups)
	c.Load(c.Param("nb"), nb)
	c.LEAQ(Mem{Base: xb, Index: xb, Scale: 2}, xb3)
	c.LEAQ(Mem{Base: xb, Index: xb, Scale: 4}, xb5)
	c.LEAQ(Mem{Base: xb3, Index: xb, Scale: 4}, xb7)
	off := func(k int, disp int) Mem {
		m := Mem{Base: p0, Disp: disp}
		switch k {
		case 1:
			m.Index, m.Scale = xb, 1
		case 2:
			m.Index, m.Scale = xb, 2
		case 3:
			m.Index, m.Scale = xb3, 1
		case 4:
			m.Index, m.Scale = xb, 4
		case 5:
			m.Index, m.Scale = xb5, 1
		case 6:
			m.Index, m.Scale = xb3, 2
		case 7:
			m.Index, m.Scale = xb7, 1
		}
		return m
	}
	c.Label(name + "_group")
	c.MOVQ(xq, p0)
	c.MOVQ(xp, dst)
	c.MOVQ(nb, cnt)
	c.Label(name + "_block")
	for k := 0; k < 8; k++ {
		c.VMOVDQU(off(k, 2), ys[k])
	}
	for k := 0; k < 8; k += 2 {
		c.VPUNPCKLDQ(ys[k+1], ys[k], ys[8+k])
		c.VPUNPCKHDQ(ys[k+1], ys[k], ys[9+k])
	}
	// Y8=L01 Y9=H01 Y10=L23 Y11=H23 Y12=L45 Y13=H45 Y14=L67 Y15=H67 -> Y0..Y3 tokens 0-3
	// dwords {0|4}, {1|5}, {2|6}, {3|7}; Y4..Y7 the same for tokens 4-7.
	for q := 0; q < 2; q++ {
		l0, h0, l1, h1 := ys[8+4*q], ys[9+4*q], ys[10+4*q], ys[11+4*q]
		c.VPUNPCKLQDQ(l1, l0, ys[4*q])
		c.VPUNPCKHQDQ(l1, l0, ys[4*q+1])
		c.VPUNPCKLQDQ(h1, h0, ys[4*q+2])
		c.VPUNPCKHQDQ(h1, h0, ys[4*q+3])
	}
	for j := 0; j < 4; j++ {
		c.VPERM2I128(U8(0x20), ys[4+j], ys[j], ys[8+j])
		c.VPERM2I128(U8(0x31), ys[4+j], ys[j], ys[12+j])
	}
	// Correction -(c * sum x): Y1 = c bytes, Y0/Y2 partial sums.
	c.Load(c.Param("c"), reg.AL)
	c.MOVBLZX(reg.AL, reg.EAX)
	c.VMOVD(reg.EAX, xs[1])
	c.VPBROADCASTB(xs[1], ys[1])
	c.VPXOR(ys[0], ys[0], ys[0])
	c.VPXOR(ys[2], ys[2], ys[2])
	if k == avx2 {
		// c*x pairs fit int16 (c <= 128, |x| <= 127).
		c.VMOVDQU(constOnes16, ys[3])
	}
	for j := 0; j < 8; j++ {
		if k == avx2 {
			c.VPMADDUBSW(ys[8+j], ys[1], ys[4])
			c.VPMADDWD(ys[3], ys[4], ys[4])
			c.VPADDD(ys[4], ys[2*(j%2)], ys[2*(j%2)])
		} else {
			dpbusd(avxvnni, 8+j, 1, 2*(j%2))
		}
		c.VMOVDQU(ys[8+j], Mem{Base: dst, Disp: 32 * j})
	}
	c.VPADDD(ys[2], ys[0], ys[0])
	c.VPXOR(ys[3], ys[3], ys[3])
	c.VPSUBD(ys[0], ys[3], ys[0])
	c.VMOVDQU(ys[0], Mem{Base: dst, Disp: 256})
	// d_x of the 8 tokens.
	for k := 0; k < 8; k++ {
		c.MOVWLZX(off(k, 0), reg.EAX)
		if k == 0 {
			c.VMOVD(reg.EAX, xs[4])
		} else {
			c.VPINSRW(U8(k), reg.EAX, xs[4], xs[4])
		}
	}
	c.VCVTPH2PS(xs[4], ys[4])
	c.VMOVUPS(ys[4], Mem{Base: dst, Disp: 288})
	c.ADDQ(U32(34), p0)
	c.ADDQ(bstride, dst)
	c.DECQ(cnt)
	c.JNZ(LabelRef(name + "_block"))
	c.LEAQ(Mem{Base: xq, Index: xb, Scale: 8}, xq)
	c.ADDQ(U32(gemmPrep8Bytes), xp)
	c.DECQ(ngroups)
	c.JNZ(LabelRef(name + "_group"))
	c.VZEROUPPER()
	c.RET()
}

// gemmKernelVNNI emits gemmR{R}M{M}AVXVNNI(fs *float32, wp *byte, rs, nstrips int, xp *byte,
// bstride, nb int): R prepared weight rows x M groups of 8 tokens; strip s's float sums
// (row r, group v, lane i) go to fs[((s*R+r)*M+v)*8+i].
//
// On AVX2 (gemmR{R}M{M}AVX2, weights from the signed gemmPrepW) each VPDPBUSD becomes the
// sign trick VPSIGNB + VPMADDUBSW(|w|, x*sign(w)) + VPMADDWD(1) + VPADDD: exact, as
// |w| <= 128 and |x| <= 127 keep every pair sum within int16; the correction is 0.
func gemmKernelVNNI(k isa, R, M int) {
	name := fmt.Sprintf("gemmR%dM%d%s", R, M, isaName[k])
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(fs *float32, wp *byte, rs, nstrips int, xp *byte, bstride, nb int)")
	c.Pragma("noescape")
	c.Commentf("AVX-VNNI: prepared weights x prepared activations, %d rows x %d groups of 8 tokens.", R, M)
	fs, w, rb, nstrips, xp, bstride, nb := reg.RDI, reg.RSI, reg.RBX, reg.RCX, reg.R8, reg.R13, reg.RDX
	rb3, rowp, cnt, xpp, dwp := reg.R12, reg.R9, reg.R10, reg.R11, reg.R14
	c.Load(c.Param("fs"), fs)
	c.Load(c.Param("wp"), w)
	c.Load(c.Param("rs"), rb)
	c.Load(c.Param("nstrips"), nstrips)
	c.Load(c.Param("xp"), xp)
	c.Load(c.Param("bstride"), bstride)
	c.Load(c.Param("nb"), nb)
	c.LEAQ(Mem{Base: rb, Index: rb, Scale: 2}, rb3)
	row := func(base reg.Register, r, disp int) Mem {
		m := Mem{Base: base, Disp: disp}
		switch r {
		case 0:
		case 1:
			m.Index, m.Scale = rb, 1
		case 2:
			m.Index, m.Scale = rb, 2
		case 3:
			m.Index, m.Scale = rb3, 1
		default:
			panic("row")
		}
		return m
	}
	I := func(r, v int) int { return r*M + v }
	X := func(v int) int { return 8 + v }
	const wb, dw, d, ft = 10, 11, 12, 13
	const wa, ones = 14, 15 // AVX2: |w| and int16 ones; S and T share d and ft
	fmem := func(r, v int) Mem { return Mem{Base: fs, Disp: 32 * (r*M + v)} }
	if k == avx2 {
		c.VMOVDQU(constOnes16, ys[ones])
	}

	c.Label(name + "_strip")
	c.VXORPS(ys[ft], ys[ft], ys[ft])
	for r := 0; r < R; r++ {
		for v := 0; v < M; v++ {
			c.VMOVUPS(ys[ft], fmem(r, v))
		}
	}
	c.MOVQ(w, rowp)
	c.MOVQ(nb, dwp)
	c.SHLQ(U8(5), dwp)
	c.ADDQ(w, dwp)
	c.MOVQ(xp, xpp)
	c.MOVQ(nb, cnt)

	c.Label(name + "_block")
	for v := 0; v < M; v++ {
		for r := 0; r < R; r++ {
			c.VMOVDQU(Mem{Base: xpp, Disp: v*gemmPrep8Bytes + 256}, ys[I(r, v)])
		}
	}
	for j := 0; j < 8; j++ {
		for v := 0; v < M; v++ {
			c.VMOVDQU(Mem{Base: xpp, Disp: v*gemmPrep8Bytes + 32*j}, ys[X(v)])
		}
		for r := 0; r < R; r++ {
			c.VPBROADCASTD(row(rowp, r, 4*j), ys[wb])
			if k == avx2 {
				c.VPABSB(ys[wb], ys[wa])
			}
			for v := 0; v < M; v++ {
				if k == avx2 {
					c.VPSIGNB(ys[wb], ys[X(v)], ys[d])
					c.VPMADDUBSW(ys[d], ys[wa], ys[ft])
					c.VPMADDWD(ys[ones], ys[ft], ys[ft])
					c.VPADDD(ys[ft], ys[I(r, v)], ys[I(r, v)])
				} else {
					dpbusd(avxvnni, X(v), wb, I(r, v))
				}
			}
		}
	}
	for r := 0; r < R; r++ {
		c.VBROADCASTSS(row(dwp, r, 0), ys[dw])
		for v := 0; v < M; v++ {
			c.VCVTDQ2PS(ys[I(r, v)], ys[I(r, v)])
			c.VMULPS(Mem{Base: xpp, Disp: v*gemmPrep8Bytes + 288}, ys[dw], ys[d])
			c.VMOVUPS(fmem(r, v), ys[ft])
			c.VFMADD231PS(ys[d], ys[I(r, v)], ys[ft])
			c.VMOVUPS(ys[ft], fmem(r, v))
		}
	}
	c.ADDQ(U32(32), rowp)
	c.ADDQ(U32(4), dwp)
	c.ADDQ(bstride, xpp)
	c.DECQ(cnt)
	c.JNZ(LabelRef(name + "_block"))

	c.ADDQ(U32(32*R*M), fs)
	switch R {
	case 1:
		c.ADDQ(rb, w)
	case 3:
		c.ADDQ(rb3, w)
	case 4:
		c.LEAQ(Mem{Base: w, Index: rb, Scale: 4}, w)
	default:
		panic("R")
	}
	c.DECQ(nstrips)
	c.JNZ(LabelRef(name + "_strip"))
	c.VZEROUPPER()
	c.RET()
}

// gemmTilesVNNI and gemmTilesAVX2 list the ymm register tiles (kernels/ggml_amd64.go
// dispatches on the same lists).
var (
	gemmTilesVNNI = [][2]int{{4, 1}, {4, 2}, {1, 1}, {1, 2}}
	gemmTilesAVX2 = [][2]int{{3, 1}, {3, 2}, {1, 1}, {1, 2}}
)

func main() {
	// avo's build package registers its own flags on flag.CommandLine; use a private set.
	fs := flag.NewFlagSet("ggml", flag.ExitOnError)
	outPath := fs.String("out", "", "assembly output file")
	stubsPath := fs.String("stubs", "", "Go stub file")
	pkg := fs.String("pkg", "kernels", "package of the stubs")
	vnni := fs.Bool("vnni", true, "emit the AVX-VNNI kernels (they include "+vexHeader+")")
	fs.Parse(os.Args[1:])
	if *outPath == "" || *stubsPath == "" {
		fmt.Fprintln(os.Stderr, "usage: ggml -out FILE.s -stubs FILE.go")
		os.Exit(2)
	}

	c.ConstraintExpr("!purego")
	globals()
	gemmGlobals()
	gemmPrep()
	gemmPrepW(false, false)
	gemmPrepW(true, false)
	gemmPrepW(false, true)
	gemmPrepW(true, true)
	for _, t := range gemmTiles {
		gemmKernel(t[0], t[1])
	}
	if *vnni {
		gemmPrepVNNI(avxvnni)
		for _, t := range gemmTilesVNNI {
			gemmKernelVNNI(avxvnni, t[0], t[1])
		}
	}
	gemmPrepVNNI(avx2)
	for _, t := range gemmTilesAVX2 {
		gemmKernelVNNI(avx2, t[0], t[1])
	}
	for _, k := range []isa{avx512, avxvnni, avx2} {
		if k == avxvnni && !*vnni {
			continue
		}
		gemv(k, false)
		gemv(k, true)
	}
	f, err := c.Result()
	if err != nil {
		build.LogError(log.New(os.Stderr, "", 0), err, 0)
		os.Exit(1)
	}
	if *vnni {
		f.Includes = append(f.Includes, vexHeader)
	}
	// A fixed generator name (not avo's default of the command line) keeps the header
	// independent of the output paths, so the freshness test can regenerate elsewhere.
	pc := printer.Config{Name: "asm/ggml (go generate ./kernels)", Pkg: *pkg}
	create := func(path string) *os.File {
		w, err := os.Create(path)
		if err != nil {
			log.Fatal(err)
		}
		return w
	}
	p := pass.Concat(pass.Compile,
		&pass.Output{Writer: create(*outPath), Printer: printer.NewGoAsm(pc)},
		&pass.Output{Writer: create(*stubsPath), Printer: printer.NewStubs(pc)})
	if err := p.Execute(f); err != nil {
		log.Fatal(err)
	}
}
