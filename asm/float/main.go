// Command float generates mole's float32 hot-path kernels for amd64 (kernels/float_amd64.s
// and the Go declarations kernels/float_stubs_amd64.go): dot products against float32,
// binary16 and float32-byte rows, axpy, the two halves of RMSNorm, SiLU(gate)*up, and the
// passes of the three-pass and two-pass softmax (docs/algorithms.md §5), each for AVX-512
// (zmm, masked tails, VSCALEFPS) and AVX2+FMA (ymm, VMASKMOVPS tails, 2^n built from
// exponent bits).
//
// Run from ../kernels with `go generate` (see kernels/gen.go).
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// arch describes one vector path.
type arch struct {
	name string // function-name suffix
	w    int    // float32 lanes per vector
	z    bool   // AVX-512 (zmm, K masks, VSCALEFPS)
}

var (
	avx512 = arch{"AVX512", 16, true}
	avx2   = arch{"AVX2", 8, false}
)

// V returns a fresh virtual vector register of the path's width.
func (a arch) V() VecVirtual {
	if a.z {
		return ZMM()
	}
	return YMM()
}

// Constants: each is a 64-byte RODATA vector (16 equal lanes) so that both widths can use
// it as a memory operand.
var consts = map[string]Mem{}

func vconst(name string, bits uint32) Mem {
	if m, ok := consts[name]; ok {
		return m
	}
	m := GLOBL(name, RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		DATA(4*i, U32(bits))
	}
	consts[name] = m
	return m
}

func fc(name string, v float32) Mem { return vconst(name, math.Float32bits(v)) }

// The exp recipe shared by SiLU and both softmaxes (XNNPACK's f32 p5 constants):
// n = round(x*log2e), t = x - n*ln2 (Cody-Waite, hi/lo in two FMAs), e^t ~ poly5(t) on
// [-ln2/2, ln2/2], e^x = poly5(t) * 2^n.
const (
	log2e = float32(1.44269504088896341)
	ln2hi = float32(0x1.62E43p-1)
	ln2lo = float32(-0x1.05C61p-29)
	c1    = float32(0x1.FFFFF6p-1)
	c2    = float32(0x1.FFFDC6p-2)
	c3    = float32(0x1.555A80p-3)
	c4    = float32(0x1.573A1Ap-5)
	c5    = float32(0x1.0F9F9Cp-7)
)

func cLog2e() Mem { return fc("log2e", log2e) }

// loadReg broadcasts a constant into a register (for instructions whose NaN semantics need
// the constant as the first source, see clampLo).
func (a arch) loadReg(m Mem) VecVirtual {
	v := a.V()
	VMOVUPS(m, v)
	return v
}

// clampLo sets x = max(x, lo). In Go operand order `VMAXPS x, lo, x` puts x in the second
// source, which x86 returns when either operand is NaN: NaN propagates.
func clampLo(x, lo Op) { VMAXPS(x, lo, x) }
func clampHi(x, hi Op) { VMINPS(x, hi, x) }

// expParts turns x (clamped, destroyed: it becomes t) into n = round(x*log2e) and
// p = poly5(x - n*ln2), so that e^x = p * 2^n.
func (a arch) expParts(x VecVirtual) (n, p VecVirtual) {
	n = a.V()
	VMULPS(cLog2e(), x, n)
	if a.z {
		VRNDSCALEPS(U8(0), n, n)
	} else {
		VROUNDPS(U8(0), n, n)
	}
	VFNMADD231PS(fc("ln2hi", ln2hi), n, x)
	VFNMADD231PS(fc("ln2lo", ln2lo), n, x)
	p = a.V()
	VMOVUPS(fc("c5", c5), p)
	VFMADD213PS(fc("c4", c4), x, p)
	VFMADD213PS(fc("c3", c3), x, p)
	VFMADD213PS(fc("c2", c2), x, p)
	VFMADD213PS(fc("c1", c1), x, p)
	VFMADD213PS(fc("one", 1), x, p)
	return n, p
}

// expPartsMagic is expParts with n rounded by the 1.5*2^23 trick: n = (x*log2e + magic)
// - magic in one FMA and one subtraction (round half to even, exact for |x*log2e| < 2^22)
// instead of a multiply and VRNDSCALEPS/VROUNDPS (two uops on Intel cores). The product is
// rounded once inside the FMA, so n may differ from round(float32(x*log2e)) when x*log2e
// lies within half an ulp of a half-integer; t then lies a hair outside [-ln2/2, ln2/2],
// where the polynomial is as accurate. x must be clamped to |x| <= 1e5 (or NaN).
func (a arch) expPartsMagic(x, magic VecVirtual) (n, p VecVirtual) {
	n = a.V()
	VMOVAPS(x, n)
	VFMADD132PS(cLog2e(), magic, n)
	VSUBPS(magic, n, n)
	VFNMADD231PS(fc("ln2hi", ln2hi), n, x)
	VFNMADD231PS(fc("ln2lo", ln2lo), n, x)
	p = a.V()
	VMOVUPS(fc("c5", c5), p)
	VFMADD213PS(fc("c4", c4), x, p)
	VFMADD213PS(fc("c3", c3), x, p)
	VFMADD213PS(fc("c2", c2), x, p)
	VFMADD213PS(fc("c1", c1), x, p)
	VFMADD213PS(fc("one", 1), x, p)
	return n, p
}

// scale2 sets v = v * 2^d for integral d. AVX-512: VSCALEFPS (exact, with overflow to inf
// and gradual underflow). AVX2 (only used with d <= 0): 2^d is built from exponent bits,
// d < -126 giving 0 (results below 2^-126 flush to zero). d is destroyed on AVX2.
func (a arch) scale2(v, d VecVirtual) {
	if a.z {
		VSCALEFPS(d, v, v)
		return
	}
	VMAXPS(fc("m127", -127), d, d)
	VCVTTPS2DQ(d, d)
	VPADDD(vconst("i127", 127), d, d)
	VPSLLD(U8(23), d, d)
	VMULPS(d, v, v)
}

// expNonPos computes e^z for z <= 0 (or -inf / NaN) into a new register; z is destroyed.
func (a arch) expNonPos(z VecVirtual, lo VecVirtual) VecVirtual {
	clampLo(z, lo)
	n, p := a.expParts(z)
	a.scale2(p, n)
	return p
}

// tail masks: AVX-512 a K register with the low rem bits set; AVX2 a ymm whose first rem
// dword lanes are all ones (read from a 16-dword table at offset 8-rem).
type tmask struct {
	k Op
	m VecVirtual
}

func (a arch) tailMask(rem GPVirtual) tmask {
	if a.z {
		ones := GP32()
		MOVL(U32(0xffffffff), ones)
		mk := GP32()
		BZHIL(rem.As32(), ones, mk)
		k := K()
		KMOVW(mk, k)
		return tmask{k: k}
	}
	tbl := GLOBLTable()
	base := GP64()
	LEAQ(tbl, base)
	off := GP64()
	MOVQ(U32(8), off)
	SUBQ(rem, off)
	m := YMM()
	VMOVDQU(Mem{Base: base, Index: off, Scale: 4}, m)
	return tmask{m: m}
}

var tailTable Mem
var tailTableDone bool

// GLOBLTable is 8 dwords of all ones followed by 8 zero dwords.
func GLOBLTable() Mem {
	if !tailTableDone {
		tailTable = GLOBL("tailmask", RODATA|NOPTR)
		for i := 0; i < 8; i++ {
			DATA(4*i, U32(0xffffffff))
		}
		for i := 8; i < 16; i++ {
			DATA(4*i, U32(0))
		}
		tailTableDone = true
	}
	return tailTable
}

// loadTail loads the first rem floats at m into dst, zeroing the other lanes; masked-off
// lanes are never read (no fault past the slice).
func (a arch) loadTail(m Mem, t tmask, dst VecVirtual) {
	if a.z {
		VMOVUPS_Z(m, t.k, dst)
	} else {
		VMASKMOVPS(m, t.m, dst)
	}
}

// loadTailFill is loadTail with the other lanes set to fill's lanes.
func (a arch) loadTailFill(m Mem, t tmask, fill, dst VecVirtual) {
	if a.z {
		VMOVUPS(fill, dst)
		VMOVUPS(m, t.k, dst)
	} else {
		x := a.V()
		VMASKMOVPS(m, t.m, x)
		VBLENDVPS(t.m, x, fill, dst)
	}
}

func (a arch) storeTail(src VecVirtual, t tmask, m Mem) {
	if a.z {
		VMOVUPS(src, t.k, m)
	} else {
		VMASKMOVPS(src, t.m, m)
	}
}

// at addresses element i+off of a float32 array at base.
func at(base, i GPVirtual, off int) Mem { return Mem{Base: base, Index: i, Scale: 4, Disp: 4 * off} }

// loop emits `for ; i+step <= n; i += step { body() }`.
func loop(name string, i, n GPVirtual, step int, body func()) {
	Label(name)
	t := GP64()
	LEAQ(Mem{Base: i, Disp: step}, t)
	CMPQ(t, n)
	JA(LabelRef(name + "_done"))
	body()
	ADDQ(U32(step), i)
	JMP(LabelRef(name))
	Label(name + "_done")
}

// tail emits `if rem := n - i; rem > 0 { body(mask) }`.
func (a arch) tail(name string, i, n GPVirtual, body func(t tmask)) {
	rem := GP64()
	MOVQ(n, rem)
	SUBQ(i, rem)
	JZ(LabelRef(name + "_end"))
	body(a.tailMask(rem))
	Label(name + "_end")
}

// hsum adds the lanes of v into the low lane of the returned xmm.
func (a arch) hsum(v VecVirtual) VecVirtual {
	var y VecVirtual
	if a.z {
		y = YMM()
		VEXTRACTF64X4(U8(1), v, y)
		VADDPS(y, v.AsY(), y)
	} else {
		y = v
	}
	x := XMM()
	if a.z {
		VEXTRACTF32X4(U8(1), y, x)
	} else {
		VEXTRACTF128(U8(1), y, x)
	}
	VADDPS(x, y.AsX(), x)
	t := XMM()
	VPERMILPS(U8(0x4e), x, t)
	VADDPS(t, x, x)
	VPERMILPS(U8(0xb1), x, t)
	VADDSS(t, x, x)
	return x
}

func (a arch) hmax(v VecVirtual) VecVirtual {
	var y VecVirtual
	if a.z {
		y = YMM()
		VEXTRACTF64X4(U8(1), v, y)
		VMAXPS(y, v.AsY(), y)
	} else {
		y = v
	}
	x := XMM()
	if a.z {
		VEXTRACTF32X4(U8(1), y, x)
	} else {
		VEXTRACTF128(U8(1), y, x)
	}
	VMAXPS(x, y.AsX(), x)
	t := XMM()
	VPERMILPS(U8(0x4e), x, t)
	VMAXPS(t, x, x)
	VPERMILPS(U8(0xb1), x, t)
	VMAXSS(t, x, x)
	return x
}

func zero(v VecVirtual) { VXORPS(v, v, v) }

func sliceBase(name string) GPVirtual {
	r := GP64()
	Load(Param(name).Base(), r)
	return r
}

func sliceLen(name string) GPVirtual {
	r := GP64()
	Load(Param(name).Len(), r)
	return r
}

// paramAddr is the stack address of a scalar parameter.
func paramAddr(name string) Mem {
	b, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// rowKind says how the first operand of a dot product is stored.
type rowKind int

const (
	rowF32 rowKind = iota // []float32, or []byte holding little-endian float32
	rowF16                // []byte holding binary16
)

// dot generates name(p, x) float32 = sum p[i]*x[i] over len(x) (or len(a) for Dot)
// elements; the Go wrapper guarantees the lengths.
func (a arch) dot(name, sig, pName, xName, nName string, kind rowKind) {
	TEXT(name+a.name, NOSPLIT, sig)
	Pragma("noescape")
	p, x, n := sliceBase(pName), sliceBase(xName), sliceLen(nName)
	const U = 4
	var acc [U]VecVirtual
	for u := range acc {
		acc[u] = a.V()
		zero(acc[u])
	}
	i := GP64()
	XORQ(i, i)
	loadRow := func(off int, dst VecVirtual) {
		if kind == rowF16 {
			VCVTPH2PS(Mem{Base: p, Index: i, Scale: 2, Disp: 2 * off}, dst)
		} else {
			VMOVUPS(at(p, i, off), dst)
		}
	}
	loop("main", i, n, U*a.w, func() {
		for u := 0; u < U; u++ {
			v := a.V()
			loadRow(u*a.w, v)
			VFMADD231PS(at(x, i, u*a.w), v, acc[u])
		}
	})
	loop("one", i, n, a.w, func() {
		v := a.V()
		loadRow(0, v)
		VFMADD231PS(at(x, i, 0), v, acc[0])
	})
	// AVX2 F16: the Go wrapper handles the last len%8 halves (no 16-bit masked load).
	if !(kind == rowF16 && !a.z) {
		a.tail("tail", i, n, func(t tmask) {
			v, w := a.V(), a.V()
			if kind == rowF16 {
				h := YMM()
				VMOVDQU16_Z(Mem{Base: p, Index: i, Scale: 2}, t.k, h)
				VCVTPH2PS(h, v)
			} else {
				a.loadTail(at(p, i, 0), t, v)
			}
			a.loadTail(at(x, i, 0), t, w)
			VFMADD231PS(w, v, acc[0])
		})
	}
	VADDPS(acc[1], acc[0], acc[0])
	VADDPS(acc[3], acc[2], acc[2])
	VADDPS(acc[2], acc[0], acc[0])
	s := a.hsum(acc[0])
	VZEROUPPER()
	Store(s, ReturnIndex(0))
	RET()
}

// dotMulti generates name(row, x0, ..., x{k-1}, out) computing out[j] = row · xj for k
// vectors of len(x0) elements (the Go wrapper guarantees equal lengths and len(out) >= k).
// Each weight chunk is loaded (and converted) once and applied to all k vectors, and every
// vector gets its own four accumulators used exactly as dot's: element i goes to the same
// accumulator lane in the same order and the final reduction is the same, so out[j] equals
// the single-vector kernel's result for xj bit for bit. k is bounded by the register file:
// 4k accumulators plus one row vector (k <= 7 on AVX-512, k <= 3 on AVX2).
func (a arch) dotMulti(name string, k int, kind rowKind) {
	xs := make([]string, k)
	for j := range xs {
		xs[j] = fmt.Sprintf("x%d", j)
	}
	TEXT(fmt.Sprintf("%sx%d%s", name, k, a.name), NOSPLIT,
		fmt.Sprintf("func(row []byte, %s []float32, out []float32)", strings.Join(xs, ", ")))
	Pragma("noescape")
	p, n := sliceBase("row"), sliceLen("x0")
	x := make([]GPVirtual, k)
	for j := range x {
		x[j] = sliceBase(xs[j])
	}
	const U = 4
	acc := make([][U]VecVirtual, k)
	for j := range acc {
		for u := range acc[j] {
			acc[j][u] = a.V()
			zero(acc[j][u])
		}
	}
	i := GP64()
	XORQ(i, i)
	loadRow := func(off int, dst VecVirtual) {
		if kind == rowF16 {
			VCVTPH2PS(Mem{Base: p, Index: i, Scale: 2, Disp: 2 * off}, dst)
		} else {
			VMOVUPS(at(p, i, off), dst)
		}
	}
	loop("main", i, n, U*a.w, func() {
		for u := 0; u < U; u++ {
			v := a.V()
			loadRow(u*a.w, v)
			for j := range x {
				VFMADD231PS(at(x[j], i, u*a.w), v, acc[j][u])
			}
		}
	})
	loop("one", i, n, a.w, func() {
		v := a.V()
		loadRow(0, v)
		for j := range x {
			VFMADD231PS(at(x[j], i, 0), v, acc[j][0])
		}
	})
	if !(kind == rowF16 && !a.z) {
		a.tail("tail", i, n, func(t tmask) {
			v := a.V()
			if kind == rowF16 {
				h := YMM()
				VMOVDQU16_Z(Mem{Base: p, Index: i, Scale: 2}, t.k, h)
				VCVTPH2PS(h, v)
			} else {
				a.loadTail(at(p, i, 0), t, v)
			}
			for j := range x {
				w := a.V()
				a.loadTail(at(x[j], i, 0), t, w)
				VFMADD231PS(w, v, acc[j][0])
			}
		})
	}
	out := sliceBase("out")
	for j := range acc {
		VADDPS(acc[j][1], acc[j][0], acc[j][0])
		VADDPS(acc[j][3], acc[j][2], acc[j][2])
		VADDPS(acc[j][2], acc[j][0], acc[j][0])
		s := a.hsum(acc[j][0])
		VMOVSS(s, Mem{Base: out, Disp: 4 * j})
	}
	VZEROUPPER()
	RET()
}

// axpy: y[i] += a*x[i] as one multiply and one add (bit-identical to the Go loop).
func (a arch) axpy() {
	TEXT("axpy"+a.name, NOSPLIT, "func(y []float32, a float32, x []float32)")
	Pragma("noescape")
	y, x, n := sliceBase("y"), sliceBase("x"), sliceLen("y")
	va := a.V()
	VBROADCASTSS(paramAddr("a"), va)
	i := GP64()
	XORQ(i, i)
	const U = 4
	loop("main", i, n, U*a.w, func() {
		for u := 0; u < U; u++ {
			v := a.V()
			VMULPS(at(x, i, u*a.w), va, v)
			VADDPS(at(y, i, u*a.w), v, v)
			VMOVUPS(v, at(y, i, u*a.w))
		}
	})
	loop("one", i, n, a.w, func() {
		v := a.V()
		VMULPS(at(x, i, 0), va, v)
		VADDPS(at(y, i, 0), v, v)
		VMOVUPS(v, at(y, i, 0))
	})
	a.tail("tail", i, n, func(t tmask) {
		v, w := a.V(), a.V()
		a.loadTail(at(x, i, 0), t, v)
		a.loadTail(at(y, i, 0), t, w)
		VMULPS(v, va, v)
		VADDPS(w, v, v)
		a.storeTail(v, t, at(y, i, 0))
	})
	VZEROUPPER()
	RET()
}

// sumSq returns sum x[i]^2 accumulated in float64 (each float32 widened exactly).
func (a arch) sumSq() {
	TEXT("sumSq"+a.name, NOSPLIT, "func(x []float32) float64")
	Pragma("noescape")
	x, n := sliceBase("x"), sliceLen("x")
	const U = 4
	var acc [U]VecVirtual
	for u := range acc {
		acc[u] = a.V()
		zero(acc[u])
	}
	h := a.w / 2 // doubles per vector = floats per half vector
	half := func(m Op, dst VecVirtual) { VCVTPS2PD(m, dst) }
	i := GP64()
	XORQ(i, i)
	loop("main", i, n, U*h, func() {
		for u := 0; u < U; u++ {
			v := a.V()
			half(at(x, i, u*h), v)
			VFMADD231PD(v, v, acc[u])
		}
	})
	{
		// up to U*h-1 floats remain: handle them as masked vectors of 2h floats.
		rem := GP64()
		MOVQ(n, rem)
		SUBQ(i, rem)
		JZ(LabelRef("tail_end"))
		Label("tailloop")
		tm := a.tailMaskUpTo(rem)
		v := a.V()
		a.loadTail(at(x, i, 0), tm, v)
		lo, hi := a.V(), a.V()
		if a.z {
			VCVTPS2PD(v.AsY(), lo)
			y := YMM()
			VEXTRACTF64X4(U8(1), v, y)
			VCVTPS2PD(y, hi)
		} else {
			VCVTPS2PD(v.AsX(), lo)
			xx := XMM()
			VEXTRACTF128(U8(1), v, xx)
			VCVTPS2PD(xx, hi)
		}
		VFMADD231PD(lo, lo, acc[0])
		VFMADD231PD(hi, hi, acc[1])
		ADDQ(U32(a.w), i)
		SUBQ(U32(a.w), rem)
		JG(LabelRef("tailloop"))
		Label("tail_end")
	}
	VADDPD(acc[1], acc[0], acc[0])
	VADDPD(acc[3], acc[2], acc[2])
	VADDPD(acc[2], acc[0], acc[0])
	var y VecVirtual
	if a.z {
		y = YMM()
		VEXTRACTF64X4(U8(1), acc[0], y)
		VADDPD(y, acc[0].AsY(), y)
	} else {
		y = acc[0]
	}
	xx := XMM()
	if a.z {
		VEXTRACTF32X4(U8(1), y, xx)
	} else {
		VEXTRACTF128(U8(1), y, xx)
	}
	VADDPD(xx, y.AsX(), xx)
	t := XMM()
	VPERMILPD(U8(1), xx, t)
	VADDSD(t, xx, xx)
	VZEROUPPER()
	Store(xx, ReturnIndex(0))
	RET()
}

// tailMaskUpTo is tailMask for min(rem, w) lanes (rem > 0).
func (a arch) tailMaskUpTo(rem GPVirtual) tmask {
	r := GP64()
	MOVQ(U32(a.w), r)
	CMPQ(rem, r)
	CMOVQLT(rem, r)
	return a.tailMask(r)
}

// rmsScale: out[i] = (x[i]*s)*w[i], the same two roundings as the Go loop.
func (a arch) rmsScale() {
	TEXT("rmsScale"+a.name, NOSPLIT, "func(out, x, w []float32, s float32)")
	Pragma("noescape")
	out, x, w, n := sliceBase("out"), sliceBase("x"), sliceBase("w"), sliceLen("x")
	vs := a.V()
	VBROADCASTSS(paramAddr("s"), vs)
	i := GP64()
	XORQ(i, i)
	const U = 4
	loop("main", i, n, U*a.w, func() {
		for u := 0; u < U; u++ {
			v := a.V()
			VMULPS(at(x, i, u*a.w), vs, v)
			VMULPS(at(w, i, u*a.w), v, v)
			VMOVUPS(v, at(out, i, u*a.w))
		}
	})
	loop("one", i, n, a.w, func() {
		v := a.V()
		VMULPS(at(x, i, 0), vs, v)
		VMULPS(at(w, i, 0), v, v)
		VMOVUPS(v, at(out, i, 0))
	})
	a.tail("tail", i, n, func(t tmask) {
		v, ww := a.V(), a.V()
		a.loadTail(at(x, i, 0), t, v)
		a.loadTail(at(w, i, 0), t, ww)
		VMULPS(v, vs, v)
		VMULPS(ww, v, v)
		a.storeTail(v, t, at(out, i, 0))
	})
	VZEROUPPER()
	RET()
}

// silu computes, for one vector g (destroyed) and up-vector u, the result into a new
// register: g/(1+e^-g)*u. AVX-512 uses e^-g directly (VSCALEFPS overflows to inf, and
// g/inf = -0). AVX2 keeps the exponent non-positive: e = e^-|g|, silu = g*r/(1+e) with
// r = 1 for g >= 0 and r = e for g < 0.
func (a arch) silu(g, u VecVirtual, k siluConsts) VecVirtual {
	z := a.V()
	if a.z {
		VXORPS(fc("signbit", float32(math.Copysign(0, -1))), g, z) // z = -g
		clampLo(z, k.lo)
		clampHi(z, k.hi)
		n, p := a.expParts(z)
		a.scale2(p, n)
		VADDPS(fc("one", 1), p, p)
		VDIVPS(p, g, p) // p = g / (1+e)
		VMULPS(u, p, p)
		return p
	}
	VORPS(fc("signbit", float32(math.Copysign(0, -1))), g, z) // z = -|g|
	e := a.expNonPos(z, k.lo)
	ge := a.V()
	VMULPS(e, g, ge)
	num := a.V()
	VBLENDVPS(g, ge, g, num) // g < 0 ? g*e : g
	VADDPS(fc("one", 1), e, e)
	VDIVPS(e, num, num)
	VMULPS(u, num, num)
	return num
}

type siluConsts struct{ lo, hi VecVirtual }

func (a arch) siluMul() {
	TEXT("siluMul"+a.name, NOSPLIT, "func(gate, up []float32)")
	Pragma("noescape")
	gp, up, n := sliceBase("gate"), sliceBase("up"), sliceLen("gate")
	var k siluConsts
	if a.z {
		k.lo = a.loadReg(fc("m104", -104))
		k.hi = a.loadReg(fc("p100", 100))
	} else {
		k.lo = a.loadReg(fc("m100", -100))
	}
	i := GP64()
	XORQ(i, i)
	U := 2
	loop("main", i, n, U*a.w, func() {
		for u := 0; u < U; u++ {
			g, uv := a.V(), a.V()
			VMOVUPS(at(gp, i, u*a.w), g)
			VMOVUPS(at(up, i, u*a.w), uv)
			r := a.silu(g, uv, k)
			VMOVUPS(r, at(gp, i, u*a.w))
		}
	})
	loop("one", i, n, a.w, func() {
		g, uv := a.V(), a.V()
		VMOVUPS(at(gp, i, 0), g)
		VMOVUPS(at(up, i, 0), uv)
		r := a.silu(g, uv, k)
		VMOVUPS(r, at(gp, i, 0))
	})
	a.tail("tail", i, n, func(t tmask) {
		g, uv := a.V(), a.V()
		a.loadTail(at(gp, i, 0), t, g)
		a.loadTail(at(up, i, 0), t, uv)
		r := a.silu(g, uv, k)
		a.storeTail(r, t, at(gp, i, 0))
	})
	VZEROUPPER()
	RET()
}

// maxF32 returns the largest element (NaN handling: not sticky; the exp pass of the
// three-pass softmax makes a NaN row NaN anyway). len(x) > 0.
func (a arch) maxF32() {
	TEXT("max"+a.name, NOSPLIT, "func(x []float32) float32")
	Pragma("noescape")
	x, n := sliceBase("x"), sliceLen("x")
	ninf := a.loadReg(fc("ninf", float32(math.Inf(-1))))
	const U = 4
	var acc [U]VecVirtual
	for u := range acc {
		acc[u] = a.V()
		VMOVUPS(ninf, acc[u])
	}
	i := GP64()
	XORQ(i, i)
	loop("main", i, n, U*a.w, func() {
		for u := 0; u < U; u++ {
			VMAXPS(at(x, i, u*a.w), acc[u], acc[u])
		}
	})
	loop("one", i, n, a.w, func() {
		VMAXPS(at(x, i, 0), acc[0], acc[0])
	})
	a.tail("tail", i, n, func(t tmask) {
		v := a.V()
		a.loadTailFill(at(x, i, 0), t, ninf, v)
		VMAXPS(v, acc[0], acc[0])
	})
	VMAXPS(acc[1], acc[0], acc[0])
	VMAXPS(acc[3], acc[2], acc[2])
	VMAXPS(acc[2], acc[0], acc[0])
	s := a.hmax(acc[0])
	VZEROUPPER()
	Store(s, ReturnIndex(0))
	RET()
}

// expSum: x[i] = e^(x[i]-m), returns the float32 sum (the caller passes chunks and sums
// the chunk results in float64).
func (a arch) expSum() {
	TEXT("expSum"+a.name, NOSPLIT, "func(x []float32, m float32) float32")
	Pragma("noescape")
	x, n := sliceBase("x"), sliceLen("x")
	vm := a.V()
	VBROADCASTSS(paramAddr("m"), vm)
	var lo VecVirtual
	if a.z {
		lo = a.loadReg(fc("m104", -104))
	} else {
		lo = a.loadReg(fc("m100", -100))
	}
	const U = 2
	var acc [U]VecVirtual
	for u := range acc {
		acc[u] = a.V()
		zero(acc[u])
	}
	i := GP64()
	one := func(off int, acc VecVirtual) {
		z := a.V()
		VMOVUPS(at(x, i, off), z)
		VSUBPS(vm, z, z)
		e := a.expNonPos(z, lo)
		VMOVUPS(e, at(x, i, off))
		VADDPS(e, acc, acc)
	}
	XORQ(i, i)
	loop("main", i, n, U*a.w, func() {
		for u := 0; u < U; u++ {
			one(u*a.w, acc[u])
		}
	})
	loop("one", i, n, a.w, func() { one(0, acc[0]) })
	a.tail("tail", i, n, func(t tmask) {
		z := a.V()
		a.loadTailFill(at(x, i, 0), t, a.loadReg(fc("ninf", float32(math.Inf(-1)))), z)
		VSUBPS(vm, z, z)
		e := a.expNonPos(z, lo)
		a.storeTail(e, t, at(x, i, 0))
		VADDPS(e, acc[0], acc[0])
	})
	VADDPS(acc[1], acc[0], acc[0])
	s := a.hsum(acc[0])
	VZEROUPPER()
	Store(s, ReturnIndex(0))
	RET()
}

// scale: x[i] *= s.
func (a arch) scale() {
	TEXT("scale"+a.name, NOSPLIT, "func(x []float32, s float32)")
	Pragma("noescape")
	x, n := sliceBase("x"), sliceLen("x")
	vs := a.V()
	VBROADCASTSS(paramAddr("s"), vs)
	i := GP64()
	XORQ(i, i)
	const U = 4
	loop("main", i, n, U*a.w, func() {
		for u := 0; u < U; u++ {
			v := a.V()
			VMULPS(at(x, i, u*a.w), vs, v)
			VMOVUPS(v, at(x, i, u*a.w))
		}
	})
	loop("one", i, n, a.w, func() {
		v := a.V()
		VMULPS(at(x, i, 0), vs, v)
		VMOVUPS(v, at(x, i, 0))
	})
	a.tail("tail", i, n, func(t tmask) {
		v := a.V()
		a.loadTail(at(x, i, 0), t, v)
		VMULPS(v, vs, v)
		a.storeTail(v, t, at(x, i, 0))
	})
	VZEROUPPER()
	RET()
}

// Two-pass softmax, pass 1: per lane, accumulate (m, e) with e^x = p*2^n:
// e' = max(e, n); m = m*2^(e-e') + p*2^(n-e'). The update is done once per group of
// vectors (4 on AVX-512, 2 on AVX2): e' = max(e, n_1..n_k), m = m*2^(e-e') + sum p_i*2^(n_i-e'),
// which saves the rescaling of m for all but one vector of the group. x is clamped below at
// -1e5 (NaN kept), so -inf contributes p*2^-144270 relative weight, i.e. 0; there is no
// upper clamp: +inf gives NaN and huge x a huge e, both sent to the three-pass softmax by
// the Go caller. The lanes are stored to acc[0:w] (m) and acc[16:16+w] (e).
func (a arch) twoPass1() {
	TEXT("softmax2Pass1"+a.name, NOSPLIT, "func(x []float32, acc *[32]float32)")
	Pragma("noescape")
	x, n := sliceBase("x"), sliceLen("x")
	out := Load(Param("acc"), GP64())
	lo := a.loadReg(fc("m1e5", -1e5))
	U := 4
	if !a.z {
		U = 2
	}
	m, e := a.V(), a.V()
	zero(m)
	VMOVUPS(fc("m1e9", -1e9), e)
	// group merges the (p_i, n_i) of one group into (m, e); ps and ns are destroyed.
	group := func(ps, ns []VecVirtual) {
		g := a.V()
		VMOVUPS(ns[0], g)
		for _, v := range ns[1:] {
			VMAXPS(v, g, g)
		}
		VMAXPS(e, g, g)
		VSUBPS(g, e, e) // e - e'
		a.scale2(m, e)
		for i := range ps {
			VSUBPS(g, ns[i], ns[i])
			a.scale2(ps[i], ns[i])
		}
		for k := 1; k < len(ps); k *= 2 {
			for i := 0; i+k < len(ps); i += 2 * k {
				VADDPS(ps[i+k], ps[i], ps[i])
			}
		}
		VADDPS(ps[0], m, m)
		VMOVUPS(g, e)
	}
	magic := a.loadReg(fc("magic", 0x1.8p23))
	parts := func(v VecVirtual) (VecVirtual, VecVirtual) {
		clampLo(v, lo)
		nn, p := a.expPartsMagic(v, magic)
		return p, nn
	}
	i := GP64()
	XORQ(i, i)
	loop("main", i, n, U*a.w, func() {
		prefetch(x, i, U*a.w)
		ps, ns := make([]VecVirtual, U), make([]VecVirtual, U)
		for u := 0; u < U; u++ {
			v := a.V()
			VMOVUPS(at(x, i, u*a.w), v)
			ps[u], ns[u] = parts(v)
		}
		group(ps, ns)
	})
	loop("one", i, n, a.w, func() {
		v := a.V()
		VMOVUPS(at(x, i, 0), v)
		p, nn := parts(v)
		group([]VecVirtual{p}, []VecVirtual{nn})
	})
	a.tail("tail", i, n, func(t tmask) {
		v := a.V()
		a.loadTailFill(at(x, i, 0), t, a.loadReg(fc("ninf", float32(math.Inf(-1)))), v)
		p, nn := parts(v)
		group([]VecVirtual{p}, []VecVirtual{nn})
	})
	VMOVUPS(m, Mem{Base: out})
	VMOVUPS(e, Mem{Base: out, Disp: 64})
	VZEROUPPER()
	RET()
}

// Two-pass softmax, pass 2: x[i] = p*inv * 2^(n-e) with (p, n) recomputed from x[i]. The
// factor inv is folded into the polynomial's coefficients (computed once per call), so
// the loop is the exp of pass 1 plus one subtraction and the scaling. Only rows with
// max x below ~99800 get here, so x needs no upper clamp.
func (a arch) twoPass2() {
	TEXT("softmax2Pass2"+a.name, NOSPLIT, "func(x []float32, inv, e float32)")
	Pragma("noescape")
	x, n := sliceBase("x"), sliceLen("x")
	lo := a.loadReg(fc("m1e5", -1e5))
	vinv, ve := a.V(), a.V()
	VBROADCASTSS(paramAddr("inv"), vinv)
	VBROADCASTSS(paramAddr("e"), ve)
	var k [6]VecVirtual
	for j, c := range []Mem{fc("one", 1), fc("c1", c1), fc("c2", c2), fc("c3", c3), fc("c4", c4), fc("c5", c5)} {
		k[j] = a.V()
		VMULPS(c, vinv, k[j])
	}
	magic := a.loadReg(fc("magic", 0x1.8p23))
	one := func(v VecVirtual) VecVirtual {
		clampLo(v, lo)
		nn := a.V()
		VMOVAPS(v, nn)
		VFMADD132PS(cLog2e(), magic, nn)
		VSUBPS(magic, nn, nn)
		VFNMADD231PS(fc("ln2hi", ln2hi), nn, v)
		VFNMADD231PS(fc("ln2lo", ln2lo), nn, v)
		p := a.V()
		VMOVUPS(k[5], p)
		for j := 4; j >= 0; j-- {
			VFMADD213PS(k[j], v, p)
		}
		VSUBPS(ve, nn, nn)
		a.scale2(p, nn)
		return p
	}
	i := GP64()
	XORQ(i, i)
	const U = 2
	loop("main", i, n, U*a.w, func() {
		prefetch(x, i, U*a.w)
		for u := 0; u < U; u++ {
			v := a.V()
			VMOVUPS(at(x, i, u*a.w), v)
			VMOVUPS(one(v), at(x, i, u*a.w))
		}
	})
	loop("one", i, n, a.w, func() {
		v := a.V()
		VMOVUPS(at(x, i, 0), v)
		VMOVUPS(one(v), at(x, i, 0))
	})
	a.tail("tail", i, n, func(t tmask) {
		v := a.V()
		a.loadTail(at(x, i, 0), t, v)
		a.storeTail(one(v), t, at(x, i, 0))
	})
	VZEROUPPER()
	RET()
}

// prefetch issues one PREFETCHT0 per cache line of the floats [i+pfDist, i+pfDist+step).
func prefetch(x, i GPVirtual, step int) {
	for off := 0; off < step; off += 16 {
		PREFETCHT0(at(x, i, pfDist+off))
	}
}

// pfDist is how far ahead (in floats: 8 KiB) the two-pass softmax prefetches. Measured
// on the development VM (Xeon, 16M-float rows): pass 1 and pass 2 each ran ~1.7x faster
// with it (4.3-4.5 ms instead of 7.5 ms per pass, i.e. at the speed of a plain streaming
// read), 1 KiB ahead gave half the gain, 4 KiB-16 KiB the same; in cache it costs nothing
// measurable. Without it the exp arithmetic and the memory stream do not overlap: the loop
// issues too few loads for the hardware prefetcher to run far enough ahead.
const pfDist = 2048

// multiMax is the most vectors one dotMulti kernel serves on a path (see dotMulti).
func multiMax(a arch) int {
	if a.z {
		return 4
	}
	return 3
}

func main() {
	// The stubs belong to package kernels (avo would default to the working directory's name).
	flag.Parse()
	if err := flag.Set("pkg", "kernels"); err != nil {
		panic(err)
	}
	// avo writes os.Args into the "Code generated" header; show the canonical command
	// instead of the actual output paths, so that regenerating elsewhere (the freshness
	// test) gives identical files.
	os.Args = []string{os.Args[0], "-out", "../kernels/float_amd64.s", "-stubs", "../kernels/float_stubs_amd64.go"}
	ConstraintExpr("!purego")
	for _, a := range []arch{avx512, avx2} {
		a.dot("dot", "func(a, b []float32) float32", "a", "b", "a", rowF32)
		a.dot("dotBytes", "func(row []byte, x []float32) float32", "row", "x", "x", rowF32)
		a.dot("dotF16", "func(row []byte, x []float32) float32", "row", "x", "x", rowF16)
		for k := 2; k <= multiMax(a); k++ {
			a.dotMulti("dotBytes", k, rowF32)
			a.dotMulti("dotF16", k, rowF16)
		}
		a.axpy()
		a.sumSq()
		a.rmsScale()
		a.siluMul()
		a.maxF32()
		a.expSum()
		a.scale()
		a.twoPass1()
		a.twoPass2()
	}
	Generate()
}
