package engine

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/moe"
)

// BatchItem is one token of one sequence in a batched forward step.
type BatchItem struct {
	State *State // supplies the KV cache; several items may share one State (a prompt chunk)
	Token int32
	Pos   int  // position of Token; items of one State must come in increasing Pos order
	Wants bool // whether this item's logits are needed (the last prompt token, or a decode step)
}

// Batch runs one forward step for several tokens at once, typically one decoding token for
// each of several sequences plus a chunk of a newly admitted prompt (continuous batching).
//
// Why it exists: a decode step of one token reads every active weight once for a handful of
// multiply-adds per byte. With B tokens in the step each weight row is fetched from memory
// once and applied to all B activation vectors while it is in L1, each routed expert runs
// once for all the tokens that chose it, and the pool is woken once per product instead of
// once per sequence.
//
// Exactness: every number computed for an item depends only on that item's token, position
// and KV cache, never on which other items share the step: each row is dotted with each
// activation vector by the kernel Forward uses (the matrix's row kernel, or the integer
// kernel on the input quantised as Forward quantises it), and each token's expert outputs
// are summed in that token's own expert order, as Forward does. So a sequence's logits are
// bit for bit the same at any batch size (continuous batching cannot change greedy output),
// and equal to Forward's.
//
// Only the KV cache of the States is used: all per-token scratch lives in the Batch, which is
// why one State can contribute several positions to one step. Router traces installed with
// SetRouterTrace are called as in Forward. A Batch is used by one goroutine at a time.
type Batch struct {
	m        *Model
	max, ctx int

	// Per-item scratch, item i at [i*dim : (i+1)*dim].
	x, xn, tmp, q, attOut []float32
	att                   []float32 // NHead*ctx per item
	cos, sin              []float32 // HeadDim/2 per item
	h                     []float32 // hidden activations of every FFN part of the item
	u                     []float32 // the up projections beside h, until h = silu(h)*u
	part                  []float32 // (K+1)*NEmbd per item: each FFN part's output, summed in order
	routerLogits          []float32
	expIdx                []int32
	expW                  []float32
	nParts                []int // FFN parts used by each item (experts + shared)
	logits                []float32
	inv                   []float64
	router                *moe.Router

	// Inputs of Quantized products encoded as Forward encodes them (Model.quantAct), one
	// after the other as the GEMM kernels take them: xq, one per item of the product; xqp,
	// the FFN input packed per part (each part's users in order); hq, the hidden
	// activations of every part's users (see batchPart).
	xq, xqp, hq []byte
	kParts      int
	i8          i8Planar   // the int8 inputs of mole's types in the GEMM kernels' form (batch_i8.go)
	quant       batchQuant // activation quantisation on the pool (batch_i8.go)

	items []BatchItem
	k, v  [][]float32 // each item's K and V slot in its State's cache for the current layer

	// FFN parts of the current layer: for every part, its matrices and its users.
	parts []batchPart
	byExp []int // expert -> index in parts, -1 when unused this layer

	mm     batchMatMul
	mmRun  func(lo, hi int)
	at     batchAttention
	atRun  func(lo, hi int)
	upRun  func(lo, hi int)
	dnRun  func(lo, hi int)
	hidden int            // per-item length of h
	lat    *latentScratch // MoLE layers (latent.go); nil without them
}

// batchPart is one FFN expert (or the dense FFN, or the shared expert) in a step.
type batchPart struct {
	gate, up, down *Matrix
	rows           int
	users          []partUser

	// Quantised inputs of the users, one after the other (the GEMM kernels' layout): xq
	// for gate and up, hq (hqn bytes each) for down.
	xq, hq []byte
	hqn    int

	// The GEMM inputs of gate/up and of down (batch_i8.go), when they run on GEMM kernels.
	in, hin gemmIn
}

// partUser is an item that routed to a part: its slot in the item's expert order (which
// places its hidden activations at h[item][slot*NFFExpert:] and fixes the summation order)
// and the part's weight for it.
type partUser struct {
	item, slot int
	off        int // offset of this part's activations in the item's h
	w          float32
}

// NewBatch returns a Batch for up to maxItems tokens per step whose States hold at most ctx
// positions (ctx <= 0: the model's context length).
func (m *Model) NewBatch(maxItems, ctx int) *Batch {
	c := &m.Config
	if ctx <= 0 {
		ctx = c.CtxLen
	}
	maxItems = max(maxItems, 1)
	qDim := c.NHead * c.HeadDim
	kParts := 1
	hidden := c.NFF
	if c.NExpert > 0 {
		kParts = c.NExpertUsed + 1
		hidden = max(hidden, c.NExpertUsed*c.NFFExpert+c.NFFShared)
	}
	xqStride := m.actBuf(max(c.NEmbd, qDim), 1)
	hqStride := m.actBuf(max(c.NFF, c.NFFExpert, c.NFFShared), 1)
	b := &Batch{
		m: m, max: maxItems, ctx: ctx,
		x: make([]float32, maxItems*c.NEmbd), xn: make([]float32, maxItems*c.NEmbd),
		tmp: make([]float32, maxItems*c.NEmbd),
		q:   make([]float32, maxItems*qDim), attOut: make([]float32, maxItems*qDim),
		att: make([]float32, maxItems*c.NHead*ctx),
		cos: make([]float32, maxItems*c.HeadDim/2), sin: make([]float32, maxItems*c.HeadDim/2),
		h: make([]float32, maxItems*hidden), u: make([]float32, maxItems*hidden),
		part:         make([]float32, maxItems*kParts*c.NEmbd),
		routerLogits: make([]float32, maxItems*c.NExpert),
		expIdx:       make([]int32, maxItems*c.NExpertUsed), expW: make([]float32, maxItems*c.NExpertUsed),
		nParts: make([]int, maxItems),
		logits: make([]float32, maxItems*c.Vocab),
		inv:    make([]float64, c.HeadDim/2),
		items:  make([]BatchItem, 0, maxItems),
		k:      make([][]float32, maxItems), v: make([][]float32, maxItems),
		parts:  make([]batchPart, 0, max(c.NExpert, 1)+1),
		byExp:  make([]int, c.NExpert),
		hidden: hidden,
		xq:     make([]byte, maxItems*xqStride), xqp: make([]byte, maxItems*kParts*xqStride),
		hq: make([]byte, maxItems*kParts*hqStride), kParts: kParts,
	}
	for i := 0; i < cap(b.parts); i++ {
		b.parts = append(b.parts, batchPart{users: make([]partUser, 0, maxItems)})
	}
	b.parts = b.parts[:0]
	kernels.RoPEInvFreq(b.inv, c.HeadDim, c.RopeTheta)
	if c.NExpert > 0 {
		b.router = moe.NewRouter(c.NExpert, c.NExpertUsed, c.NormTopK)
	}
	b.mm.b = b
	b.mm.outIdx = make([]int, 0, maxItems)
	b.mmRun = b.mm.run
	b.at.b = b
	b.atRun = b.at.run
	b.upRun = b.ffnUp
	b.dnRun = b.ffnDown
	b.lat = m.newLatentScratch(maxItems)
	b.i8 = newI8Planar(m, maxItems, kParts)
	b.quant.bind(b)
	return b
}

// Max is the number of items a step can hold.
func (b *Batch) Max() int { return b.max }

// Logits returns the logits of item i of the last Forward (nil unless it was Wants). They
// are owned by the Batch and valid until the next Forward.
func (b *Batch) Logits(i int) []float32 {
	if i < 0 || i >= len(b.items) || !b.items[i].Wants {
		return nil
	}
	v := b.m.Config.Vocab
	return b.logits[i*v : (i+1)*v]
}

// Forward runs one step over items (at most Max). Like State.Forward it panics on a position
// outside a State's cache or an unknown token, both programming errors of the caller.
func (b *Batch) Forward(items []BatchItem) {
	m := b.m
	c := &m.Config
	if len(items) > b.max {
		panic(fmt.Sprintf("engine: batch of %d items, more than its %d", len(items), b.max))
	}
	b.items = append(b.items[:0], items...)
	n := len(items)
	if n == 0 {
		return
	}
	ne, hd := c.NEmbd, c.HeadDim
	qDim, kvDim := c.NHead*hd, c.NKVHead*hd
	for i, it := range items {
		s := it.State
		if s.m != m {
			panic("engine: batch item's State belongs to another model")
		}
		if it.Pos < 0 || it.Pos >= s.cap || s.cap > b.ctx {
			panic(fmt.Sprintf("engine: position %d outside the KV cache of %d (batch context %d)", it.Pos, s.cap, b.ctx))
		}
		if it.Token < 0 || int(it.Token) >= c.Vocab {
			panic(fmt.Sprintf("engine: token %d outside the vocabulary of %d", it.Token, c.Vocab))
		}
		m.Embed.RowF32(int(it.Token), b.x[i*ne:(i+1)*ne])
		kernels.RoPEAngles(b.cos[i*hd/2:(i+1)*hd/2], b.sin[i*hd/2:(i+1)*hd/2], b.inv, it.Pos)
		s.writing(it.Pos)
	}
	eps := c.NormEps
	p := m.pool

	for l := range m.Layers {
		L := &m.Layers[l]
		for i, it := range items {
			kernels.RMSNorm(b.xn[i*ne:(i+1)*ne], b.x[i*ne:(i+1)*ne], L.AttnNorm, eps)
			s := it.State
			off := (l*s.cap + it.Pos) * kvDim
			b.k[i], b.v[i] = s.kc[off:off+kvDim], s.vc[off:off+kvDim]
		}
		b.mm.reset(b.xn, ne, n)
		b.mm.add(L.Wq, b.q, qDim, nil)
		b.mm.add(L.Wk, nil, 0, b.k)
		b.mm.add(L.Wv, nil, 0, b.v)
		b.runMM(p)
		for i := range items {
			q := b.q[i*qDim : (i+1)*qDim]
			k, v := b.k[i], b.v[i]
			c.qkvTail(L, q, k, v, b.cos[i*hd/2:(i+1)*hd/2], b.sin[i*hd/2:(i+1)*hd/2])
		}

		// Attention reads the cache up to each item's own position, all of which was
		// written above or in earlier steps, so prompt chunks need no extra ordering.
		b.at.layer = l
		units := n * c.NHead
		work := 0
		for _, it := range items {
			work += (it.Pos + 1) * hd * c.NHead * 2
		}
		chunk := units
		if work > 32768 {
			chunk = max(1, (units+4*p.Workers()-1)/(4*p.Workers()))
		}
		p.RunChunk(units, chunk, b.atRun)

		b.mm.reset(b.attOut, qDim, n)
		b.mm.add(L.Wo, b.tmp, ne, nil)
		b.runMM(p)
		for i := range items {
			t := b.tmp[i*ne : (i+1)*ne]
			if L.Bo != nil {
				kernels.Add(t, L.Bo)
			}
			kernels.Add(b.x[i*ne:(i+1)*ne], t)
			kernels.RMSNorm(b.xn[i*ne:(i+1)*ne], b.x[i*ne:(i+1)*ne], L.FFNNorm, eps)
		}
		b.ffn(p, L, l)
		for i := range items {
			kernels.Add(b.x[i*ne:(i+1)*ne], b.tmp[i*ne:(i+1)*ne])
		}
	}
	// Every layer's K and V of every item are in the caches. Items of one State come in
	// increasing position order, so a prompt chunk extends its State's held prefix.
	for _, it := range items {
		it.State.wrote(it.Token, it.Pos)
	}

	// Only the wanted items go through the output matrix (for a large vocabulary it is the
	// biggest product of the step); they are packed at the front of xn for it.
	nw := 0
	for i, it := range items {
		if it.Wants {
			kernels.RMSNorm(b.xn[nw*ne:(nw+1)*ne], b.x[i*ne:(i+1)*ne], m.OutNorm, eps)
			nw++
		}
	}
	if nw == 0 {
		return
	}
	b.mm.reset(b.xn, ne, nw)
	b.mm.add(m.Output, b.logits, c.Vocab, nil)
	// Packed input j is the j-th wanted item, whose logits it writes.
	b.mm.outIdx = b.mm.outIdx[:0]
	for i, it := range items {
		if it.Wants {
			b.mm.outIdx = append(b.mm.outIdx, i)
		}
	}
	b.runMM(p)
	b.mm.outIdx = b.mm.outIdx[:0]
}

// ffn writes the FFN output of every item's xn to its tmp.
func (b *Batch) ffn(p *Pool, L *Layer, l int) {
	if L.Latent != nil {
		b.latentFFN(p, L, l)
		return
	}
	c := &b.m.Config
	items := b.items
	b.parts = b.parts[:0]
	if L.Router == nil {
		pt := b.addPart(L.Gate, L.Up, L.Down)
		for i := range items {
			pt.users = append(pt.users, partUser{item: i, slot: 0, off: 0, w: 1})
			b.nParts[i] = 1
		}
	} else {
		for e := range b.byExp {
			b.byExp[e] = -1
		}
		ne, K := c.NEmbd, c.NExpertUsed
		var shared *batchPart
		if L.ShGate != nil {
			shared = b.addPart(L.ShGate, L.ShUp, L.ShDown)
		}
		for i, it := range items {
			xn := b.xn[i*ne : (i+1)*ne]
			rl := b.routerLogits[i*c.NExpert : (i+1)*c.NExpert]
			for e := range rl {
				rl[e] = L.Router.DotRow(e, xn)
			}
			idx, w := b.expIdx[i*K:(i+1)*K], b.expW[i*K:(i+1)*K]
			b.router.Route(rl, idx, w)
			if tr := it.State.trace; tr != nil {
				tr(l, idx, w)
			}
			for j, e := range idx {
				pi := b.byExp[e]
				if pi < 0 {
					pi = len(b.parts)
					b.byExp[e] = pi
					b.addPart(L.ExpGate[e], L.ExpUp[e], L.ExpDown[e])
				}
				b.parts[pi].users = append(b.parts[pi].users, partUser{item: i, slot: j, off: j * c.NFFExpert, w: w[j]})
			}
			b.nParts[i] = K
			if shared != nil {
				shared.users = append(shared.users, partUser{item: i, slot: K, off: K * c.NFFExpert,
					w: kernels.Sigmoid(L.ShGateInp.DotRow(0, xn))})
				b.nParts[i] = K + 1
			}
		}
	}
	if b.upQuantized() {
		// Every item's input once per layer; runParts packs it per part (under a memory
		// budget once per group of parts).
		ne := c.NEmbd
		b.quantRows(p, b.xq, b.m.actBytes(ne), b.xn, ne, len(items), nil, nil, 0)
	}
	if g := b.m.schedOf(); g != nil && L.Router != nil { // under a memory budget (sched.go)
		g.batchFFN(b, p, L, l)
		return
	}
	b.runParts(p, L)
}

// upQuantized reports whether gate or up of some part in b.parts is Quantized, so that
// the parts take the items' quantised FFN inputs (b.xq).
func (b *Batch) upQuantized() bool {
	for i := range b.parts {
		if pt := &b.parts[i]; pt.gate.Quantized() || pt.up.Quantized() {
			return true
		}
	}
	return false
}

// runParts runs the FFN parts in b.parts (gate and up, silu, down) and writes every item's
// sum over its parts to tmp. Under a memory budget it runs once per group of experts
// whose planes are in (sched.go); the last call's sums then cover every part.
func (b *Batch) runParts(p *Pool, L *Layer) {
	c := &b.m.Config
	items := b.items
	rows := 0
	for i := range b.parts {
		rows += b.parts[i].rows
	}
	ne := c.NEmbd
	if b.upQuantized() {
		// For each part its users' inputs (quantised into b.xq by ffn) packed one after
		// the other, the layout the GEMM kernels take.
		qn := b.m.actBytes(ne)
		o := 0
		for i := range b.parts {
			pt := &b.parts[i]
			if L.Router == nil {
				pt.xq = b.xq[:len(items)*qn] // all items in order: already packed
				continue
			}
			pt.xq = b.xqp[o : o+len(pt.users)*qn]
			for k, u := range pt.users {
				copy(pt.xq[k*qn:(k+1)*qn], b.xq[u.item*qn:(u.item+1)*qn])
			}
			o += len(pt.users) * qn
		}
		b.upInputs(qn)
	}
	b.runRows(p, rows, 2*ne*len(items)*c.NExpertUsed/max(len(b.parts), 1), b.upRun)
	o := 0
	for i := range b.parts {
		if pt := &b.parts[i]; pt.down.Quantized() {
			pt.hqn = b.m.actBytes(pt.rows)
			pt.hq = b.hq[o : o+len(pt.users)*pt.hqn]
			o += len(pt.hq)
		}
	}
	b.downInputs()
	// silu(gate)*up over each user's whole part, with Forward's vector kernel, and the
	// quantised inputs of down, on the pool (batch_i8.go).
	b.siluQuantize(p)
	b.runRows(p, ne, b.hidden*len(items), b.dnRun)
}

func (b *Batch) addPart(gate, up, down *Matrix) *batchPart {
	b.parts = b.parts[:len(b.parts)+1]
	pt := &b.parts[len(b.parts)-1]
	pt.gate, pt.up, pt.down, pt.rows = gate, up, down, gate.Rows
	pt.users = pt.users[:0]
	pt.xq, pt.hq, pt.hqn = nil, nil, 0
	return pt
}

// ffnUp computes gate x (into h) and up x (into u) for hidden rows [lo, hi) of the parts
// laid end to end.
func (b *Batch) ffnUp(lo, hi int) {
	ne := b.m.Config.NEmbd
	var xs [dotGroup][]float32
	var xqs [dotGroup][]byte
	var gs, vs [dotGroup]float32
	var tile [gemmTile]float32
	qn := b.m.actBytes(ne)
	base := 0
	for pi := range b.parts {
		pt := &b.parts[pi]
		a, e := max(lo, base), min(hi, base+pt.rows)
		if a < e && pt.gate.gemm() && pt.up.gemm() {
			nu := len(pt.users)
			tn, rt := gemmShape(nu)
			for r0 := a - base; r0 < e-base; r0 += rt {
				r1 := min(r0+rt, e-base)
				for u0 := 0; u0 < nu; u0 += tn {
					us := pt.users[u0:min(u0+tn, nu)]
					in := pt.in.tokens(u0, u0+len(us))
					for mi, m := range [2]*Matrix{pt.gate, pt.up} {
						dst := b.h
						if mi == 1 {
							dst = b.u
						}
						out := tile[:len(us)*(r1-r0)]
						m.gemmRows(out, r0, r1, in, len(us))
						for k, u := range us {
							copy(dst[u.item*b.hidden+u.off+r0:u.item*b.hidden+u.off+r1], out[k*(r1-r0):(k+1)*(r1-r0)])
						}
					}
				}
			}
			base += pt.rows
			continue
		}
		for r := a; r < e; r++ {
			i := r - base
			for u0 := 0; u0 < len(pt.users); u0 += dotGroup {
				us := pt.users[u0:min(u0+dotGroup, len(pt.users))]
				for k, u := range us {
					xs[k] = b.xn[u.item*ne : (u.item+1)*ne]
					if pt.xq != nil {
						xqs[k] = pt.xq[(u0+k)*qn : (u0+k+1)*qn]
					}
				}
				rowDots(pt.gate, i, xs[:len(us)], xqs[:len(us)], gs[:len(us)])
				rowDots(pt.up, i, xs[:len(us)], xqs[:len(us)], vs[:len(us)])
				for k, u := range us {
					b.h[u.item*b.hidden+u.off+i] = gs[k]
					b.u[u.item*b.hidden+u.off+i] = vs[k]
				}
			}
		}
		base += pt.rows
	}
}

// ffnDown computes output rows [lo, hi): every part's down row against its users' hidden
// activations, then each item's sum over its parts in its own order.
func (b *Batch) ffnDown(lo, hi int) {
	c := &b.m.Config
	ne := c.NEmbd
	kParts := b.kParts
	var xs [dotGroup][]float32
	var xqs [dotGroup][]byte
	var res [dotGroup]float32
	var tile [gemmTile]float32
	_, rt := gemmShape(len(b.items))
	for r0 := lo; r0 < hi; r0 += rt {
		r1 := min(r0+rt, hi)
		for pi := range b.parts {
			pt := &b.parts[pi]
			if pt.down.gemm() {
				nu := len(pt.users)
				tn, _ := gemmShape(nu)
				for u0 := 0; u0 < nu; u0 += tn {
					us := pt.users[u0:min(u0+tn, nu)]
					out := tile[:len(us)*(r1-r0)]
					pt.down.gemmRows(out, r0, r1, pt.hin.tokens(u0, u0+len(us)), len(us))
					for k, u := range us {
						o := (u.item*kParts + u.slot) * ne
						for r := r0; r < r1; r++ {
							b.part[o+r] = u.w * out[k*(r1-r0)+r-r0]
						}
					}
				}
				continue
			}
			for r := r0; r < r1; r++ {
				for u0 := 0; u0 < len(pt.users); u0 += dotGroup {
					us := pt.users[u0:min(u0+dotGroup, len(pt.users))]
					for k, u := range us {
						xs[k] = b.h[u.item*b.hidden+u.off : u.item*b.hidden+u.off+pt.rows]
						if pt.hq != nil {
							xqs[k] = pt.hq[(u0+k)*pt.hqn : (u0+k+1)*pt.hqn]
						}
					}
					rowDots(pt.down, r, xs[:len(us)], xqs[:len(us)], res[:len(us)])
					for k, u := range us {
						b.part[(u.item*kParts+u.slot)*ne+r] = u.w * res[k]
					}
				}
			}
		}
		for r := r0; r < r1; r++ {
			for i := range b.items {
				var sum float32
				for j := 0; j < b.nParts[i]; j++ {
					sum += b.part[(i*kParts+j)*ne+r]
				}
				b.tmp[i*ne+r] = sum
			}
		}
	}
}

// chunk picks rows per pool chunk for rows of cost multiply-adds each: about four chunks
// per worker but at least ~16K multiply-adds, below which waking a worker does not pay.
// Chunks are whole 4-row strips, the unit of the GEMM kernels (a lone row costs a strip).
func (b *Batch) chunk(rows, cost int) int {
	w := b.m.pool.Workers()
	c := (rows + 4*w - 1) / (4 * w)
	c = max(c, 16384/max(cost, 1))
	return (c + 3) &^ 3
}

// runRows runs fn over rows of cost multiply-adds each in chunks of b.chunk rows that
// shrink to an eighth of that at the end of the run (Pool.RunGuided), so that two
// workers of slightly different speed finish together.
func (b *Batch) runRows(p *Pool, rows, cost int, fn func(lo, hi int)) {
	c := b.chunk(rows, cost)
	p.RunGuided(rows, c, c/8, 4, fn)
}

func (b *Batch) runMM(p *Pool) {
	j := &b.mm
	if j.quant {
		qn := b.m.actBytes(j.inDim)
		x8, xs, pc := b.mmPlanar()
		b.quantRows(p, b.xq, qn, j.in, j.inDim, j.n, x8, xs, pc)
		j.gin = gemmIn{q: b.xq[:j.n*qn], qn: qn}
		if x8 != nil {
			j.gin.x8, j.gin.pc, j.gin.xs = x8, pc, xs // (the encodings stay for MWQ)
		}
	}
	b.runRows(p, j.rows, j.inDim*j.n, b.mmRun)
}

// dotGroup is how many activation vectors one pass over a weight row serves (a stack array
// holds them, so the pool's chunk functions need no shared scratch).
const dotGroup = 8

// gemmTile is the number of outputs (rows x tokens) of one GEMM call of a Q8_0/Q4_0
// product, kept on the chunk function's stack: the kernels write them token-major and
// the caller scatters them to each item's destination.
const gemmTile = 4096

// gemmShape splits a GEMM over ntok tokens into calls of tn tokens and rt rows (a
// multiple of 12, which both the 6-row AVX-512 and the 4-row strips divide) whose
// outputs fit in a gemmTile. At most 64 tokens per call: the blocked kernels prepare
// each call's weight rows once, so calls of many rows and a few dozen tokens reach
// 2.1-2.3x the rate of 8 rows x 512 tokens (K2's measurement, 4096-wide Q8_0).
func gemmShape(ntok int) (tn, rt int) {
	tn = max(1, min(ntok, 64))
	rt = max(12, gemmTile/tn/12*12)
	return tn, rt
}

// batchMatMul computes up to four products sharing one input, each weight row against all
// n input vectors (input of item i at in[i*inDim:]). Item i's output of matrix t goes to
// outs[t][i*outStride[t]:] or, when perItem[t] is set, to perItem[t][i] (K and V, which
// live in each State's cache). With outIdx set, input j writes the output of item outIdx[j].
type batchMatMul struct {
	b         *Batch
	in        []float32
	inDim, n  int
	nm        int
	mats      [4]*Matrix
	outs      [4][]float32
	outStride [4]int
	perItem   [4][][]float32
	quant     bool   // some matrix is Quantized: runMM quantises the inputs into Batch.xq
	gin       gemmIn // the inputs in the form of the GEMM kernels (set by runMM)
	offs      [5]int
	rows      int
	outIdx    []int
}

func (j *batchMatMul) reset(in []float32, inDim, n int) {
	j.in, j.inDim, j.n, j.nm, j.rows, j.quant = in, inDim, n, 0, 0, false
}

func (j *batchMatMul) add(m *Matrix, out []float32, stride int, perItem [][]float32) {
	t := j.nm
	j.mats[t], j.outs[t], j.outStride[t], j.perItem[t] = m, out, stride, perItem
	j.offs[t] = j.rows
	j.rows += m.Rows
	j.nm++
	j.offs[j.nm] = j.rows
	j.quant = j.quant || m.Quantized()
}

func (j *batchMatMul) run(lo, hi int) {
	b, qn := j.b, j.b.m.actBytes(j.inDim)
	var xs [dotGroup][]float32
	var xqs [dotGroup][]byte
	var res [dotGroup]float32
	var tile [gemmTile]float32
	for t := 0; t < j.nm; t++ {
		a, e := max(lo, j.offs[t]), min(hi, j.offs[t+1])
		m, base := j.mats[t], j.offs[t]
		if a < e && m.gemm() {
			tn, rt := gemmShape(j.n)
			for r0 := a - base; r0 < e-base; r0 += rt {
				r1 := min(r0+rt, e-base)
				for k0 := 0; k0 < j.n; k0 += tn {
					g := min(tn, j.n-k0)
					out := tile[:g*(r1-r0)]
					m.gemmRows(out, r0, r1, j.gin.tokens(k0, k0+g), g)
					for k := range g {
						for i := r0; i < r1; i++ {
							j.store(t, i, k0+k, out[k*(r1-r0)+i-r0])
						}
					}
				}
			}
			continue
		}
		for r := a; r < e; r++ {
			i := r - base
			for k0 := 0; k0 < j.n; k0 += dotGroup {
				g := min(dotGroup, j.n-k0)
				for k := range g {
					xs[k] = j.in[(k0+k)*j.inDim : (k0+k+1)*j.inDim]
					if j.quant {
						xqs[k] = b.xq[(k0+k)*qn : (k0+k+1)*qn]
					}
				}
				rowDots(m, i, xs[:g], xqs[:g], res[:g])
				for k := range g {
					j.store(t, i, k0+k, res[k])
				}
			}
		}
	}
}

// store writes item k's output v of row i of matrix t.
func (j *batchMatMul) store(t, i, k int, v float32) {
	dst := k
	if len(j.outIdx) > 0 {
		dst = j.outIdx[k]
	}
	if j.perItem[t] != nil {
		j.perItem[t][dst][i] = v
	} else {
		j.outs[t][dst*j.outStride[t]+i] = v
	}
}

// batchAttention runs causal attention for units (item, query head) = item*NHead + head,
// over the item's cache positions 0..Pos, exactly as State.Forward's attention does.
type batchAttention struct {
	b     *Batch
	layer int
}

func (a *batchAttention) run(lo, hi int) {
	b := a.b
	c := &b.m.Config
	hd := c.HeadDim
	qDim, kvDim := c.NHead*hd, c.NKVHead*hd
	group := c.NHead / c.NKVHead
	scale := float32(1 / math.Sqrt(float64(hd)))
	for u := lo; u < hi; u++ {
		i, h := u/c.NHead, u%c.NHead
		it := &b.items[i]
		s := it.State
		base := a.layer * s.cap * kvDim
		q := b.q[i*qDim+h*hd : i*qDim+(h+1)*hd]
		ko := base + (h/group)*hd
		row := (i*c.NHead + h) * b.ctx
		sc := b.att[row : row+it.Pos+1]
		for t := range sc {
			sc[t] = kernels.Dot(q, s.kc[ko+t*kvDim:ko+t*kvDim+hd]) * scale
		}
		kernels.Softmax(sc)
		out := b.attOut[i*qDim+h*hd : i*qDim+(h+1)*hd]
		clear(out)
		for t, w := range sc {
			kernels.Axpy(out, w, s.vc[ko+t*kvDim:ko+t*kvDim+hd])
		}
	}
}

// Sequence is one generation driven step by step by a scheduler that batches several of
// them (Generate, by contrast, owns its loop). Sampling, stop strings, UTF-8 handling and
// the stop reasons are Generate's own, so a Sequence produces the same text as Generate for
// the same prompt and options.
//
// Each step the scheduler collects Items from every Sequence, runs them in one
// Batch.Forward and hands each Sequence the logits it asked for with Advance.
type Sequence struct {
	g      *generator
	prompt []int32
	fed    int   // prompt tokens handed out so far
	next   int32 // sampled token to evaluate next, when has
	nextAt int
	has    bool
	t0, t1 time.Time
}

// NewSequence starts a generation of prompt in s (which is reset), emitting text as Generate
// does. The prompt must hold at least one token and fit in s.
func (m *Model) NewSequence(s *State, prompt []int32, o GenerateOptions, emit func(text string) error) (*Sequence, error) {
	return m.newSequence(s, prompt, o, emit, false)
}

// NewCachedSequence is NewSequence keeping the longest prefix of prompt that s's KV cache
// already holds (State.CommonPrefix) instead of evaluating it again: a chat client resends
// the whole conversation every turn, and a server that keeps each slot's State between
// requests then evaluates only the new turn.
//
// The output is NewSequence's, bit for bit: a position's keys and values depend only on
// the tokens up to it, and the State only counts as held what Forward or Batch.Forward
// finished writing. At least the last prompt token is evaluated (again, when the cache
// holds the whole prompt), since its logits start the generation, and the kept tokens
// still enter the sampler's repetition history. Stats.CachedTokens counts them.
//
// Why the engine decides how much to keep rather than taking a count from the caller: only
// the State knows what was actually evaluated (a request cancelled mid-prompt, a sampled
// token never fed back), so a caller cannot claim more than is there.
func (m *Model) NewCachedSequence(s *State, prompt []int32, o GenerateOptions, emit func(text string) error) (*Sequence, error) {
	return m.newSequence(s, prompt, o, emit, true)
}

func (m *Model) newSequence(s *State, prompt []int32, o GenerateOptions, emit func(text string) error, reuse bool) (*Sequence, error) {
	if m.Tok == nil {
		return nil, errors.New("generate: the model has no tokenizer")
	}
	if len(prompt) == 0 {
		return nil, errors.New("generate: empty prompt (at least a BOS token is needed)")
	}
	if len(prompt) > s.Cap() {
		return nil, fmt.Errorf("generate: prompt of %d tokens does not fit in a context of %d", len(prompt), s.Cap())
	}
	keep := 0
	if reuse {
		keep = min(s.CommonPrefix(prompt), len(prompt)-1)
	} else {
		s.Reset()
	}
	q := &Sequence{prompt: prompt, fed: keep}
	q.g = newGenerator(genModel{
		// The generator asks for the next token's logits right after sampling it; a
		// Sequence only notes the token, which the next batch step evaluates.
		forward: func(token int32, pos int) []float32 {
			q.next, q.nextAt, q.has = token, pos, true
			return nil
		},
		isEOG:  m.Tok.IsEOG,
		dec:    m.Tok.NewDecoder(),
		vocab:  m.Config.Vocab,
		ctxLen: s.Cap(),
	}, o, emit)
	q.g.stats.PromptTokens = len(prompt)
	q.g.stats.CachedTokens = keep
	for _, id := range prompt[:keep] {
		q.g.sampler.Accept(id) // as Items does for the tokens it hands out
	}
	return q, nil
}

// Prefilling reports whether prompt tokens remain to be evaluated.
func (q *Sequence) Prefilling() bool { return q.fed < len(q.prompt) }

// Done reports whether the generation has ended.
func (q *Sequence) Done() bool { return q.g.done }

// Stats describes the generation so far: until it ends, GenDuration is the time since
// generation started, so a generation cut short (its client gone) still has one.
func (q *Sequence) Stats() Stats {
	st := q.g.stats
	if !q.g.done && !q.t1.IsZero() {
		st.GenDuration = time.Since(q.t1)
	}
	return st
}

// Items appends to dst the tokens this sequence needs evaluated in the next step: up to
// budget prompt tokens while prefilling (at least one when budget > 0), else the last sampled
// token. s is the State the Sequence was started with.
func (q *Sequence) Items(dst []BatchItem, s *State, budget int) []BatchItem {
	if q.g.done || budget <= 0 {
		return dst
	}
	if q.fed < len(q.prompt) {
		if q.t0.IsZero() { // the first chunk, which starts after any cached tokens
			q.t0 = time.Now()
		}
		n := min(budget, len(q.prompt)-q.fed)
		for i := q.fed; i < q.fed+n; i++ {
			dst = append(dst, BatchItem{State: s, Token: q.prompt[i], Pos: i, Wants: i == len(q.prompt)-1})
			q.g.sampler.Accept(q.prompt[i]) // llama.cpp penalises prompt tokens too
		}
		q.fed += n
		return dst
	}
	if q.has {
		dst = append(dst, BatchItem{State: s, Token: q.next, Pos: q.nextAt, Wants: true})
	}
	return dst
}

// Advance takes this sequence's logits from the step just run (nil when it wanted none, i.e.
// in the middle of its prompt), samples and emits the next token. It returns true once the
// generation has ended; the error is emit's.
func (q *Sequence) Advance(logits []float32) (bool, error) {
	g := q.g
	if g.done {
		return true, nil
	}
	if logits == nil {
		return false, nil
	}
	if !q.has { // the last prompt token: generation starts
		g.pos = len(q.prompt) // afterwards step advances it as it asks for each token
		g.stats.PromptDuration = time.Since(q.t0)
		q.t1 = time.Now()
	}
	q.has = false
	g.logits = logits
	err := g.step()
	if err == nil && !g.done && g.o.MaxTokens >= 0 && g.stats.GenTokens >= g.o.MaxTokens {
		// The limit is reached: end now rather than evaluate a token nobody will sample from.
		err = g.step()
	}
	if err == nil && g.done {
		err = g.finish()
	}
	if err != nil || g.done {
		g.done = true
		g.stats.GenDuration = time.Since(q.t1)
		return true, err
	}
	return false, nil
}

// rowDots sets res[k] = row i of m · xs[k] for every k (xqs[k] is xs[k] quantised, used
// when m is Quantized), with the kernels Forward uses, so that an item's result is Forward's
// and never depends on which other items share its step. Float rows go through the
// batched dot kernels, which read the row once for several vectors and give each vector
// the single-vector kernel's bits.
func rowDots(m *Matrix, i int, xs [][]float32, xqs [][]byte, res []float32) {
	if m.Quantized() {
		// Row by row gives the same rounding as Forward's blocks of rows (MulRowsQ).
		for k := range xs {
			m.MulRowsQ(res[k:k+1], i, i+1, xqs[k])
		}
		return
	}
	if m.mole == nil {
		switch m.DType {
		case loader.F16:
			kernels.DotF16Multi(m.Row(i), xs, res)
			return
		case loader.F32:
			kernels.DotF32BytesMulti(m.Row(i), xs, res)
			return
		case loader.BF16:
			kernels.DotBF16Multi(m.Row(i), xs, res)
			return
		}
	}
	for k, x := range xs {
		res[k] = m.DotRow(i, x)
	}
}
