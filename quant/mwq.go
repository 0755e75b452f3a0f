package quant

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
)

// MWQ: Matryoshka weight quantization (D²MoE, docs/algorithms.md §2, docs/quant.md "MWQ").
//
// A weight row is cut into groups of MWQGroup columns. Each group gets
//   - a base of b1 bits: codes q in 0..2^b1-1 with scale s1 and zero z, W ≈ s1*(q - z);
//   - ±1 residual planes k = b1+1..K, each with its own scale s_k:
//     W_k = W_{k-1} + s_k*sign(W - W_{k-1}).
// Reading the weights at b bits uses the base and planes b1+1..b only, so the planes are
// stored apart (one tensor each) and a narrower read touches fewer bytes.
//
// Every scale is fitted to the output error ||(W - Ŵ) X||², i.e. (W-Ŵ) H (W-Ŵ)^T with
// the calibration Gram matrix H = Σ_t x_t x_t^T, restricted to the group's columns (the
// group's block of H), because that is what the model sees; with no calibration H is the
// identity and the fit minimises plain weight error. Optionally (MWQConfig.GPTQ) each
// stage runs GPTQ-style: columns are quantised in order and each column's output error
// is pushed onto the columns not yet quantised, through the Cholesky factor of H⁻¹.

// MWQGroup is the number of weights (along a row) sharing one set of scales.
const MWQGroup = 128

// mwqPlaneBytes is the size of one bit-plane of one group.
const mwqPlaneBytes = MWQGroup / 8

// MWQConfig chooses the widths and the fit.
type MWQConfig struct {
	BaseBits int // b1: 2 (mwq24) or 5 (mwq58); any of 1..6 works
	MaxBits  int // K: 4 (mwq24) or 8 (mwq58)
	// GPTQ also quantises with GPTQ-style error compensation across columns (in the
	// base, and in the planes too with GPTQPlanes) and keeps, row by row, whichever of
	// the two fits better over all widths. Only with calibration (H != nil).
	GPTQ, GPTQPlanes bool
	// Damp is added to H's diagonal, relative to its mean (0 means 0.01). It keeps the
	// fit well posed for channels the calibration never excited.
	Damp float64
	// Grid is the number of clipping ratios tried for the base (0 means 20).
	Grid int
	// WideWeight multiplies the widest width's log(output error) in every score of the
	// search (0 means 1: all widths alike); > 1 trades narrow-width quality for wide.
	WideWeight float64
}

// MWQTensor is one quantised matrix [Rows, Cols]. Rows are stored PadCols wide: Cols
// rounded up to a whole number of groups (docs/format.md "Row padding"). Base holds
// Rows*PadCols/128 blocks of MWQBaseDType(BaseBits), Planes[i] (plane k = BaseBits+1+i)
// Rows*PadCols/128 blocks of loader.MWQPlane, both in row-major group order. Byte
// layouts: docs/format.md.
type MWQTensor struct {
	Rows, Cols        int
	PadCols           int
	BaseBits, MaxBits int
	Base              []byte
	Planes            [][]byte
}

// MWQPadCols is the stored row width of an MWQ matrix of cols columns: cols rounded up
// to a whole number of groups.
func MWQPadCols(cols int) int { return (cols + MWQGroup - 1) / MWQGroup * MWQGroup }

// MWQBaseDType is the tensor type of a base of b1 bits.
func MWQBaseDType(baseBits int) (loader.DType, error) {
	switch baseBits {
	case 2:
		return loader.MWQBase2, nil
	case 5:
		return loader.MWQBase5, nil
	}
	return 0, fmt.Errorf("mwq: no tensor type for a %d-bit base (2 or 5)", baseBits)
}

// MWQBaseBlockBytes is the size of one base block of b1 bits: f16 s1, f16 z, b1 planes.
func MWQBaseBlockBytes(baseBits int) int { return 4 + baseBits*mwqPlaneBytes }

// MWQPlaneBlockBytes is the size of one residual-plane block: f16 s_k and 16 bytes of bits.
const MWQPlaneBlockBytes = 2 + mwqPlaneBytes

// QuantizeMWQ quantises w (rows x cols, row-major) with the Gram matrix H (cols x cols
// row-major, Σ_t x_t x_t^T over calibration inputs of this matrix; nil means the
// identity).
//
// When cols is not a multiple of 128, each row is stored padded to MWQPadCols(cols) with
// target weights 0 in the padded columns. A ±1 plane cannot encode 0, so the padded
// weights do not decode to 0; the engine feeds those columns zero activations, so they
// never change a product, and the fit gives them no weight: every error the search and
// the scale fits measure runs through H's block, whose padded rows and columns are 0, and
// the ranges and means the candidates start from are taken over the real columns only.
func QuantizeMWQ(w []float32, rows, cols int, H []float64, cfg MWQConfig) (*MWQTensor, error) {
	if cols <= 0 || rows <= 0 {
		return nil, fmt.Errorf("mwq: %dx%d matrix", rows, cols)
	}
	if len(w) != rows*cols {
		return nil, fmt.Errorf("mwq: %d weights for %dx%d", len(w), rows, cols)
	}
	if cfg.BaseBits < 1 || cfg.BaseBits > 6 || cfg.MaxBits < cfg.BaseBits || cfg.MaxBits > cfg.BaseBits+8 {
		return nil, fmt.Errorf("mwq: base %d bits, max %d bits", cfg.BaseBits, cfg.MaxBits)
	}
	if H != nil && len(H) != cols*cols {
		return nil, fmt.Errorf("mwq: H has %d entries, want %d", len(H), cols*cols)
	}
	if cfg.Damp == 0 {
		cfg.Damp = 0.01
	}
	if cfg.Grid == 0 {
		cfg.Grid = 20
	}
	if cfg.WideWeight == 0 {
		cfg.WideWeight = 1
	}
	for _, v := range w {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, errors.New("mwq: weights contain NaN or Inf")
		}
	}
	// Everything below runs on the stored width pc: the weights padded with zeros, H
	// padded with zero rows and columns (the damping still gives the padded diagonal a
	// positive entry, which keeps the GPTQ factor defined and, H being block diagonal
	// between real and padded columns, couples nothing to them).
	pc := MWQPadCols(cols)
	wd := make([]float64, rows*pc)
	for r := 0; r < rows; r++ {
		for k, v := range w[r*cols : (r+1)*cols] {
			wd[r*pc+k] = float64(v)
		}
	}
	Hp := H
	if H != nil && pc != cols {
		Hp = make([]float64, pc*pc)
		for i := 0; i < cols; i++ {
			copy(Hp[i*pc:i*pc+cols], H[i*cols:(i+1)*cols])
		}
	}
	h := dampedGram(Hp, pc, cols, cfg.Damp)
	q := &mwqQuantizer{cfg: cfg, rows: rows, cols: pc, valid: cols, h: h, groups: pc / MWQGroup}
	q.blocks = make([]gblock, q.groups)
	for g := range q.blocks {
		q.blocks[g] = gramBlock(h, pc, cols, g)
	}
	t := q.quantize(wd, nil)
	if !cfg.GPTQ || H == nil {
		return t, nil
	}
	// GPTQ compensation lowers the narrow widths' error a lot on some rows and raises
	// the wide widths' on others (the compensated base leaves residuals the ±1 planes
	// follow badly). So both are computed and each row keeps the one with the lower
	// Σ_b log(output error at width b), the score the per-group search uses.
	u, err := gptqFactor(h, pc)
	if err != nil {
		return nil, err
	}
	tg := q.quantize(wd, u)
	q.pickRows(t, tg, wd)
	return t, nil
}

// quantize runs the stages (0: the base; i >= 1: plane b1+i, fitted against what the
// narrower widths left, W - W_{k-1}) over all rows, with GPTQ compensation when u (the
// Cholesky factor of H⁻¹) is given: in the base, and in the planes if cfg.GPTQPlanes.
// Rows are independent, so each runs on its own.
func (q *mwqQuantizer) quantize(wd []float64, u []float64) *MWQTensor {
	rows, cols, cfg := q.rows, q.cols, q.cfg
	t := &MWQTensor{Rows: rows, Cols: q.valid, PadCols: cols, BaseBits: cfg.BaseBits, MaxBits: cfg.MaxBits}
	nb := rows * q.groups
	t.Base = make([]byte, nb*MWQBaseBlockBytes(cfg.BaseBits))
	t.Planes = make([][]byte, cfg.MaxBits-cfg.BaseBits)
	for i := range t.Planes {
		t.Planes[i] = make([]byte, nb*MWQPlaneBlockBytes)
	}
	// approx holds the current reconstruction W_k (as stored: f16 scales).
	approx := make([]float64, len(wd))
	for stage := 0; stage <= len(t.Planes); stage++ {
		parallelRows(rows, func(r int) {
			row := wd[r*cols : (r+1)*cols]
			ap := approx[r*cols : (r+1)*cols]
			target := make([]float64, cols)
			for k := range target {
				target[k] = row[k] - ap[k]
			}
			rec := make([]float64, cols)
			if u != nil && (stage == 0 || cfg.GPTQPlanes) {
				q.gptqRow(t, stage, r, target, rec, u)
			} else {
				for g := 0; g < q.groups; g++ {
					o := g * MWQGroup
					q.quantGroup(t, stage, r, g, target[o:o+MWQGroup], rec[o:o+MWQGroup], nil)
				}
			}
			for k := range ap {
				ap[k] += rec[k]
			}
		})
	}
	return t
}

// pickRows replaces the rows of t whose score (Σ over widths of log d^T H d, d the row's
// error at that width over the real columns) is worse than alt's by alt's. w is the
// padded weights (rows x q.cols).
func (q *mwqQuantizer) pickRows(t, alt *MWQTensor, w []float64) {
	cols, n := q.cols, q.cols
	hf := make([]float32, n*n)
	for i, v := range q.h {
		hf[i] = float32(v)
	}
	bb := MWQBaseBlockBytes(q.cfg.BaseBits)
	score := func(mt *MWQTensor, r int, d, hd, row []float32) float64 {
		g := q.groups
		var planes [][]byte
		var sc float64
		for b := q.cfg.BaseBits; b <= q.cfg.MaxBits; b++ {
			MWQDequant(row, 1, cols, q.cfg.BaseBits, mt.Base[r*g*bb:(r+1)*g*bb], planes)
			for k := range d {
				d[k] = 0 // padded columns see zero activations
				if k < q.valid {
					d[k] = float32(w[r*cols+k]) - row[k]
				}
			}
			for i := range hd {
				hd[i] = kernels.Dot(hf[i*n:(i+1)*n], d)
			}
			lg := math.Log(float64(kernels.Dot(d, hd)) + 1e-30)
			if b == q.cfg.MaxBits {
				lg *= q.cfg.WideWeight
			}
			sc += lg
			if b < q.cfg.MaxBits {
				p := mt.Planes[b-q.cfg.BaseBits]
				planes = append(planes, p[r*g*MWQPlaneBlockBytes:(r+1)*g*MWQPlaneBlockBytes])
			}
		}
		return sc
	}
	parallelRows(q.rows, func(r int) {
		d, hd, row := make([]float32, cols), make([]float32, cols), make([]float32, cols)
		if score(alt, r, d, hd, row) < score(t, r, d, hd, row) {
			g := q.groups
			copy(t.Base[r*g*bb:(r+1)*g*bb], alt.Base[r*g*bb:(r+1)*g*bb])
			for i := range t.Planes {
				o := r * g * MWQPlaneBlockBytes
				copy(t.Planes[i][o:o+g*MWQPlaneBlockBytes], alt.Planes[i][o:o+g*MWQPlaneBlockBytes])
			}
		}
	})
}

type mwqQuantizer struct {
	cfg        MWQConfig
	rows, cols int // cols: the stored (padded) width
	valid      int // the real columns, 0..valid-1; the rest are padding
	groups     int
	h          []float64 // damped H, cols x cols
	blocks     []gblock  // blocks[g]: H restricted to group g's columns
}

// validIn is the number of real columns in group g (128 but in a padded last group).
func (q *mwqQuantizer) validIn(g int) int { return min(MWQGroup, q.valid-g*MWQGroup) }

// dampedGram returns H + damp*mean(diag H)*I (a fresh copy), or the identity for nil;
// the mean is over the real columns 0..valid-1 (H's padded ones are 0).
func dampedGram(H []float64, n, valid int, damp float64) []float64 {
	h := make([]float64, n*n)
	if H == nil {
		for i := 0; i < n; i++ {
			h[i*n+i] = 1
		}
		return h
	}
	copy(h, H)
	var tr float64
	for i := 0; i < valid; i++ {
		tr += h[i*n+i]
	}
	d := damp * tr / float64(valid)
	if d <= 0 || math.IsNaN(d) {
		d = 1e-8
	}
	for i := 0; i < n; i++ {
		h[i*n+i] += d
	}
	return h
}

// gramBlock returns H restricted to group g's columns, normalised by its mean diagonal
// (the scale of H does not change any fit; this keeps float32 far from overflow). The
// rows and columns of padded columns (valid and beyond) are 0, so that no error measured
// through the block counts them.
func gramBlock(h []float64, n, valid, g int) gblock {
	o := g * MWQGroup
	nv := min(MWQGroup, valid-o)
	var tr float64
	for i := 0; i < nv; i++ {
		tr += h[(o+i)*n+o+i]
	}
	norm := float64(nv) / tr
	b := make(gblock, MWQGroup*MWQGroup)
	for i := 0; i < nv; i++ {
		for j := 0; j < nv; j++ {
			b[i*MWQGroup+j] = float32(h[(o+i)*n+o+j] * norm)
		}
	}
	return b
}

// f16 rounds v to the nearest binary16 value, the precision the file stores scales in;
// every fit continues from the stored value so the planes correct what is really there.
func f16(v float64) (uint16, float64) {
	h := kernels.F32ToF16(float32(v))
	return h, float64(kernels.F16ToF32(h))
}

// baseCodes rounds w to codes for scale s and zero z and writes the reconstruction.
func baseCodes(codes []uint8, rec []float64, w []float64, s, z float64, levels int) {
	for k, v := range w {
		c := 0.0
		if s != 0 {
			c = math.Round(v/s + z)
		}
		c = min(max(c, 0), float64(levels))
		codes[k] = uint8(c)
		rec[k] = s * (c - z)
	}
}

// gblock is the 128x128 block of H for one group's columns, in float32 so that the
// many error evaluations of the search run on the SIMD dot product (kernels.Dot); the
// comparisons it serves need far less than float32's precision.
type gblock []float32

// mulVec writes B v into out.
func (b gblock) mulVec(out, v *[MWQGroup]float32) {
	for i := range out {
		out[i] = kernels.Dot(b[i*MWQGroup:(i+1)*MWQGroup], v[:])
	}
}

// chain scores a base candidate by what every width it leads to loses: starting from
// the base residual r = w - base, it fits the planes that follow (least squares through
// B, as lsPlanes does) and returns Σ_b log(e_b), e_b = r_b^T B r_b the output error at
// width b. The log makes the score weigh relative losses alike, so a base that is a
// little worse at b1 bits but leaves a residual the ±1 planes can follow (an unclipped
// range) wins when it helps the wider reads more than it costs the narrow one.
func (q *mwqQuantizer) chain(b gblock, r *[MWQGroup]float32) (score, eBase float64) {
	var br [MWQGroup]float32
	b.mulVec(&br, r)
	eBase = float64(kernels.Dot(r[:], br[:]))
	return math.Log(eBase+1e-30) + lsPlanes(b, r, &br, q.cfg.MaxBits-q.cfg.BaseBits, q.cfg.WideWeight), eBase
}

// lsPlanes applies n planes to residual r (br = B r), each sign(r) with the
// least-squares scale through B, and returns Σ log(e) of the widths they give. r and br
// are updated together (B(r - s*Q) = Br - s*BQ), so a plane costs one product with B.
func lsPlanes(b gblock, r, br *[MWQGroup]float32, n int, wideWeight float64) float64 {
	var score float64
	var sg, bq [MWQGroup]float32
	for i := range n {
		for k, v := range r {
			sg[k] = 1
			if v < 0 {
				sg[k] = -1
			}
		}
		b.mulVec(&bq, &sg)
		s := float32(planeScale(float64(kernels.Dot(sg[:], bq[:])), float64(kernels.Dot(r[:], bq[:]))))
		for k := range r {
			r[k] -= s * sg[k]
			br[k] -= s * bq[k]
		}
		lg := math.Log(float64(kernels.Dot(r[:], br[:])) + 1e-30)
		if i == n-1 {
			lg *= wideWeight // the last plane gives the widest width
		}
		score += lg
	}
	return score
}

// planeScale is the least-squares scale s = Q^T B t / Q^T B Q of a plane, rounded to f16.
func planeScale(den, num float64) float64 {
	s := 0.0
	if den > 0 {
		s = num / den
	}
	if s < 0 || math.IsNaN(s) {
		s = 0
	}
	_, s = f16(s)
	return s
}

// fitBase chooses the base scale s1 and zero z (both already rounded to f16) of group g
// for target weights w. Candidates: DGQ-style clipping ratios over the group's range,
// then least-squares refits of (s1, z) for the best candidate's codes (minimising the
// base's output error (w - s*c - m)^T B (w - s*c - m) over s and m = -s*z) with
// re-rounding. Every candidate is scored by chain, i.e. by the output error of all the
// widths it leads to, not of the base alone.
func (q *mwqQuantizer) fitBase(g int, w []float64) (s1, z float64) {
	b1 := q.cfg.BaseBits
	levels := 1<<b1 - 1
	blk := q.blocks[g]
	mn, mx := w[0], w[0]
	for _, v := range w[:q.validIn(g)] {
		mn, mx = min(mn, v), max(mx, v)
	}
	var (
		codes, bestCodes [MWQGroup]uint8
		cand             [MWQGroup]float64
		r                [MWQGroup]float32
	)
	bestScore := math.Inf(1)
	var bestS, bestZ float64
	try := func(s, z float64) bool {
		_, s = f16(s)
		_, z = f16(z)
		baseCodes(codes[:], cand[:], w, s, z, levels)
		for k := range r {
			r[k] = float32(w[k] - cand[k])
		}
		if sc, _ := q.chain(blk, &r); sc < bestScore {
			bestScore, bestS, bestZ, bestCodes = sc, s, z, codes
			return true
		}
		return false
	}
	if mx == mn {
		// A constant group: code 0 and a zero that lands on the value.
		s := math.Max(math.Abs(mx), 1e-6) / float64(levels)
		try(s, -mn/s)
		return bestS, bestZ
	}
	for i := 0; i < q.cfg.Grid; i++ {
		// Ratios 1.0 down to 0.525 in even steps: narrow bases (2 bits) gain from
		// clipping far more than DGQ's 4-bit grid (down to 0.80) allows.
		ratio := 1 - float64(i)*0.475/float64(max(q.cfg.Grid-1, 1))
		lo, hi := mn*ratio, mx*ratio
		s := (hi - lo) / float64(levels)
		try(s, math.Round(-lo/s))
	}
	var wf, one, c, hw, h1, hq [MWQGroup]float32
	for k := range wf {
		wf[k], one[k] = float32(w[k]), 1
	}
	blk.mulVec(&hw, &wf)
	blk.mulVec(&h1, &one)
	for it := 0; it < 4; it++ {
		for k, v := range bestCodes {
			c[k] = float32(v)
		}
		blk.mulVec(&hq, &c)
		d := func(a, b *[MWQGroup]float32) float64 { return float64(kernels.Dot(a[:], b[:])) }
		a11, a12, a22 := d(&c, &hq), d(&c, &h1), d(&one, &h1)
		b1v, b2v := d(&c, &hw), d(&one, &hw)
		det := a11*a22 - a12*a12
		if !(det > 1e-12*math.Abs(a11*a22)) {
			break
		}
		s := (b1v*a22 - b2v*a12) / det
		m := (a11*b2v - a12*b1v) / det
		if !(s > 0) {
			break
		}
		if !try(s, -m/s) {
			break
		}
	}
	return bestS, bestZ
}

// fitPlane chooses the scale of ±1 plane `plane` (b1+1..K) for residual target t of
// group g; the signs are Q = sign(t). Candidates: the least-squares scale through B,
// s = Q^T B t / Q^T B Q (best for this width alone), the weight-space one mean|t| (which
// halves the residual's range, the binary expansion the later planes build on), and
// scalings of the first. Each is scored like chain: Σ log(output error) over this width
// and every wider one, with the later planes fitted by least squares. A purely greedy
// scale lets correlated inputs pull it far from the halving value, and the wider widths
// then gain little from their planes.
func (q *mwqQuantizer) fitPlane(g, plane int, t []float64) float64 {
	blk := q.blocks[g]
	var sg, tf, bq, r [MWQGroup]float32
	var sumAbs float64
	nv := q.validIn(g)
	for k, v := range t {
		tf[k], sg[k] = float32(v), 1
		if v < 0 {
			sg[k] = -1
		}
		if k < nv {
			sumAbs += math.Abs(v)
		}
	}
	blk.mulVec(&bq, &sg)
	ls := planeScale(float64(kernels.Dot(sg[:], bq[:])), float64(kernels.Dot(tf[:], bq[:])))
	rest := q.cfg.MaxBits - plane
	if rest == 0 {
		return ls // the widest plane: nothing after it to prepare for
	}
	var bt, br [MWQGroup]float32
	blk.mulVec(&bt, &tf)
	_, mean := f16(sumAbs / float64(nv))
	best, bestScore := ls, math.Inf(1)
	for _, c := range [...]float64{ls, mean, ls * 0.75, ls * 1.25, (ls + mean) / 2} {
		_, c = f16(c)
		for k := range r {
			r[k] = tf[k] - float32(c)*sg[k]
			br[k] = bt[k] - float32(c)*bq[k]
		}
		sc := math.Log(float64(kernels.Dot(r[:], br[:]))+1e-30) + lsPlanes(blk, &r, &br, rest, q.cfg.WideWeight)
		if sc < bestScore {
			best, bestScore = c, sc
		}
	}
	return best
}

// quantGroup fits group g of row r for stage (0: base, i: plane b1+i) on the target values
// t, then quantises the group's columns in order with those scales, writing the block and
// the reconstruction rec. When gptq is set it is called after each column with the
// column's index within the group and its error, and may update the columns after it
// (GPTQ compensation); t must then be the live row slice.
func (q *mwqQuantizer) quantGroup(mt *MWQTensor, stage, r, g int, t, rec []float64, gptq func(k int, err float64)) {
	i := r*q.groups + g
	if stage == 0 {
		b1 := q.cfg.BaseBits
		levels := 1<<b1 - 1
		s, z := q.fitBase(g, t)
		bb := MWQBaseBlockBytes(b1)
		out := mt.Base[i*bb : (i+1)*bb]
		clear(out)
		hs, hz := kernels.F32ToF16(float32(s)), kernels.F32ToF16(float32(z))
		out[0], out[1], out[2], out[3] = byte(hs), byte(hs>>8), byte(hz), byte(hz>>8)
		for k := range t {
			c := 0.0
			if s != 0 {
				c = min(max(math.Round(t[k]/s+z), 0), float64(levels))
			}
			for j := 0; j < b1; j++ {
				if int(c)>>j&1 != 0 {
					out[4+j*mwqPlaneBytes+k/8] |= 1 << (k % 8)
				}
			}
			rec[k] = s * (c - z)
			if gptq != nil {
				gptq(k, t[k]-rec[k])
			}
		}
		return
	}
	s := q.fitPlane(g, q.cfg.BaseBits+stage, t)
	out := mt.Planes[stage-1][i*MWQPlaneBlockBytes : (i+1)*MWQPlaneBlockBytes]
	clear(out)
	hs := kernels.F32ToF16(float32(s))
	out[0], out[1] = byte(hs), byte(hs>>8)
	for k := range t {
		if t[k] >= 0 {
			out[2+k/8] |= 1 << (k % 8)
			rec[k] = s
		} else {
			rec[k] = -s
		}
		if gptq != nil {
			gptq(k, t[k]-rec[k])
		}
	}
}

// gptqRow quantises one row for a stage with GPTQ compensation: groups left to right,
// each group's scales fitted on the row's current (already compensated) values, and each
// quantised column's error e pushed onto later columns as t[j] -= e/U[c][c] * U[c][j],
// U being the upper Cholesky factor of H⁻¹ (Frantar et al.'s recipe). t is modified.
func (q *mwqQuantizer) gptqRow(mt *MWQTensor, stage, r int, t, rec []float64, u []float64) {
	n := q.cols
	for g := 0; g < q.groups; g++ {
		o := g * MWQGroup
		q.quantGroup(mt, stage, r, g, t[o:o+MWQGroup], rec[o:o+MWQGroup], func(k int, e float64) {
			c := o + k
			f := e / u[c*n+c]
			urow := u[c*n : (c+1)*n]
			for j := c + 1; j < n; j++ {
				t[j] -= f * urow[j]
			}
		})
	}
}

// gptqFactor returns the upper Cholesky factor U of H⁻¹ (H⁻¹ = U^T U), n x n row-major.
func gptqFactor(h []float64, n int) ([]float64, error) {
	l, err := cholesky(h, n)
	if err != nil {
		return nil, err
	}
	// H⁻¹ = L^-T L^-1: invert L (lower triangular) column by column.
	li := make([]float64, n*n)
	for c := 0; c < n; c++ {
		for i := c; i < n; i++ {
			v := 0.0
			if i == c {
				v = 1
			}
			for k := c; k < i; k++ {
				v -= l[i*n+k] * li[k*n+c]
			}
			li[i*n+c] = v / l[i*n+i]
		}
	}
	inv := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			var s float64
			for k := i; k < n; k++ { // (L^-T L^-1)[i][j] = sum_k Li[k][i]*Li[k][j], k >= max(i,j)
				s += li[k*n+i] * li[k*n+j]
			}
			inv[i*n+j], inv[j*n+i] = s, s
		}
	}
	lu, err := cholesky(inv, n)
	if err != nil {
		return nil, err
	}
	u := make([]float64, n*n) // U = L_inv^T
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			u[j*n+i] = lu[i*n+j]
		}
	}
	return u, nil
}

// cholesky returns the lower factor L of a symmetric positive definite a (a = L L^T).
func cholesky(a []float64, n int) ([]float64, error) {
	l := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			s := a[i*n+j]
			for k := 0; k < j; k++ {
				s -= l[i*n+k] * l[j*n+k]
			}
			if i == j {
				if s <= 0 || math.IsNaN(s) {
					return nil, errors.New("mwq: calibration Gram matrix is not positive definite (raise Damp)")
				}
				l[i*n+i] = math.Sqrt(s)
			} else {
				l[i*n+j] = s / l[j*n+j]
			}
		}
	}
	return l, nil
}

// parallelRows runs f(r) for every row on GOMAXPROCS goroutines.
func parallelRows(rows int, f func(r int)) {
	n := min(runtime.GOMAXPROCS(0), rows)
	if n <= 1 {
		for r := 0; r < rows; r++ {
			f(r)
		}
		return
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for range n {
		wg.Go(func() {
			for {
				mu.Lock()
				r := next
				next++
				mu.Unlock()
				if r >= rows {
					return
				}
				f(r)
			}
		})
	}
	wg.Wait()
}

// Dequant writes the weights as read at `bits` (BaseBits..MaxBits) into dst (Rows*Cols,
// the padding dropped). It is the reference the run-time kernels are tested against.
func (t *MWQTensor) Dequant(bits int, dst []float32) {
	MWQDequant(dst, t.Rows, t.Cols, t.BaseBits, t.Base, t.Planes[:bits-t.BaseBits])
}

// MWQDequant dequantises a base of b1 bits plus the given planes (in order k = b1+1..)
// of a matrix of rows x cols stored MWQPadCols(cols) wide into dst (rows*cols: the
// padded columns are not written).
func MWQDequant(dst []float32, rows, cols, b1 int, base []byte, planes [][]byte) {
	groups := MWQPadCols(cols) / MWQGroup
	bb := MWQBaseBlockBytes(b1)
	for i := 0; i < rows*groups; i++ {
		blk := base[i*bb : (i+1)*bb]
		s := kernels.F16ToF32(uint16(blk[0]) | uint16(blk[1])<<8)
		z := kernels.F16ToF32(uint16(blk[2]) | uint16(blk[3])<<8)
		r, g := i/groups, i%groups
		o := dst[r*cols+g*MWQGroup : r*cols+min(cols, (g+1)*MWQGroup)]
		for k := range o {
			c := 0
			for j := 0; j < b1; j++ {
				c |= int(blk[4+j*mwqPlaneBytes+k/8]>>(k%8)&1) << j
			}
			o[k] = s * (float32(c) - z)
		}
		for _, p := range planes {
			pb := p[i*MWQPlaneBlockBytes : (i+1)*MWQPlaneBlockBytes]
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
