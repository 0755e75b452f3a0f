package engine

import (
	"context"
	"fmt"
	"math"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/moe"
	"github.com/mole-llm/mole/quant"
)

// Calibration holds the statistics of every linear layer's input, collected by running
// the float model over calibration text (CollectCalibration). Layers that read the same
// input share one *quant.Stats (q, k and v; the router, gate and up projections).
type Calibration struct {
	Tokens int // tokens run
	Layers []LayerCalib
	Output *quant.Stats // input of the output head
}

// LayerCalib is one block's statistics. Expert e's entries count only the tokens routed
// to it.
type LayerCalib struct {
	Attn    *quant.Stats // after attn_norm: q, k, v
	AttnOut *quant.Stats // attention output: o
	FFN     *quant.Stats // after ffn_norm: router, dense or shared gate/up
	Down    *quant.Stats // dense FFN's down input
	ShDown  *quant.Stats // shared expert's down input
	ExpFFN  []*quant.Stats
	ExpDown []*quant.Stats // routed expert's down input (latent: D_e's input, the same h)

	// Latent (MoLE) layers: the input of each group's bases B (the FFN input of the
	// tokens using that group; with one group it is FFN itself), each expert's latent
	// inputs z = B x (of the gate and up bases, tokens routed to it), and each group's
	// C input y = Σ w_e D_e h_e (per token using the group).
	LatIn            []*quant.Stats
	LatZGate, LatZUp []*quant.Stats
	LatY             []*quant.Stats
}

// Stats returns the statistics of the weight GGUF calls name (llama.cpp names, as
// WriteGGUF writes them; expert is the index in a stacked tensor, -1 otherwise), or nil.
// The MWQ quantizer looks its Gram matrices up the same way.
func (c *Calibration) Stats(name string, expert int) *quant.Stats {
	if name == "output.weight" {
		return c.Output
	}
	var l int
	var rest string
	if _, err := fmt.Sscanf(name, "blk.%d.%s", &l, &rest); err != nil || l < 0 || l >= len(c.Layers) {
		return nil
	}
	return c.Layers[l].stats(rest, expert)
}

// stats is Stats for one block's tensor (name without "blk.N.").
func (lc *LayerCalib) stats(rest string, expert int) *quant.Stats {
	pick := func(s []*quant.Stats) *quant.Stats {
		if expert < 0 && len(s) == 1 { // a single group's basis is not stacked
			expert = 0
		}
		if expert < 0 || expert >= len(s) {
			return nil
		}
		return s[expert]
	}
	switch rest {
	case "attn_q.weight", "attn_k.weight", "attn_v.weight":
		return lc.Attn
	case "attn_output.weight":
		return lc.AttnOut
	case "ffn_gate.weight", "ffn_up.weight", "ffn_gate_inp.weight", "ffn_gate_shexp.weight", "ffn_up_shexp.weight":
		return lc.FFN
	case "ffn_down.weight":
		return lc.Down
	case "ffn_down_shexp.weight":
		return lc.ShDown
	case "ffn_gate_exps.weight", "ffn_up_exps.weight":
		return pick(lc.ExpFFN)
	case "ffn_down_exps.weight", "ffn_down_lat_exps.weight":
		return pick(lc.ExpDown)
	case "ffn_gate_lat.weight", "ffn_up_lat.weight":
		return pick(lc.LatIn)
	case "ffn_gate_lat_exps.weight":
		return pick(lc.LatZGate)
	case "ffn_up_lat_exps.weight":
		return pick(lc.LatZUp)
	case "ffn_down_lat.weight":
		return pick(lc.LatY)
	}
	return nil
}

// newLayerCalib returns empty statistics for every linear input of block L.
func newLayerCalib(L *Layer, c *Config) *LayerCalib {
	lc := &LayerCalib{Attn: quant.NewStats(c.NEmbd), AttnOut: quant.NewStats(L.Wo.Cols), FFN: quant.NewStats(c.NEmbd)}
	if L.Router == nil {
		lc.Down = quant.NewStats(L.Down.Cols)
		return lc
	}
	if L.ShDown != nil {
		lc.ShDown = quant.NewStats(L.ShDown.Cols)
	}
	if lf := L.Latent; lf != nil {
		for g := range lf.GateIn {
			in := lc.FFN // one group sees every token: its basis reads the FFN input
			if len(lf.GateIn) > 1 {
				in = quant.NewStats(c.NEmbd)
			}
			lc.LatIn = append(lc.LatIn, in)
			lc.LatY = append(lc.LatY, quant.NewStats(lf.DownOut[g].Cols))
		}
		for e := range lf.ExpGate {
			lc.LatZGate = append(lc.LatZGate, quant.NewStats(lf.ExpGate[e].Cols))
			lc.LatZUp = append(lc.LatZUp, quant.NewStats(lf.ExpUp[e].Cols))
			lc.ExpDown = append(lc.ExpDown, quant.NewStats(lf.ExpDown[e].Cols))
		}
		return lc
	}
	for e := range L.ExpGate {
		lc.ExpFFN = append(lc.ExpFFN, quant.NewStats(c.NEmbd))
		lc.ExpDown = append(lc.ExpDown, quant.NewStats(L.ExpDown[e].Cols))
	}
	return lc
}

// finish completes every statistic of the block once (shared ones included).
func (lc *LayerCalib) finish() {
	seen := map[*quant.Stats]bool{}
	for _, s := range lc.all() {
		if s != nil && !seen[s] {
			seen[s] = true
			s.Finish()
		}
	}
}

func (lc *LayerCalib) all() []*quant.Stats {
	out := []*quant.Stats{lc.Attn, lc.AttnOut, lc.FFN, lc.Down, lc.ShDown}
	for _, s := range [][]*quant.Stats{lc.ExpFFN, lc.ExpDown, lc.LatIn, lc.LatZGate, lc.LatZUp, lc.LatY} {
		out = append(out, s...)
	}
	return out
}

// CollectCalibration runs m (float weights expected: the statistics describe the float
// model's activations) over tokens in windows of window tokens, each from a fresh cache
// and preceded by BOS when the model uses one, and accumulates every linear layer's
// input statistics. It holds every layer's statistics at once; Quantize goes block by
// block (calibRun) and keeps only one block's.
//
// It runs its own plain forward pass (calibForward) rather than State.Forward: the
// statistics need the inputs of every projection, per expert, which the optimised pass
// never materialises separately. A test checks that both give the same logits.
func (m *Model) CollectCalibration(ctx context.Context, tokens []int32, window int) (*Calibration, error) {
	c := &m.Config
	r := newCalibRun(m, tokens, window, m.pool)
	cal := &Calibration{Tokens: r.tokens, Layers: make([]LayerCalib, c.NLayer), Output: quant.NewStats(c.NEmbd)}
	for l := range m.Layers {
		// The block pass reads float rows (calibRun.layer); a copy also serves
		// quantized inputs.
		L, err := cloneLayerF32(&m.Layers[l])
		if err != nil {
			return nil, err
		}
		lc := newLayerCalib(L, c)
		if err := r.layer(ctx, L, lc); err != nil {
			return nil, err
		}
		lc.finish()
		cal.Layers[l] = *lc
	}
	r.output(m.OutNorm, cal.Output)
	cal.Output.Finish()
	return cal, nil
}

// calibRun runs calibration text through a model one block at a time: it keeps every
// calibration token's residual stream (tokens x NEmbd floats) between blocks, so a
// block's statistics can be collected, used and freed before the next block is even
// read. Each token goes through the same arithmetic, in the same order, as a
// token-by-token pass through all blocks (calibForward.forward), so the statistics are
// the same bits either way.
type calibRun struct {
	f       *calibForward
	windows [][]int32 // each window's tokens, BOS first when the model uses one
	x       []float32 // [tokens][NEmbd]: the residual stream entering the next block
	tokens  int
	kc, vc  []float32 // one block's cache for one window
	// progress, when set, is called with the tokens done and total of the block.
	progress func(done, total int64)
}

func newCalibRun(m *Model, tokens []int32, window int, p *Pool) *calibRun {
	c := &m.Config
	if window < 2 || window > c.CtxLen {
		window = min(c.CtxLen, 256)
	}
	bos := int32(-1)
	if m.Tok != nil && m.Tok.AddBOS() {
		bos = m.Tok.BOS()
	}
	r := &calibRun{}
	for w := 0; w < len(tokens); w += window {
		var seq []int32
		if bos >= 0 {
			seq = append(seq, bos)
		}
		seq = append(seq, tokens[w:min(len(tokens), w+window)]...)
		r.windows = append(r.windows, seq)
		r.tokens += len(seq)
	}
	r.f = newCalibForward(m, window+1, false, p)
	r.x = make([]float32, r.tokens*c.NEmbd)
	t := 0
	for _, seq := range r.windows {
		for _, tok := range seq {
			m.Embed.RowF32(int(tok), r.x[t*c.NEmbd:(t+1)*c.NEmbd])
			t++
		}
	}
	kvDim := c.NKVHead * c.HeadDim
	r.kc, r.vc = make([]float32, (window+1)*kvDim), make([]float32, (window+1)*kvDim)
	return r
}

// layer runs every calibration token through block L (float weights), adding the
// inputs of its projections to lc, and leaves the block's output in the residual
// stream. All tokens go through at once (layerAll); the numbers are those of a
// token-by-token pass (layerTokens), bit for bit.
func (r *calibRun) layer(ctx context.Context, L *Layer, lc *LayerCalib) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.progress != nil {
		r.progress(0, int64(r.tokens))
	}
	r.layerAll(L, lc)
	if r.progress != nil {
		r.progress(int64(r.tokens), int64(r.tokens))
	}
	return ctx.Err()
}

// layerTokens is layer token by token, window by window, through calibForward.block:
// the reference layerAll is tested against.
func (r *calibRun) layerTokens(L *Layer, lc *LayerCalib) {
	ne := r.f.c.NEmbd
	t := 0
	for _, seq := range r.windows {
		for pos := range seq {
			r.f.block(L, r.x[t*ne:(t+1)*ne], pos, r.kc, r.vc, lc)
			t++
		}
	}
}

// output adds the output head's inputs (the final norm of every token) to st.
func (r *calibRun) output(outNorm []float32, st *quant.Stats) {
	ne := r.f.c.NEmbd
	for t := 0; t < r.tokens; t++ {
		kernels.RMSNorm(r.f.xn, r.x[t*ne:(t+1)*ne], outNorm, r.f.c.NormEps)
		st.Add(r.f.xn)
	}
}

// calibForward is a plain single-sequence float forward pass, block by block, that
// records the inputs of every projection into LayerCalibs.
type calibForward struct {
	m               *Model
	c               *Config
	pool            *Pool
	x, xn, tmp, q   []float32
	attOut, h, u, y []float32
	kc, vc          []float32 // forward's cache: [NLayer][cap][kvDim]
	scores, logits  []float32
	rl, ew          []float32
	ei              []int32
	inv             []float64
	cos, sin        []float32
	router          *moe.Router
	cap             int
	// Latent layers: z = B x per group slot of the token (gate part, up part), the
	// experts' latent outputs and their weighted sums per group slot.
	zg, zu, lv, ly [][]float32
	gOf            []int
}

// newCalibForward returns the pass for sequences of up to capacity tokens. Only forward
// (the whole model, token by token) needs whole, which allocates every block's cache.
func newCalibForward(m *Model, capacity int, whole bool, p *Pool) *calibForward {
	c := &m.Config
	qDim, kvDim := c.NHead*c.HeadDim, c.NKVHead*c.HeadDim
	hidden := max(c.NFF, c.NFFExpert, c.NFFShared)
	f := &calibForward{m: m, c: c, pool: p, cap: capacity,
		x: make([]float32, c.NEmbd), xn: make([]float32, c.NEmbd), tmp: make([]float32, c.NEmbd), y: make([]float32, c.NEmbd),
		q: make([]float32, qDim), attOut: make([]float32, qDim), scores: make([]float32, capacity),
		h: make([]float32, hidden), u: make([]float32, hidden),
		rl: make([]float32, c.NExpert), ew: make([]float32, c.NExpertUsed), ei: make([]int32, c.NExpertUsed),
		inv: make([]float64, c.HeadDim/2), cos: make([]float32, c.HeadDim/2), sin: make([]float32, c.HeadDim/2),
		zg: make([][]float32, c.NExpertUsed), zu: make([][]float32, c.NExpertUsed),
		lv: make([][]float32, c.NExpertUsed), ly: make([][]float32, c.NExpertUsed), gOf: make([]int, c.NExpertUsed),
	}
	if whole {
		f.kc, f.vc = make([]float32, c.NLayer*capacity*kvDim), make([]float32, c.NLayer*capacity*kvDim)
		f.logits = make([]float32, c.Vocab)
	}
	kernels.RoPEInvFreq(f.inv, c.HeadDim, c.RopeTheta)
	if c.NExpert > 0 {
		f.router = moe.NewRouter(c.NExpert, c.NExpertUsed, c.NormTopK)
	}
	return f
}

func addStats(s *quant.Stats, x []float32) {
	if s != nil {
		s.Add(x)
	}
}

// forward runs one token through the whole model (m's weights, cache from
// newCalibForward with whole set) and returns the logits (valid until the next call).
func (f *calibForward) forward(token int32, pos int) []float32 {
	m, c := f.m, f.c
	kvDim := c.NKVHead * c.HeadDim
	m.Embed.RowF32(int(token), f.x)
	var none LayerCalib
	for l := range m.Layers {
		kc, vc := f.kc[l*f.cap*kvDim:(l+1)*f.cap*kvDim], f.vc[l*f.cap*kvDim:(l+1)*f.cap*kvDim]
		f.block(&m.Layers[l], f.x, pos, kc, vc, &none)
	}
	kernels.RMSNorm(f.xn, f.x, m.OutNorm, c.NormEps)
	m.Output.MulVec(f.pool, f.logits, f.xn)
	return f.logits
}

// block runs block L on the residual x (in place) of the token at pos, with the
// block's cache kc, vc ([cap][kvDim]), adding the projections' inputs to lc.
func (f *calibForward) block(L *Layer, x []float32, pos int, kc, vc []float32, lc *LayerCalib) {
	c, p := f.c, f.pool
	hd, kvDim := c.HeadDim, c.NKVHead*c.HeadDim
	kernels.RoPEAngles(f.cos, f.sin, f.inv, pos)
	kernels.RMSNorm(f.xn, x, L.AttnNorm, c.NormEps)
	addStats(lc.Attn, f.xn)
	k, v := kc[pos*kvDim:(pos+1)*kvDim], vc[pos*kvDim:(pos+1)*kvDim]
	L.Wq.MulVec(p, f.q, f.xn)
	L.Wk.MulVec(p, k, f.xn)
	L.Wv.MulVec(p, v, f.xn)
	c.qkvTail(L, f.q, k, v, f.cos, f.sin)
	group := c.NHead / c.NKVHead
	scale := float32(1 / math.Sqrt(float64(hd)))
	for h := 0; h < c.NHead; h++ {
		qh := f.q[h*hd : (h+1)*hd]
		ko := (h / group) * hd
		sc := f.scores[:pos+1]
		for t := range sc {
			sc[t] = kernels.Dot(qh, kc[ko+t*kvDim:ko+t*kvDim+hd]) * scale
		}
		kernels.Softmax(sc)
		out := f.attOut[h*hd : (h+1)*hd]
		clear(out)
		for t, w := range sc {
			kernels.Axpy(out, w, vc[ko+t*kvDim:ko+t*kvDim+hd])
		}
	}
	addStats(lc.AttnOut, f.attOut)
	L.Wo.MulVec(p, f.tmp, f.attOut)
	if L.Bo != nil {
		kernels.Add(f.tmp, L.Bo)
	}
	kernels.Add(x, f.tmp)

	kernels.RMSNorm(f.xn, x, L.FFNNorm, c.NormEps)
	addStats(lc.FFN, f.xn)
	clear(f.tmp)
	expert := func(g, u, d *Matrix, w float32, in, down *quant.Stats) {
		addStats(in, f.xn)
		h, uu := f.h[:g.Rows], f.u[:g.Rows]
		g.MulVec(p, h, f.xn)
		u.MulVec(p, uu, f.xn)
		kernels.SiLUMul(h, uu)
		addStats(down, h)
		d.MulVec(p, f.y, h)
		kernels.Axpy(f.tmp, w, f.y)
	}
	switch {
	case L.Router == nil:
		expert(L.Gate, L.Up, L.Down, 1, nil, lc.Down)
	default:
		for e := range f.rl {
			f.rl[e] = L.Router.DotRow(e, f.xn)
		}
		f.router.Route(f.rl, f.ei, f.ew)
		if L.Latent != nil {
			f.latent(L.Latent, lc)
		} else {
			for j, e := range f.ei {
				var in, dn *quant.Stats
				if lc.ExpFFN != nil {
					in, dn = lc.ExpFFN[e], lc.ExpDown[e]
				}
				expert(L.ExpGate[e], L.ExpUp[e], L.ExpDown[e], f.ew[j], in, dn)
			}
		}
		if L.ShGate != nil {
			expert(L.ShGate, L.ShUp, L.ShDown, kernels.Sigmoid(L.ShGateInp.DotRow(0, f.xn)), nil, lc.ShDown)
		}
	}
	kernels.Add(x, f.tmp)
}

// grow returns b resized to n (reallocated when too small).
func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// latent adds the routed experts of a latent layer (the token's experts in f.ei, f.ew)
// to f.tmp, as latentScratch.run computes them: z = B x once per group the token uses,
// each expert in the latent space, and C once per group on the weighted sum.
func (f *calibForward) latent(lf *LatentFFN, lc *LayerCalib) {
	p := f.pool
	pick := func(s []*quant.Stats, i int) *quant.Stats {
		if s == nil {
			return nil
		}
		return s[i]
	}
	ng := 0
	for j, e := range f.ei {
		g := lf.GroupOf[e]
		gs := -1
		for t := range ng {
			if f.gOf[t] == g {
				gs = t
			}
		}
		if gs < 0 {
			gs, ng = ng, ng+1
			f.gOf[gs] = g
			f.zg[gs] = grow(f.zg[gs], lf.GateIn[g].Rows)
			f.zu[gs] = grow(f.zu[gs], lf.UpIn[g].Rows)
			f.ly[gs] = grow(f.ly[gs], lf.DownOut[g].Cols)
			clear(f.ly[gs])
			if len(lf.GateIn) > 1 { // one group's input is lc.FFN, added already
				addStats(pick(lc.LatIn, g), f.xn)
			}
			lf.GateIn[g].MulVec(p, f.zg[gs], f.xn)
			lf.UpIn[g].MulVec(p, f.zu[gs], f.xn)
		}
		addStats(pick(lc.LatZGate, int(e)), f.zg[gs])
		addStats(pick(lc.LatZUp, int(e)), f.zu[gs])
		h, u := f.h[:lf.ExpGate[e].Rows], f.u[:lf.ExpUp[e].Rows]
		lf.ExpGate[e].MulVec(p, h, f.zg[gs])
		lf.ExpUp[e].MulVec(p, u, f.zu[gs])
		kernels.SiLUMul(h, u)
		addStats(pick(lc.ExpDown, int(e)), h)
		f.lv[0] = grow(f.lv[0], lf.ExpDown[e].Rows)
		lf.ExpDown[e].MulVec(p, f.lv[0], h)
		kernels.Axpy(f.ly[gs], f.ew[j], f.lv[0])
	}
	for gs := range ng {
		g := f.gOf[gs]
		addStats(pick(lc.LatY, g), f.ly[gs])
		lf.DownOut[g].MulVec(p, f.y, f.ly[gs])
		kernels.Add(f.tmp, f.y)
	}
}
