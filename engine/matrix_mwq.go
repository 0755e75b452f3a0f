package engine

import (
	"fmt"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
)

// MWQ matrices (Matryoshka bit-nested weights, docs/quant.md "MWQ"): the base tensor
// (MWQ_BASE2 or MWQ_BASE5) is the matrix's own data; its residual planes are the
// tensors "<name>.mwq<k>" (k = b1+1..K, MWQ_PLANE), each stacked over experts like the
// base, so plane k of expert e is one contiguous byte range. A product at b bits reads
// the base and planes b1+1..b only: pages of the wider planes are never touched, which
// is what lets resident memory follow --expert-bits.

// mwqMatrix is an MWQ matrix bound to its planes; bits is the width products use.
type mwqMatrix struct {
	b1, maxBits int
	cols        int      // the matrix's Cols; rows are stored groups*128 wide
	groups      int      // Cols / 128, rounded up
	base        []byte   // Rows*groups base blocks
	planes      [][]byte // planes[i] is plane b1+1+i: Rows*groups plane blocks
	use         [][]byte // planes[:bits-b1], what products read
}

// mwqBaseBits is the base width of an MWQ base type (0 for other types).
func mwqBaseBits(dt loader.DType) int {
	switch dt {
	case loader.MWQBase2:
		return 2
	case loader.MWQBase5:
		return 5
	}
	return 0
}

// bindMWQ finds the residual planes of MWQ matrix mm (tensor name; expert e of nExpert
// when stacked, e < 0 otherwise) and prepares it to run at its full width.
func bindMWQ(lm *loader.Model, mm *Matrix, name string, e, nExpert int) error {
	b1 := mwqBaseBits(mm.DType)
	g := (mm.Cols + kernels.MWQGroup - 1) / kernels.MWQGroup
	if pc := g * kernels.MWQGroup; pc != mm.Cols && pc > mwqPadMaxCols {
		return fmt.Errorf("tensor %s: %d columns stored padded to %d; mole runs padded MWQ rows up to %d wide", name, mm.Cols, pc, mwqPadMaxCols)
	}
	p := &mwqMatrix{b1: b1, maxBits: b1, cols: mm.Cols, groups: g, base: mm.Data}
	per := mm.Rows * g * kernels.MWQPlaneBlockBytes
	for k := b1 + 1; ; k++ {
		t, ok := lm.Tensor(fmt.Sprintf("%s.mwq%d", name, k))
		if !ok {
			break
		}
		if t.DType != loader.MWQPlane || len(t.Data) != per*max(nExpert, 1) {
			return fmt.Errorf("tensor %s.mwq%d: %v, %d bytes; want %v, %d bytes", name, k, t.DType, len(t.Data), loader.MWQPlane, per*max(nExpert, 1))
		}
		d := t.Data
		if e >= 0 {
			d = d[e*per : (e+1)*per]
		}
		p.planes = append(p.planes, d)
		p.maxBits = k
	}
	p.use = p.planes
	mm.mwq = p
	return nil
}

// setBits chooses the width (clamped to b1..maxBits) and returns it.
func (p *mwqMatrix) setBits(bits int) int {
	bits = min(max(bits, p.b1), p.maxBits)
	p.use = p.planes[:bits-p.b1]
	return bits
}

// mwqPadMaxCols bounds the stored width of a padded MWQ matrix (one whose Cols is not a
// multiple of 128): its products copy the input onto the stack, zero-padded.
const mwqPadMaxCols = 16384

// mwqPadSmall is the stack copy used for padded rows up to this wide (stories260K-sized
// models), so that they do not clear the large one for every product.
const mwqPadSmall = 1024

// mulRows computes rows lo..hi-1 of M·x into out[:hi-lo] from x's I8 act encoding.
// Rows are stored groups*128 wide; the encoding holds Cols values (rounded up to 32,
// padded with 0) and the group sums of those, so when Cols is not a multiple of 128 the
// kernel gets a zero-padded copy of the values: the padded weights, which need not
// decode to 0 (docs/format.md "MWQ"), then meet zero activations and add exactly 0 to
// every integer dot, and the group sums already are those of the padded input.
func (p *mwqMatrix) mulRows(out []float32, lo, hi int, xq []byte) {
	x8, xs, gsum := actI8View(xq, p.cols)
	pc := p.groups * kernels.MWQGroup
	switch {
	case len(x8) >= pc:
		p.gemv(out, lo, hi, x8[:pc], gsum, xs)
	case pc <= mwqPadSmall:
		var buf [mwqPadSmall]int8 // on the stack: the hot path must not allocate
		copy(buf[:], x8)
		p.gemv(out, lo, hi, buf[:pc], gsum, xs)
	default:
		var buf [mwqPadMaxCols]int8
		copy(buf[:], x8)
		p.gemv(out, lo, hi, buf[:pc], gsum, xs)
	}
}

// gemmRows writes rows lo..hi-1 of the product with the len(xq)/qn tokens whose I8 act
// encodings (qn bytes each) are packed in xq into out, token-major (out[t*(hi-lo)+r-lo]):
// one fused GEMV per token, the kernel Forward runs, so a Batch's bits are Forward's.
// (Each token's activations meet every weight row once; MWQ has no multi-token kernel.)
func (p *mwqMatrix) gemmRows(out []float32, lo, hi int, xq []byte, qn int) {
	n := hi - lo
	for t := range len(xq) / qn {
		p.mulRows(out[t*n:(t+1)*n], lo, hi, xq[t*qn:(t+1)*qn])
	}
}

// gemv runs the kernel on rows lo..hi-1 with the int8 input x (groups*128 values).
func (p *mwqMatrix) gemv(out []float32, lo, hi int, x []int8, gsum []int32, xs float32) {
	n := p.groups
	bb := kernels.MWQBaseBlockBytes(p.b1)
	var planes [8][]byte // a stack array: the hot path must not allocate
	for i, pl := range p.use {
		planes[i] = pl[lo*n*kernels.MWQPlaneBlockBytes : hi*n*kernels.MWQPlaneBlockBytes]
	}
	kernels.GemvMWQ(out[:hi-lo], p.base[lo*n*bb:hi*n*bb], p.b1, planes[:len(p.use)], x, gsum[:n], xs)
}

// rowF32 dequantises row i at the current width into dst (len Cols; the padded
// columns are not part of the matrix).
func (p *mwqMatrix) rowF32(i int, dst []float32) {
	bb := kernels.MWQBaseBlockBytes(p.b1)
	for g := 0; g < p.groups; g++ {
		blk := p.base[(i*p.groups+g)*bb:]
		s := kernels.F16ToF32(uint16(blk[0]) | uint16(blk[1])<<8)
		z := kernels.F16ToF32(uint16(blk[2]) | uint16(blk[3])<<8)
		o := dst[g*kernels.MWQGroup : min(p.cols, (g+1)*kernels.MWQGroup)]
		for k := range o {
			c := 0
			for j := 0; j < p.b1; j++ {
				c |= int(blk[4+16*j+k/8]>>(k%8)&1) << j
			}
			o[k] = s * (float32(c) - z)
		}
		for _, pl := range p.use {
			pb := pl[(i*p.groups+g)*kernels.MWQPlaneBlockBytes:]
			sk := kernels.F16ToF32(uint16(pb[0]) | uint16(pb[1])<<8)
			for k := range o {
				if pb[2+k/8]>>(k%8)&1 != 0 {
					o[k] += sk
				} else {
					o[k] -= sk
				}
			}
		}
	}
}

// dotRow is row i · x with float activations (converters, diagnostics).
func (p *mwqMatrix) dotRow(i int, x []float32) float32 {
	buf := make([]float32, len(x))
	p.rowF32(i, buf)
	return kernels.Dot(buf, x)
}

// MWQBits reports the MWQ widths of m's routed experts: the base width b1 and the
// widest stored width K (ok false when no expert is MWQ).
func (m *Model) MWQBits() (base, maxBits int, ok bool) {
	for l := range m.Layers {
		for _, e := range m.Layers[l].ExpGate {
			if e != nil && e.mwq != nil {
				return e.mwq.b1, e.mwq.maxBits, true
			}
		}
	}
	return 0, 0, false
}

// SetExpertBits sets the width at which each layer's MWQ experts are read: bits[l] for
// layer l (a shorter slice repeats its last value; 0 means the widest stored). Widths
// are clamped to [b1, K]. It returns the widths in effect per layer (0 for layers
// without MWQ experts). It must not be called while a State of m runs Forward.
func (m *Model) SetExpertBits(bits []int) []int {
	got := make([]int, len(m.Layers))
	for l := range m.Layers {
		want := 0
		if len(bits) > 0 {
			want = bits[min(l, len(bits)-1)]
		}
		L := &m.Layers[l]
		for _, ms := range [][]*Matrix{L.ExpGate, L.ExpUp, L.ExpDown} {
			for _, e := range ms {
				if e == nil || e.mwq == nil {
					continue
				}
				b := want
				if b <= 0 {
					b = e.mwq.maxBits
				}
				got[l] = e.mwq.setBits(b)
			}
		}
	}
	return got
}
