package bench

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/mole-llm/mole/engine"
	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/quant"
)

// Random models in mole's own types (docs/format.md), laid out as `mole quantize` writes
// them: the token embedding F16, routers F16, norms and biases F32, the output head
// MOLE_Q8, and the other projections in the scheme's type with their companion tensors
// (".scale", ".group", MWQ planes ".mwq<k>"). The encodings are random but valid: every
// code, zero point and multiplier lies in the range the format allows, and the float
// scales are chosen so that a weight's variance is 1/cols, as for the llama.cpp types,
// so activations stay finite through any number of layers.

// MoleSchemes are the --type names of mole's own schemes that gen-model writes.
var MoleSchemes = []string{"q8", "a8w4", "mwq24", "mwq58"}

// moleEnc is how a tensor of a mole-scheme model is generated.
type moleEnc uint8

const (
	encPlain    moleEnc = iota // rows of t.dt (F32, F16, ... as for llama.cpp types)
	encQ8                      // MOLE_Q8 int8 rows
	encQ8Scale                 // its F32 row scales
	encA8W4                    // MOLE_A8W4 4-bit codes
	encA8W4Grp                 // its I8 (zero point, S2) pairs
	encA8W4S1                  // its F32 s1 per row
	encMWQBase                 // MWQ_BASE2/5 blocks
	encMWQPlane                // MWQ_PLANE blocks of plane t.plane
)

// ParseGenType maps a gen-model --type to a llama.cpp dtype (scheme "") or to one of
// MoleSchemes.
func ParseGenType(s string) (loader.DType, string, error) {
	for _, m := range MoleSchemes {
		if strings.EqualFold(s, m) {
			return 0, m, nil
		}
	}
	dt, err := ParseType(s)
	if err != nil {
		return 0, "", fmt.Errorf("unknown type %q (want f16, q8_0, q4_0, f32, bf16, or mole's q8, a8w4, mwq24, mwq58)", s)
	}
	return dt, "", nil
}

// mwqWidths returns the base and widest widths of an MWQ scheme (ok false otherwise).
func mwqWidths(scheme string) (b1, k int, ok bool) {
	c, ok := engine.MWQSchemes[scheme]
	return c.BaseBits, c.MaxBits, ok
}

// moleMatrix appends the tensors of one weight matrix (shape: [rows, cols] or stacked
// [n_expert, rows, cols]) in scheme: q8 and a8w4 store every projection in their type;
// the MWQ schemes store routed experts (stacked tensors) whose width is a multiple of
// 128 as a base plus planes, and every other matrix in MOLE_Q8, as engine.SetMWQ does.
func moleMatrix(ts []genTensor, scheme, name string, shape []int) []genTensor {
	rows := 1
	for _, n := range shape[:len(shape)-1] {
		rows *= n
	}
	cols := shape[len(shape)-1]
	lead := shape[:len(shape)-1]
	with := func(last ...int) []int { return append(append([]int(nil), lead...), last...) }
	base := genTensor{name: name, rows: rows, cols: cols, scale: float32(math.Sqrt(3 / float64(cols))), matrix: name}
	add := func(suffix string, dt loader.DType, enc moleEnc, shape []int) {
		t := base
		t.name, t.dt, t.enc, t.shape = name+suffix, dt, enc, shape
		ts = append(ts, t)
	}
	b1, k, isMWQ := mwqWidths(scheme)
	switch {
	case isMWQ && len(shape) == 3 && cols%kernels.MWQGroup == 0:
		bdt, _ := quant.MWQBaseDType(b1)
		base.b1 = b1
		add("", bdt, encMWQBase, shape)
		for p := b1 + 1; p <= k; p++ {
			base.plane = p
			add(fmt.Sprintf(".mwq%d", p), loader.MWQPlane, encMWQPlane, shape)
		}
	case scheme == "a8w4":
		pc := loader.MoleA8W4.PaddedCols(cols)
		ng := (pc + quant.GroupSize - 1) / quant.GroupSize
		add("", loader.MoleA8W4, encA8W4, with(pc))
		add(".group", loader.I8, encA8W4Grp, with(2*ng))
		add(".scale", loader.F32, encA8W4S1, lead)
	default: // q8, and what MWQ keeps in MOLE_Q8
		add("", loader.MoleQ8, encQ8, with(loader.MoleQ8.PaddedCols(cols)))
		add(".scale", loader.F32, encQ8Scale, lead)
	}
	return ts
}

// splitmix64 is a cheap, well-mixed hash: the A8W4 zero points and multipliers are a
// function of (matrix, row, group), so that the codes' padding (which must equal the
// last group's zero point) and the .group tensor agree without sharing a stream.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// a8w4Group returns group g of row i's zero point z (4..11, so that codes 0..15 stay
// near both sides of it) and multiplier S2 (1..8: with |q-z| <= 11, |S2*(q-z)| <= 88
// fits int8 for every code, as the format requires of the codes a row uses).
func a8w4Group(key uint64, i, ng, g int) (z, s2 int) {
	h := splitmix64(key ^ uint64(i*ng+g)*0x2545f4914f6cdd1d)
	return 4 + int(h&7), 1 + int(h>>3&7)
}

// A8W4's code and multiplier moments under a8w4Group and uniform codes:
// E[(q-z)^2] = var(q) + E[(7.5-z)^2] = 255/12 + 21/4, E[S2^2] = 204/8.
const (
	a8w4CodeVar = 255.0/12 + 21.0/4
	a8w4S2Sq    = 204.0 / 8
)

// factorTable returns n values spread evenly over [lo, hi] times v, as f16: per-group
// scales vary a little around their mean, as real ones do.
func factorTable(n int, v, lo, hi float64) []uint16 {
	t := make([]uint16, n)
	for i := range t {
		t[i] = kernels.F32ToF16(float32(v * (lo + (hi-lo)*(float64(i)+0.5)/float64(n))))
	}
	return t
}

// newMoleRowGen returns the function appending row i (of t.rows) of a mole-scheme
// tensor; row is the matrix row's float scratch (unused here).
func newMoleRowGen(t genTensor, seed uint64) func(dst []byte, r *rand.Rand, i int) []byte {
	h := fnv.New64a()
	h.Write([]byte(t.matrix))
	key := h.Sum64() ^ seed*0x9e3779b97f4a7c15
	std := 1 / math.Sqrt(float64(t.cols)) // every scheme's weights have variance 1/cols
	switch t.enc {
	case encQ8:
		pc := loader.MoleQ8.PaddedCols(t.cols)
		return func(dst []byte, r *rand.Rand, _ int) []byte {
			o := len(dst)
			for k := 0; k < t.cols; k += 8 {
				dst = binary.LittleEndian.AppendUint64(dst, r.Uint64())
			}
			dst = dst[:o+t.cols]
			for j, b := range dst[o:] {
				if b == 0x80 { // the format's range is ±127
					dst[o+j] = 0x81
				}
			}
			for range pc - t.cols { // padding weights are 0
				dst = append(dst, 0)
			}
			return dst
		}
	case encQ8Scale:
		// int8 uniform on ±127 has variance 127²/3.
		s := std * math.Sqrt(3) / 127
		return func(dst []byte, r *rand.Rand, _ int) []byte {
			return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(s*(0.9+0.2*r.Float64()))))
		}
	case encA8W4:
		pc := loader.MoleA8W4.PaddedCols(t.cols)
		ng := (pc + quant.GroupSize - 1) / quant.GroupSize
		return func(dst []byte, r *rand.Rand, i int) []byte {
			o := len(dst)
			for range pc / 16 {
				dst = binary.LittleEndian.AppendUint64(dst, r.Uint64())
			}
			if pc > t.cols { // padding codes are the last group's zero point: weight 0
				z, _ := a8w4Group(key, i, ng, ng-1)
				row := dst[o:]
				for k := t.cols; k < pc; k++ {
					b := &row[k/32*16+k%16]
					if k%32 < 16 {
						*b = *b&0xF0 | byte(z)
					} else {
						*b = *b&0x0F | byte(z)<<4
					}
				}
			}
			return dst
		}
	case encA8W4Grp:
		ng := (loader.MoleA8W4.PaddedCols(t.cols) + quant.GroupSize - 1) / quant.GroupSize
		return func(dst []byte, _ *rand.Rand, i int) []byte {
			for g := range ng {
				z, s2 := a8w4Group(key, i, ng, g)
				dst = append(dst, byte(z), byte(s2))
			}
			return dst
		}
	case encA8W4S1:
		s := std / math.Sqrt(a8w4CodeVar*a8w4S2Sq)
		return func(dst []byte, r *rand.Rand, _ int) []byte {
			return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(s*(0.8+0.4*r.Float64()))))
		}
	case encMWQBase:
		// Codes q uniform on 0..2^b1-1 around z = their mean, var(q) = (4^b1-1)/12; the
		// planes add s1²/16 + s1²/64 + ... (see encMWQPlane), about s1²/12 in all.
		b1 := t.b1
		center := float64(int(1)<<b1-1) / 2
		s1 := std / math.Sqrt((float64(int(1)<<(2*b1))-1)/12+1.0/12)
		scales := factorTable(64, s1, 0.8, 1.2)
		zeros := factorTable(64, 1, center-0.25, center+0.25)
		ng := t.cols / kernels.MWQGroup
		return func(dst []byte, r *rand.Rand, _ int) []byte {
			for range ng {
				u := r.Uint64()
				dst = binary.LittleEndian.AppendUint16(dst, scales[u&63])
				dst = binary.LittleEndian.AppendUint16(dst, zeros[u>>6&63])
				for range 2 * b1 {
					dst = binary.LittleEndian.AppendUint64(dst, r.Uint64())
				}
			}
			return dst
		}
	case encMWQPlane:
		// A residual after rounding to a step s1 is about uniform on ±s1/2 (mean |R| =
		// s1/4): plane b1+1's scale is s1/4 and each further plane halves it, as MWQ's
		// fit gives them.
		b1 := t.b1
		s1 := std / math.Sqrt((float64(int(1)<<(2*b1))-1)/12+1.0/12)
		sk := s1 / float64(int(2)<<(t.plane-b1))
		scales := factorTable(64, sk, 0.8, 1.2)
		ng := t.cols / kernels.MWQGroup
		return func(dst []byte, r *rand.Rand, _ int) []byte {
			for range ng {
				dst = binary.LittleEndian.AppendUint16(dst, scales[r.Uint64()&63])
				dst = binary.LittleEndian.AppendUint64(dst, r.Uint64())
				dst = binary.LittleEndian.AppendUint64(dst, r.Uint64())
			}
			return dst
		}
	}
	panic("bench: newMoleRowGen: not a mole encoding")
}

// setMoleMeta writes the mole.quant.* (and mole.mwq.*) keys `mole quantize` writes for
// scheme; general.file_type is left out, as for quantized files (no llama.cpp value
// describes a mix of mole's types).
func setMoleMeta(w *loader.GGUFWriter, scheme string) {
	w.Set("mole.quant.scheme", loader.StringValue(scheme))
	w.Set("mole.quant.group_size", loader.Uint32Value(quant.GroupSize))
	w.Set("mole.quant.router", loader.StringValue("f16"))
	if b1, k, ok := mwqWidths(scheme); ok {
		w.Set("mole.mwq.base_bits", loader.Uint32Value(uint32(b1)))
		w.Set("mole.mwq.max_bits", loader.Uint32Value(uint32(k)))
	}
}
