package engine

import (
	"fmt"
	"math"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/moe"
)

// State is one sequence's inference state: its KV cache and every scratch buffer the
// forward pass needs, all allocated by NewState so that Forward allocates nothing.
// A State is used by one goroutine at a time.
type State struct {
	m   *Model
	cap int

	x, xn, tmp   []float32 // residual stream, its normalised copy, block output
	q            []float32 // NHead*HeadDim
	attOut       []float32 // NHead*HeadDim
	att          []float32 // NHead*cap attention scores
	hb           []float32 // FFN hidden activations of every expert in use
	routerLogits []float32
	expIdx       []int32
	expW         []float32
	logits       []float32
	kc, vc       []float32 // [layer][pos][NKVHead*HeadDim]

	// toks[:held] are the tokens whose keys and values the cache holds at positions
	// 0..held-1, each computed over the ones before it: the prefix a later sequence may
	// keep instead of evaluating it again (NewCachedSequence). Forward and Batch.Forward
	// keep it exact, so that what is reused is only ever what was evaluated: a position
	// about to be overwritten is dropped before the write and added only once the write
	// is complete.
	toks []int32
	held int

	// Inputs of Q8_0/Q4_0 products quantised to Q8_0 blocks (see Matrix.Quantized),
	// and scratch rows for the FFN's integer path.
	xq, hq     []byte
	ffU, ffOut []float32

	inv      []float64
	cos, sin []float32
	router   *moe.Router
	trace    func(layer int, experts []int32, weights []float32)
	lat      *latentScratch // MoLE layers (latent.go); nil without them

	// Jobs for the worker pool, with their run methods bound once (binding a method
	// value allocates, so it must not happen per token).
	mv        multiMatVec
	mvRun     func(lo, hi int)
	at        attention
	atRun     func(lo, hi int)
	ff        ffn
	ffUpRun   func(lo, hi int)
	ffDownRun func(lo, hi int)
}

// NewState allocates a State whose KV cache holds ctx positions (ctx <= 0: the model's
// trained context length). A ctx beyond the trained length is honoured: RoPE extends to
// any position, and whether quality holds there is the caller's call to make and to say
// (the commands allow it only with an explicit flag and a warning).
func (m *Model) NewState(ctx int) *State {
	c := &m.Config
	if ctx <= 0 {
		ctx = c.CtxLen
	}
	qDim, kvDim := c.NHead*c.HeadDim, c.NKVHead*c.HeadDim
	hidden := c.NFF
	if c.NExpert > 0 {
		hidden = max(hidden, c.NExpertUsed*c.NFFExpert+c.NFFShared)
	}
	s := &State{
		m: m, cap: ctx,
		x: make([]float32, c.NEmbd), xn: make([]float32, c.NEmbd), tmp: make([]float32, c.NEmbd),
		q: make([]float32, qDim), attOut: make([]float32, qDim), att: make([]float32, c.NHead*ctx),
		hb:           make([]float32, hidden),
		routerLogits: make([]float32, c.NExpert),
		expIdx:       make([]int32, c.NExpertUsed), expW: make([]float32, c.NExpertUsed),
		logits: make([]float32, c.Vocab),
		kc:     make([]float32, c.NLayer*ctx*kvDim), vc: make([]float32, c.NLayer*ctx*kvDim),
		inv: make([]float64, c.HeadDim/2), cos: make([]float32, c.HeadDim/2), sin: make([]float32, c.HeadDim/2),
		xq: make([]byte, m.actBuf(max(c.NEmbd, qDim), 1)), hq: make([]byte, m.actBuf(hidden, maxFFNParts)),
		ffU: make([]float32, hidden), ffOut: make([]float32, c.NEmbd), toks: make([]int32, ctx),
	}
	kernels.RoPEInvFreq(s.inv, c.HeadDim, c.RopeTheta)
	if c.NExpert > 0 {
		s.router = moe.NewRouter(c.NExpert, c.NExpertUsed, c.NormTopK)
	}
	s.mvRun = s.mv.run
	s.at = attention{s: s}
	s.atRun = s.at.run
	s.ffUpRun = s.ff.up
	s.ff.u, s.ff.tmp = s.ffU, s.ffOut
	s.ffDownRun = s.ff.down
	s.lat = m.newLatentScratch(1)
	return s
}

// Cap is the number of positions the KV cache holds.
func (s *State) Cap() int { return s.cap }

// Reset forgets the sequence, and with it the cached tokens (Cached). Nothing else needs
// clearing: Forward at position p only reads cache entries 0..p, which the caller wrote in
// this sequence before reaching p.
func (s *State) Reset() { s.held = 0 }

// Cached returns the tokens whose keys and values the cache holds, from position 0: every
// token evaluated by Forward or Batch.Forward since the last Reset, in position order, up
// to the first position written out of order. The slice is the State's, valid until the
// next Forward, Batch.Forward or Reset.
func (s *State) Cached() []int32 { return s.toks[:s.held] }

// CommonPrefix returns how many leading tokens of prompt the cache holds (see Cached):
// the prompt tokens a sequence started with NewCachedSequence need not evaluate again.
func (s *State) CommonPrefix(prompt []int32) int {
	n := min(len(prompt), s.held)
	for i := range n {
		if prompt[i] != s.toks[i] {
			return i
		}
	}
	return n
}

// writing notes that position pos of the cache is about to be overwritten: it and every
// later position no longer hold known tokens. Called before the write, so that a step cut
// short (a panic) leaves no claim on a half-written position.
func (s *State) writing(pos int) {
	if pos < s.held {
		s.held = pos
	}
}

// wrote notes that token's keys and values are complete at pos. Only a write that extends
// the held prefix counts; one past a gap was computed over unknown positions.
func (s *State) wrote(token int32, pos int) {
	if pos == s.held {
		s.toks[pos] = token
		s.held++
	}
}

// SetRouterTrace installs fn (nil to remove), called in every MoE layer of every
// Forward with the chosen experts (descending weight) and their weights. The slices
// are reused; copy them to keep them.
func (s *State) SetRouterTrace(fn func(layer int, experts []int32, weights []float32)) {
	s.trace = fn
}

// Forward runs one token at position pos (0-based; positions before pos must have
// been run in this sequence) and returns the logits, owned by the State and valid
// until the next call. It panics on a position outside the cache or an unknown token,
// both programming errors of the caller.
func (s *State) Forward(token int32, pos int) []float32 {
	m := s.m
	c := &m.Config
	if pos < 0 || pos >= s.cap {
		panic(fmt.Sprintf("engine: position %d outside the KV cache of %d", pos, s.cap))
	}
	if token < 0 || int(token) >= c.Vocab {
		panic(fmt.Sprintf("engine: token %d outside the vocabulary of %d", token, c.Vocab))
	}
	p := m.pool
	hd := c.HeadDim
	kvDim := c.NKVHead * hd
	eps := c.NormEps
	s.writing(pos)
	m.Embed.RowF32(int(token), s.x)
	kernels.RoPEAngles(s.cos, s.sin, s.inv, pos)

	for l := range m.Layers {
		L := &m.Layers[l]
		kernels.RMSNorm(s.xn, s.x, L.AttnNorm, eps)
		off := (l*s.cap + pos) * kvDim
		k, v := s.kc[off:off+kvDim], s.vc[off:off+kvDim]
		s.mv.reset(s.xn)
		s.mv.add(L.Wq, s.q)
		s.mv.add(L.Wk, k)
		s.mv.add(L.Wv, v)
		s.runMV(p)
		c.qkvTail(L, s.q, k, v, s.cos, s.sin)

		s.at.layer, s.at.pos = l, pos
		// Each head costs about 2*(pos+1)*HeadDim multiply-adds; run on the pool only
		// when that is worth waking workers for.
		chunk := c.NHead
		if (pos+1)*hd*c.NHead*2 > 32768 {
			chunk = max(1, (c.NHead+p.workers-1)/p.workers)
		}
		p.RunChunk(c.NHead, chunk, s.atRun)

		s.mv.reset(s.attOut)
		s.mv.add(L.Wo, s.tmp)
		s.runMV(p)
		if L.Bo != nil {
			kernels.Add(s.tmp, L.Bo)
		}
		kernels.Add(s.x, s.tmp)

		kernels.RMSNorm(s.xn, s.x, L.FFNNorm, eps)
		s.ffnBlock(p, L, l)
		kernels.Add(s.x, s.tmp)
	}
	s.wrote(token, pos) // every layer's K and V of pos are in the cache
	kernels.RMSNorm(s.xn, s.x, m.OutNorm, eps)
	s.mv.reset(s.xn)
	s.mv.add(m.Output, s.logits)
	s.runMV(p)
	return s.logits
}

// ffnBlock writes the FFN (dense or routed experts, plus a shared expert) of s.xn into s.tmp.
func (s *State) ffnBlock(p *Pool, L *Layer, l int) {
	if L.Latent != nil {
		s.latentFFN(p, L, l)
		return
	}
	f := &s.ff
	f.reset(s.xn, s.hb, s.tmp)
	if L.Router == nil {
		f.add(L.Gate, L.Up, L.Down, 1)
	} else {
		for e := range s.routerLogits {
			s.routerLogits[e] = L.Router.DotRow(e, s.xn)
		}
		s.router.Route(s.routerLogits, s.expIdx, s.expW)
		if s.trace != nil {
			s.trace(l, s.expIdx, s.expW)
		}
		if g := s.m.schedOf(); g != nil { // under a memory budget (sched.go)
			g.forwardFFN(s, p, L, l)
			return
		}
		for j, e := range s.expIdx {
			f.add(L.ExpGate[e], L.ExpUp[e], L.ExpDown[e], s.expW[j])
		}
		if L.ShGate != nil {
			f.add(L.ShGate, L.ShUp, L.ShDown, kernels.Sigmoid(L.ShGateInp.DotRow(0, s.xn)))
		}
	}
	cols := s.m.Config.NEmbd
	if f.upQ {
		s.m.quantAct(s.xq[:s.m.actBytes(cols)], s.xn)
		f.xq = s.xq
	}
	p.RunChunk(f.rows, chunkFor(p, f.rows, cols), s.ffUpRun)
	if f.downQ {
		for t := 0; t < f.n; t++ {
			if e := &f.ex[t]; e.down.Quantized() {
				s.m.quantAct(s.hq[e.qoff:e.qoff+s.m.actBytes(e.n)], f.h[e.off:e.off+e.n])
			}
		}
		f.hq = s.hq
	}
	p.RunChunk(cols, chunkFor(p, cols, f.rows), s.ffDownRun)
}

// chunkFor picks a chunk size for rows of cols multiply-adds each: about four chunks
// per worker, but at least ~16K multiply-adds per chunk so that waking a worker pays.
func chunkFor(p *Pool, rows, cols int) int {
	c := (rows + 4*p.workers - 1) / (4 * p.workers)
	return max(c, 16384/max(cols, 1))
}

func (s *State) runMV(p *Pool) {
	if s.mv.quant {
		// One quantisation of the shared input serves every Q8_0/Q4_0 matrix.
		n := s.m.actBytes(len(s.mv.x))
		s.m.quantAct(s.xq[:n], s.mv.x)
		s.mv.xq = s.xq[:n]
	}
	p.RunChunk(s.mv.rows, chunkFor(p, s.mv.rows, len(s.mv.x)), s.mvRun)
}

// multiMatVec computes up to four products with the same input in one pool run
// (q, k and v share one), so one wake-up serves all of them.
type multiMatVec struct {
	x     []float32
	n     int
	mats  [4]*Matrix
	outs  [4][]float32
	offs  [5]int
	rows  int
	quant bool   // some matrix is Quantized: runMV fills xq
	xq    []byte // x quantised to Q8_0 blocks
}

func (j *multiMatVec) reset(x []float32) { j.x, j.n, j.rows, j.quant = x, 0, 0, false }

func (j *multiMatVec) add(m *Matrix, out []float32) {
	j.mats[j.n], j.outs[j.n] = m, out
	j.offs[j.n] = j.rows
	j.rows += m.Rows
	j.n++
	j.offs[j.n] = j.rows
	j.quant = j.quant || m.Quantized()
}

func (j *multiMatVec) run(lo, hi int) {
	for t := 0; t < j.n; t++ {
		a, b := max(lo, j.offs[t]), min(hi, j.offs[t+1])
		m, out, base := j.mats[t], j.outs[t], j.offs[t]
		if m.Quantized() {
			if a < b {
				m.MulRowsQ(out[a-base:b-base], a-base, b-base, j.xq)
			}
			continue
		}
		for r := a; r < b; r++ {
			i := r - base
			out[i] = m.dot(m.Data[i*m.RowBytes:(i+1)*m.RowBytes], j.x)
		}
	}
}

// attention runs causal multi-head attention of s.q over cache positions 0..pos for a
// range of query heads. Query head h reads KV head h/(NHead/NKVHead) (GQA).
type attention struct {
	s          *State
	layer, pos int
}

func (a *attention) run(lo, hi int) {
	s := a.s
	c := &s.m.Config
	hd := c.HeadDim
	kvDim := c.NKVHead * hd
	group := c.NHead / c.NKVHead
	scale := float32(1 / math.Sqrt(float64(hd)))
	base := a.layer * s.cap * kvDim
	for h := lo; h < hi; h++ {
		q := s.q[h*hd : (h+1)*hd]
		ko := base + (h/group)*hd
		sc := s.att[h*s.cap : h*s.cap+a.pos+1]
		for t := range sc {
			sc[t] = kernels.Dot(q, s.kc[ko+t*kvDim:ko+t*kvDim+hd]) * scale
		}
		kernels.Softmax(sc)
		out := s.attOut[h*hd : (h+1)*hd]
		clear(out)
		for t, w := range sc {
			kernels.Axpy(out, w, s.vc[ko+t*kvDim:ko+t*kvDim+hd])
		}
	}
}

// ffn runs SwiGLU experts (a dense FFN is one expert of weight 1): up computes
// h = silu(gate x) * up x for every expert's rows, laid end to end in h; down computes
// out[i] = sum over experts of w_e * (down_e row i) · h_e.
type ffn struct {
	x, h, out []float32
	n         int
	ex        [maxFFNParts]ffnPart
	rows      int

	// Integer path (Q8_0/Q4_0 experts): upQ when some gate/up matrix is Quantized (xq is
	// x quantised), downQ when some down matrix is (hq holds each such part's slice of h
	// quantised, at ffnPart.qoff); u and tmp are scratch rows (up values, down products).
	upQ, downQ bool
	xq, hq     []byte
	qbytes     int
	u, tmp     []float32
}

// maxFFNParts bounds experts per token plus one shared expert.
const maxFFNParts = 65

type ffnPart struct {
	gate, up, down *Matrix
	w              float32
	off, n         int
	qoff           int // byte offset of this part's quantised h in ffn.hq (down Quantized)
}

func (f *ffn) reset(x, h, out []float32) {
	f.x, f.h, f.out, f.n, f.rows = x, h, out, 0, 0
	f.upQ, f.downQ, f.qbytes = false, false, 0
}

func (f *ffn) add(gate, up, down *Matrix, w float32) {
	f.ex[f.n] = ffnPart{gate: gate, up: up, down: down, w: w, off: f.rows, n: gate.Rows, qoff: f.qbytes}
	f.rows += gate.Rows
	f.n++
	f.upQ = f.upQ || gate.Quantized() || up.Quantized()
	if down.Quantized() {
		f.downQ = true
		f.qbytes += down.actBytes(gate.Rows)
	}
}

func (f *ffn) up(lo, hi int) {
	for t := 0; t < f.n; t++ {
		e := &f.ex[t]
		a, b := max(lo, e.off), min(hi, e.off+e.n)
		if a < b {
			// Gate rows into h, up rows into u, then h = silu(g)*u in one vector pass.
			g, u := f.h[a:b], f.u[a:b]
			for _, mu := range [2]struct {
				m   *Matrix
				out []float32
			}{{e.gate, g}, {e.up, u}} {
				if mu.m.Quantized() {
					mu.m.MulRowsQ(mu.out, a-e.off, b-e.off, f.xq)
					continue
				}
				for r := a; r < b; r++ {
					i := r - e.off
					mu.out[r-a] = mu.m.dot(mu.m.Data[i*mu.m.RowBytes:(i+1)*mu.m.RowBytes], f.x)
				}
			}
			kernels.SiLUMul(g, u)
		}
	}
}

func (f *ffn) down(lo, hi int) {
	if f.downQ {
		// Part by part: each product into tmp, then out += w*tmp, which adds the parts
		// in the same order (and with the same float32 steps) as the loop below.
		out, tmp := f.out[lo:hi], f.tmp[lo:hi]
		clear(out)
		for t := 0; t < f.n; t++ {
			e := &f.ex[t]
			d := e.down
			if d.Quantized() {
				d.MulRowsQ(tmp, lo, hi, f.hq[e.qoff:e.qoff+d.actBytes(e.n)])
			} else {
				for i := lo; i < hi; i++ {
					tmp[i-lo] = d.dot(d.Data[i*d.RowBytes:(i+1)*d.RowBytes], f.h[e.off:e.off+e.n])
				}
			}
			for i, v := range tmp {
				out[i] += e.w * v
			}
		}
		return
	}
	for i := lo; i < hi; i++ {
		var sum float32
		for t := 0; t < f.n; t++ {
			e := &f.ex[t]
			d := e.down
			sum += e.w * d.dot(d.Data[i*d.RowBytes:(i+1)*d.RowBytes], f.h[e.off:e.off+e.n])
		}
		f.out[i] = sum
	}
}

// qkvTail applies block L's q/k/v biases, its QK norm and RoPE (the angles cos, sin) to
// one token's projections in place: the steps between the projections and attention
// that Forward, Batch and the calibration passes share.
func (c *Config) qkvTail(L *Layer, q, k, v, cos, sin []float32) {
	hd, eps := c.HeadDim, c.NormEps
	if L.Bq != nil {
		kernels.Add(q, L.Bq)
		kernels.Add(k, L.Bk)
		kernels.Add(v, L.Bv)
	}
	switch c.QKNorm {
	case "head":
		for h := 0; h < c.NHead; h++ {
			kernels.RMSNorm(q[h*hd:(h+1)*hd], q[h*hd:(h+1)*hd], L.QNorm, eps)
		}
		for h := 0; h < c.NKVHead; h++ {
			kernels.RMSNorm(k[h*hd:(h+1)*hd], k[h*hd:(h+1)*hd], L.KNorm, eps)
		}
	case "full":
		kernels.RMSNorm(q, q, L.QNorm, eps)
		kernels.RMSNorm(k, k, L.KNorm, eps)
	}
	rope := kernels.RoPENeoX
	if !c.RopeNeoX {
		rope = kernels.RoPEInterleaved
	}
	for h := 0; h < c.NHead; h++ {
		rope(q[h*hd:(h+1)*hd], cos, sin)
	}
	for h := 0; h < c.NKVHead; h++ {
		rope(k[h*hd:(h+1)*hd], cos, sin)
	}
}
