package engine

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/quant"
)

// mole's own weight types (docs/format.md): MOLE_Q8 (A8W8) and MOLE_A8W4 (DGQ) run on
// the int8 kernels against activations quantised per token (the "I8 act" encoding
// below); MOLE_RTN4, the round-to-nearest yardstick, is a self-contained float path.

// actKind is how the inputs of a model's Quantized matrices are encoded. A model uses
// one kind (checked at load), so one quantisation of a shared input serves every
// matrix that reads it. The zero value is llama.cpp's Q8_0 blocks, which models built
// without Load (tests) get.
type actKind uint8

const (
	actQ8_0 actKind = iota // GGUF Q8_0 / Q4_0 weights: kernels.QuantizeQ8_0Act blocks
	actI8                  // mole's int8 types: I8 act, one scale per token
)

// The I8 act encoding of n values (shared with the MWQ types): P = n rounded up to 32
// int8 values (the kernels' granularity; the padding is 0), then the float32 scale
// (little-endian), then one int32 sum of the int8 values per group of 128 (used by
// MWQ's zero-point terms).
func actI8Bytes(n int) int {
	p := (n + 31) / 32 * 32
	return p + 4 + 4*((p+quant.GroupSize-1)/quant.GroupSize)
}

// actI8View splits an I8 act encoding of n values into its parts.
func actI8View(xq []byte, n int) (x8 []int8, scale float32, gsum []int32) {
	p := (n + 31) / 32 * 32
	x8 = unsafe.Slice((*int8)(unsafe.Pointer(&xq[0])), p)
	scale = math.Float32frombits(uint32(xq[p]) | uint32(xq[p+1])<<8 | uint32(xq[p+2])<<16 | uint32(xq[p+3])<<24)
	ng := (p + quant.GroupSize - 1) / quant.GroupSize
	gsum = unsafe.Slice((*int32)(unsafe.Pointer(&xq[p+4])), ng)
	return x8, scale, gsum
}

// quantizeActI8 writes the I8 act encoding of x into dst (actI8Bytes(len(x)) bytes):
// DGQ's per-token symmetric int8 activations, x8 = round(x * 127/max|x|).
func quantizeActI8(dst []byte, x []float32) {
	n := len(x)
	p := (n + 31) / 32 * 32
	x8 := unsafe.Slice((*int8)(unsafe.Pointer(&dst[0])), p)
	s := kernels.QuantizeI8(x8[:n], x)
	clear(x8[n:])
	b := math.Float32bits(s)
	dst[p], dst[p+1], dst[p+2], dst[p+3] = byte(b), byte(b>>8), byte(b>>16), byte(b>>24)
	for g := 0; g*quant.GroupSize < p; g++ {
		var sum int32
		for _, v := range x8[g*quant.GroupSize : min(p, (g+1)*quant.GroupSize)] {
			sum += int32(v)
		}
		o := p + 4 + 4*g
		dst[o], dst[o+1], dst[o+2], dst[o+3] = byte(sum), byte(sum>>8), byte(sum>>16), byte(sum>>24)
	}
}

func actBytesOf(k actKind, n int) int {
	if k == actI8 {
		return actI8Bytes(n)
	}
	return kernels.Q8ActBytes(n)
}

func quantActOf(k actKind, dst []byte, x []float32) {
	if k == actI8 {
		quantizeActI8(dst, x)
		return
	}
	kernels.QuantizeQ8_0Act(dst, x)
}

// actBytes is the size of the encoded input of n values for m's Quantized matrices.
func (m *Model) actBytes(n int) int { return actBytesOf(m.act, n) }

// quantAct encodes x for m's Quantized matrices into dst (m.actBytes(len(x)) bytes).
func (m *Model) quantAct(dst []byte, x []float32) { quantActOf(m.act, dst, x) }

// actBuf bounds the bytes that parts consecutive encodings of inputs totalling n values
// take (the FFN keeps one per expert in use).
func (m *Model) actBuf(n, parts int) int {
	if m.act == actI8 {
		return n + n/32 + parts*(31+4+8) + 64
	}
	return kernels.Q8ActBytes(n + kernels.QK)
}

func (m *Matrix) actKind() actKind {
	if m.mole != nil || m.DType.Mole() {
		return actI8
	}
	return actQ8_0
}

// actBytes is the size of this matrix's encoded input of n values.
func (m *Matrix) actBytes(n int) int { return actBytesOf(m.actKind(), n) }

// quantAct encodes x (len Cols) as this matrix's products expect it.
func (m *Matrix) quantAct(dst []byte, x []float32) { quantActOf(m.actKind(), dst, x) }

// setAct finds the model's activation encoding and refuses a model whose Quantized
// matrices need two different ones (GGUF Q8_0/Q4_0 next to mole's int8 types).
func (m *Model) setAct() error {
	var q8, i8 string
	visit := func(mm *Matrix) {
		if mm == nil || !mm.Quantized() {
			return
		}
		if mm.actKind() == actI8 {
			i8 = mm.Name
		} else {
			q8 = mm.Name
		}
	}
	visit(m.Output)
	for l := range m.Layers {
		L := &m.Layers[l]
		for _, mm := range []*Matrix{L.Wq, L.Wk, L.Wv, L.Wo, L.Gate, L.Up, L.Down, L.ShGate, L.ShUp, L.ShDown} {
			visit(mm)
		}
		for _, ms := range [][]*Matrix{L.ExpGate, L.ExpUp, L.ExpDown} {
			for _, mm := range ms {
				visit(mm)
			}
		}
	}
	if q8 != "" && i8 != "" {
		return fmt.Errorf("tensors %s and %s need different activation encodings (Q8_0 blocks, per-token int8): mixing GGUF Q8_0/Q4_0 with mole's types is not supported", q8, i8)
	}
	if i8 != "" {
		m.act = actI8
	}
	return nil
}

// moleMatrix is the load-time preparation of a MOLE_Q8 or MOLE_A8W4 matrix: the
// weights and the A8W4 group pairs (z, S2) stay in the mapping, which the table-free
// A8W4 kernels (kernels.GemvA8W4G) read as stored; the per-row scales and the row sums
// the amd64 kernels need are built once.
type moleMatrix struct {
	pc     int // stored row width (Cols rounded up to 32)
	w8     []int8
	codes  []byte
	groups []byte    // A8W4: the (z, S2) pair of each (row, group of 128), as stored
	scale  []float32 // row scale (Q8) or s1 (A8W4)
	rowSum []int32
}

// bindMole finds a mole matrix's companion tensors (name+".scale", name+".group"; for
// expert e of a stacked tensor of nExpert, slice e of them) and prepares it.
func bindMole(lm *loader.Model, mm *Matrix, name string, e, nExpert int) error {
	if mm.qk == qkMWQ { // MWQ types bind their planes in matrix_mwq.go
		return bindMWQ(lm, mm, name, e, nExpert)
	}
	switch mm.DType {
	case loader.MoleQ8, loader.MoleA8W4:
	default:
		return nil // MOLE_RTN4 is self-contained
	}
	part := func(suffix string, dt loader.DType, per int) ([]byte, error) {
		t, ok := lm.Tensor(name + suffix)
		if !ok {
			return nil, fmt.Errorf("tensor %s (%v) lacks its companion %s%s", name, mm.DType, name, suffix)
		}
		n := per * dt.BlockBytes()
		if t.DType != dt || len(t.Data) != n*max(nExpert, 1) {
			return nil, fmt.Errorf("tensor %s%s: %v, %d bytes; want %v, %d bytes", name, suffix, t.DType, len(t.Data), dt, n*max(nExpert, 1))
		}
		if e < 0 {
			return t.Data, nil
		}
		return t.Data[e*n : (e+1)*n], nil
	}
	sb, err := part(".scale", loader.F32, mm.Rows)
	if err != nil {
		return err
	}
	p := &moleMatrix{pc: mm.DType.PaddedCols(mm.Cols), scale: make([]float32, mm.Rows), rowSum: make([]int32, mm.Rows)}
	kernels.DequantF32Bytes(p.scale, sb)
	if mm.DType == loader.MoleQ8 {
		p.w8 = unsafe.Slice((*int8)(unsafe.Pointer(&mm.Data[0])), len(mm.Data))
		kernels.RowSumsI8(p.rowSum, p.w8, p.pc)
	} else {
		ng := (p.pc + quant.GroupSize - 1) / quant.GroupSize
		gb, err := part(".group", loader.I8, mm.Rows*ng*2)
		if err != nil {
			return err
		}
		p.codes = mm.Data
		for i := 0; i < mm.Rows*ng; i++ {
			z, s2 := int(int8(gb[2*i])), int(int8(gb[2*i+1]))
			if z < 0 || z > 15 || s2 < 1 {
				return fmt.Errorf("tensor %s: group %d has zero point %d, multiplier %d (want 0..15, >= 1)", name, i, z, s2)
			}
		}
		// The kernels map code q of a group to max(-127, min(127, S2*(q-z))): the
		// quantizer clamps the codes a group uses so that S2*(q-z) fits int8, and the
		// entries of codes it never uses are saturated.
		p.groups = gb
		kernels.RowSumsA8W4G(p.rowSum, p.codes, p.groups, p.pc)
	}
	mm.mole = p
	return nil
}

// mulRows computes rows lo..hi-1 of M·x into out[:hi-lo] from x's I8 act encoding.
func (p *moleMatrix) mulRows(out []float32, lo, hi int, xq []byte) {
	x8, xs, _ := actI8View(xq, p.pc)
	if p.w8 != nil {
		kernels.GemvI8(out[:hi-lo], p.w8[lo*p.pc:hi*p.pc], p.scale[lo:hi], p.rowSum[lo:hi], x8, xs)
		return
	}
	cb, gb := p.pc/2, p.groupBytes()
	kernels.GemvA8W4G(out[:hi-lo], p.codes[lo*cb:hi*cb], p.groups[lo*gb:hi*gb], p.scale[lo:hi], p.rowSum[lo:hi], x8, xs)
}

// groupBytes is the size of one A8W4 row's stored group pairs.
func (p *moleMatrix) groupBytes() int {
	return (p.pc + quant.GroupSize - 1) / quant.GroupSize * 2
}

// rowF32 dequantises row i into dst (len Cols).
func (p *moleMatrix) rowF32(i int, dst []float32) { p.rowF32Range(i, 0, dst) }

// dotRow is row i · x with float activations (router-style callers, converters).
func (p *moleMatrix) dotRow(i int, x []float32) float32 {
	var buf [256]float32
	var sum float32
	for k := 0; k < len(x); k += len(buf) {
		n := min(len(buf), len(x)-k)
		p.rowF32Range(i, k, buf[:n])
		sum += kernels.Dot(buf[:n], x[k:k+n])
	}
	return sum
}

// rowF32Range dequantises columns k0..k0+len(dst)-1 of row i.
func (p *moleMatrix) rowF32Range(i, k0 int, dst []float32) {
	s := p.scale[i]
	if p.w8 != nil {
		for j := range dst {
			dst[j] = s * float32(p.w8[i*p.pc+k0+j])
		}
		return
	}
	cb, gb := p.pc/2, p.groupBytes()
	codes, groups := p.codes[i*cb:(i+1)*cb], p.groups[i*gb:(i+1)*gb]
	for j := range dst {
		k := k0 + j
		b := codes[k/32*16+k%16]
		c := int(b & 15)
		if k%32 >= 16 {
			c = int(b >> 4)
		}
		g := k / quant.GroupSize
		z, s2 := int(int8(groups[2*g])), int(int8(groups[2*g+1]))
		dst[j] = s * float32(int8(max(-127, min(127, s2*(c-z)))))
	}
}

// dequantRTN4 is MOLE_RTN4's row dequantiser (the matrix runs as float32; see rtn4AsF32).
func dequantRTN4(dst []float32, src []byte) { quant.DequantRTN4(dst, src) }
