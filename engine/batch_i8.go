package engine

import (
	"github.com/mole-llm/mole/kernels"
)

// The GEMM path of mole's int8 types (MOLE_Q8, MOLE_A8W4) in a Batch.
//
// kernels.GemmI8 and kernels.GemmA8W4G take the activations of a block of tokens as one
// int8 matrix (one row of the padded width per token) and one scale per token, while the
// rest of the engine (State.Forward, the row path, MWQ) keeps each token's I8 act encoding
// (its int8 values, scale and group sums in one record). The Batch quantises its inputs as
// Forward does and then copies the int8 values and scales of the tokens of each product
// once into that planar form, so every weight strip is read once for all the tokens of a
// step. The values are the ones Forward uses, and each output is the kernels' exact int32
// sum scaled as GemvI8/GemvA8W4G scale it, so batched logits stay bit-identical to Forward.

// gemmIn is the input of a GEMM over a run of tokens, in the form m.gemmRows takes.
type gemmIn struct {
	// The tokens' encoded inputs one after the other, qn bytes each: Q8_0 blocks for
	// Q8_0/Q4_0, I8 act encodings (int8 values, scale, group sums) for MWQ.
	q  []byte
	qn int
	x8 []int8    // MOLE_Q8/MOLE_A8W4: int8 activations, pc per token
	pc int       // padded width of a token's row in x8
	xs []float32 // per-token scales of x8
}

// tokens returns the input of tokens t0..t1-1 (in each form it holds).
func (g *gemmIn) tokens(t0, t1 int) gemmIn {
	var r gemmIn
	if g.x8 != nil {
		r.x8, r.pc, r.xs = g.x8[t0*g.pc:t1*g.pc], g.pc, g.xs[t0:t1]
	}
	if g.q != nil {
		r.q, r.qn = g.q[t0*g.qn:t1*g.qn], g.qn
	}
	return r
}

// gemm reports whether products with m run on a GEMM kernel (kernels.GemmQ8_0/GemmQ4_0,
// or GemmI8/GemmA8W4G for mole's int8 types), which reads each row once for all the tokens
// of a step and equals the GEMV Forward uses per token bit for bit. MWQ's gemmRows is one
// fused GEMV per token over the rows (mwqMatrix.gemmRows): the same bits as Forward's row
// blocks, through the same calls as the other types.
func (m *Matrix) gemm() bool {
	if m.mole != nil {
		return !moleRowPath
	}
	return m.mwq != nil || m.qk == qkQ8_0 || m.qk == qkQ4_0
}

// moleRowPath sends mole's int8 types down the row path in a Batch (one GEMV per token,
// as before the GEMM path existed): a switch for benchmarks that compare the two.
var moleRowPath = false

// gemmRows writes rows lo..hi-1 of M times the ntok tokens of in into out, token-major
// (out[t*(hi-lo)+r-lo]).
func (m *Matrix) gemmRows(out []float32, lo, hi int, in gemmIn, ntok int) {
	if p := m.mole; p != nil {
		p.gemmRows(out, lo, hi, in.x8[:ntok*p.pc], in.xs[:ntok])
		return
	}
	if p := m.mwq; p != nil {
		p.gemmRows(out, lo, hi, in.q[:ntok*in.qn], in.qn)
		return
	}
	w := m.Data[lo*m.RowBytes : hi*m.RowBytes]
	if m.qk == qkQ4_0 {
		kernels.GemmQ4_0(out, hi-lo, w, m.Cols, in.q, ntok)
	} else {
		kernels.GemmQ8_0(out, hi-lo, w, m.Cols, in.q, ntok)
	}
}

// packI8 copies the int8 values of the I8 act encoding src into x8 (one token's row of
// the padded width, len(x8) values) and returns its scale.
func packI8(x8 []int8, src []byte) float32 {
	v, s, _ := actI8View(src, len(x8))
	copy(x8, v)
	return s
}

// padCols is n rounded up to the I8 act encoding's 32 values.
func padCols(n int) int { return (n + 31) / 32 * 32 }

// i8Planar holds the planar copies of a Batch's int8 activations (nil for models whose
// Quantized matrices take Q8_0 blocks).
type i8Planar struct {
	mm8 []int8 // inputs of the current batchMatMul
	mms []float32
	up8 []int8 // the FFN input of every part's users, part after part
	ups []float32
	dn8 []int8 // the hidden activations of every part's users
	dns []float32
}

func newI8Planar(m *Model, maxItems, kParts int) i8Planar {
	c := &m.Config
	if m.act != actI8 {
		return i8Planar{}
	}
	n := maxItems * kParts
	return i8Planar{
		mm8: make([]int8, maxItems*padCols(max(c.NEmbd, c.NHead*c.HeadDim))), mms: make([]float32, maxItems),
		up8: make([]int8, n*padCols(c.NEmbd)), ups: make([]float32, n),
		dn8: make([]int8, n*padCols(max(c.NFF, c.NFFExpert, c.NFFShared))), dns: make([]float32, n),
	}
}

// mmPlanar returns the planar buffers for the inputs of the current batchMatMul (nil
// unless one of its matrices is of mole's int8 types) and their padded width.
func (b *Batch) mmPlanar() (x8 []int8, xs []float32, pc int) {
	j := &b.mm
	if b.m.act != actI8 {
		return nil, nil, 0
	}
	for t := 0; t < j.nm; t++ {
		if j.mats[t].mole != nil {
			pc = padCols(j.inDim)
			return b.i8.mm8[:j.n*pc], b.i8.mms[:j.n], pc
		}
	}
	return nil, nil, 0
}

// upInputs sets each part's GEMM input of gate and up (after Batch.ffn has quantised the
// items' FFN inputs into b.xq, qn bytes each, and packed them per part into pt.xq).
func (b *Batch) upInputs(qn int) {
	pc := padCols(b.m.Config.NEmbd)
	o := 0
	for i := range b.parts {
		pt := &b.parts[i]
		if !pt.gate.gemm() || !pt.up.gemm() {
			pt.in = gemmIn{}
			continue
		}
		// The encoded inputs serve Q8_0/Q4_0 and MWQ; mole's int8 types take the
		// planar copy.
		pt.in = gemmIn{q: pt.xq, qn: qn}
		if b.m.act != actI8 || pt.gate.mole == nil && pt.up.mole == nil {
			continue
		}
		n := len(pt.users)
		x8, xs := b.i8.up8[o*pc:(o+n)*pc], b.i8.ups[o:o+n]
		for k, u := range pt.users {
			xs[k] = packI8(x8[k*pc:(k+1)*pc], b.xq[u.item*qn:(u.item+1)*qn])
		}
		pt.in.x8, pt.in.pc, pt.in.xs = x8, pc, xs
		o += n
	}
}

// downInputs sets each part's GEMM input of down: the users' quantised hidden activations
// in pt.hq (pt.hqn bytes each) or their planar form, which siluQuantize fills.
func (b *Batch) downInputs() {
	o, oo := 0, 0
	for i := range b.parts {
		pt := &b.parts[i]
		if !pt.down.gemm() {
			pt.hin = gemmIn{}
			continue
		}
		pt.hin = gemmIn{q: pt.hq, qn: pt.hqn}
		if b.m.act != actI8 || pt.down.mole == nil {
			continue
		}
		n, pc := len(pt.users), padCols(pt.rows)
		x8, xs := b.i8.dn8[o:o+n*pc], b.i8.dns[oo:oo+n]
		pt.hin.x8, pt.hin.pc, pt.hin.xs = x8, pc, xs
		o += n * pc
		oo += n
	}
}

// gemmRows writes rows lo..hi-1 of the product with ntok = len(xs) tokens of x8 (rows of
// p.pc values) into out, token-major.
func (p *moleMatrix) gemmRows(out []float32, lo, hi int, x8 []int8, xs []float32) {
	if p.w8 != nil {
		kernels.GemmI8(out, hi-lo, p.w8[lo*p.pc:hi*p.pc], p.scale[lo:hi], p.rowSum[lo:hi], x8, xs)
		return
	}
	cb, gb := p.pc/2, p.groupBytes()
	kernels.GemmA8W4G(out, hi-lo, p.codes[lo*cb:hi*cb], p.groups[lo*gb:hi*gb], p.scale[lo:hi], p.rowSum[lo:hi], x8, xs)
}

// batchQuant quantises a step's activation vectors on the pool. Each vector is
// independent, and in a prompt chunk they take about a fifth of a one-thread step (the
// per-token int8 quantiser is scalar Go), too much for the caller alone while the other
// workers wait. A decode step's few vectors stay on the caller (Pool.RunCost).
type batchQuant struct {
	b *Batch

	// rows: vector k of src (sn values each) into dst[k*qn:], and its int8 values and
	// scale into x8[k*pc:] and xs[k] when x8 is set.
	dst    []byte
	qn     int
	src    []float32
	sn     int
	x8     []int8
	xs     []float32
	pc     int
	rowRun func(lo, hi int)

	hidRun func(lo, hi int) // hidden: see hidden

	onCaller bool // quantise on the caller alone (benchmarks compare with the pool)
}

// run runs fn over n vectors of itemNs each on the pool (or the caller, onCaller).
func (q *batchQuant) run(p *Pool, n int, itemNs float64, fn func(lo, hi int)) {
	if q.onCaller {
		serial(n, max(n, 1), fn)
		return
	}
	p.RunCost(n, itemNs, fn)
}

func (q *batchQuant) bind(b *Batch) {
	q.b = b
	q.rowRun = q.rows
	q.hidRun = q.hidden
}

// quantNs estimates one core's time to quantise n values (kernels.QuantizeI8 and
// QuantizeQ8_0Act run at a few ns per value).
func quantNs(n int) float64 { return 4 * float64(n) }

// quantRows quantises n vectors of src (sn values each) into dst (qn bytes each) on the
// pool, as Forward quantises each one; with x8 set it also writes their planar form.
func (b *Batch) quantRows(p *Pool, dst []byte, qn int, src []float32, sn, n int, x8 []int8, xs []float32, pc int) {
	q := &b.quant
	q.dst, q.qn, q.src, q.sn, q.x8, q.xs, q.pc = dst, qn, src, sn, x8, xs, pc
	q.run(p, n, quantNs(sn), q.rowRun)
	q.dst, q.src, q.x8, q.xs = nil, nil, nil, nil
}

func (q *batchQuant) rows(lo, hi int) {
	for k := lo; k < hi; k++ {
		d := q.dst[k*q.qn : (k+1)*q.qn]
		q.b.m.quantAct(d, q.src[k*q.sn:(k+1)*q.sn])
		if q.x8 != nil {
			q.xs[k] = packI8(q.x8[k*q.pc:(k+1)*q.pc], d)
		}
	}
}

// siluQuantize computes h = silu(h)*u over every user's slice of every part and, for
// parts whose down matrix is Quantized, quantises it into pt.hq (and pt.hin's planar form
// when set), on the pool: one unit per (part, user).
func (b *Batch) siluQuantize(p *Pool) {
	units, rows := 0, 0
	for i := range b.parts {
		units += len(b.parts[i].users)
		rows = max(rows, b.parts[i].rows)
	}
	b.quant.run(p, units, quantNs(rows), b.quant.hidRun)
}

func (q *batchQuant) hidden(lo, hi int) {
	b := q.b
	base := 0
	for i := range b.parts {
		pt := &b.parts[i]
		n := len(pt.users)
		for k := max(lo, base) - base; k < min(hi, base+n)-base; k++ {
			u := pt.users[k]
			o := u.item*b.hidden + u.off
			h := b.h[o : o+pt.rows]
			kernels.SiLUMul(h, b.u[o:o+pt.rows])
			if pt.hq == nil {
				continue
			}
			d := pt.hq[k*pt.hqn : (k+1)*pt.hqn]
			b.m.quantAct(d, h)
			if in := &pt.hin; in.x8 != nil {
				in.xs[k] = packI8(in.x8[k*in.pc:(k+1)*in.pc], d)
			}
		}
		base += n
	}
}
