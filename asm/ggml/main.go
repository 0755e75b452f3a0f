// Command ggml generates kernels/ggml_amd64.s: GEMV kernels for llama.cpp's Q8_0 and
// Q4_0 weight blocks against activations quantised to Q8_0 blocks (helper K2).
//
// Every kernel computes four rows (a strip) at a time and loops over strips:
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
