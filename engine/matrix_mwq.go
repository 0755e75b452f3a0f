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
	groups      int      // Cols / 128
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
	if mm.Cols%kernels.MWQGroup != 0 {
		return fmt.Errorf("tensor %s: MWQ needs a multiple of %d columns, has %d", name, kernels.MWQGroup, mm.Cols)
	}
	g := mm.Cols / kernels.MWQGroup
	p := &mwqMatrix{b1: b1, maxBits: b1, groups: g, base: mm.Data}
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

// mulRows computes rows lo..hi-1 of M·x into out[:hi-lo] from x's I8 act encoding.
func (p *mwqMatrix) mulRows(out []float32, lo, hi int, xq []byte) {
	x8, xs, gsum := actI8View(xq, p.groups*kernels.MWQGroup)
	n := p.groups
	bb := kernels.MWQBaseBlockBytes(p.b1)
	var planes [8][]byte // a stack array: the hot path must not allocate
	for i, pl := range p.use {
		planes[i] = pl[lo*n*kernels.MWQPlaneBlockBytes : hi*n*kernels.MWQPlaneBlockBytes]
	}
	kernels.GemvMWQ(out[:hi-lo], p.base[lo*n*bb:hi*n*bb], p.b1, planes[:len(p.use)], x8[:n*kernels.MWQGroup], gsum, xs)
}

// rowF32 dequantises row i at the current width into dst (len Cols).
func (p *mwqMatrix) rowF32(i int, dst []float32) {
	bb := kernels.MWQBaseBlockBytes(p.b1)
	for g := 0; g < p.groups; g++ {
		blk := p.base[(i*p.groups+g)*bb:]
		s := kernels.F16ToF32(uint16(blk[0]) | uint16(blk[1])<<8)
		z := kernels.F16ToF32(uint16(blk[2]) | uint16(blk[3])<<8)
		o := dst[g*kernels.MWQGroup : (g+1)*kernels.MWQGroup]
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
