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
	ExpDown []*quant.Stats
}

// Stats returns the statistics of the weight GGUF calls name (llama.cpp names, as
// WriteGGUF writes them; expert is the index in a stacked tensor, -1 otherwise), or nil.
// Helper Q2's MWQ quantizer looks its Gram matrices up the same way.
func (c *Calibration) Stats(name string, expert int) *quant.Stats {
	if name == "output.weight" {
		return c.Output
	}
	var l int
	var rest string
	if _, err := fmt.Sscanf(name, "blk.%d.%s", &l, &rest); err != nil || l < 0 || l >= len(c.Layers) {
		return nil
	}
	L := &c.Layers[l]
	pick := func(s []*quant.Stats) *quant.Stats {
		if expert < 0 || expert >= len(s) {
			return nil
		}
		return s[expert]
	}
	switch rest {
	case "attn_q.weight", "attn_k.weight", "attn_v.weight":
		return L.Attn
	case "attn_output.weight":
		return L.AttnOut
	case "ffn_gate.weight", "ffn_up.weight", "ffn_gate_inp.weight", "ffn_gate_shexp.weight", "ffn_up_shexp.weight":
		return L.FFN
	case "ffn_down.weight":
		return L.Down
	case "ffn_down_shexp.weight":
		return L.ShDown
	case "ffn_gate_exps.weight", "ffn_up_exps.weight":
		return pick(L.ExpFFN)
	case "ffn_down_exps.weight":
		return pick(L.ExpDown)
	}
	return nil
}

// CollectCalibration runs m (float weights expected: the statistics describe the float
// model's activations) over tokens in windows of window tokens, each from a fresh cache
// and preceded by BOS when the model uses one, and accumulates every linear layer's
// input statistics.
//
// It runs its own plain forward pass (calibForward) rather than State.Forward: the
// statistics need the inputs of every projection, per expert, which the optimised pass
// never materialises separately. A test checks that both give the same logits.
func (m *Model) CollectCalibration(ctx context.Context, tokens []int32, window int) (*Calibration, error) {
	c := &m.Config
	if window < 2 || window > c.CtxLen {
		window = min(c.CtxLen, 256)
	}
	cal := &Calibration{Layers: make([]LayerCalib, c.NLayer), Output: quant.NewStats(c.NEmbd)}
	qDim := c.NHead * c.HeadDim
	for l := range cal.Layers {
		L, lc := &m.Layers[l], &cal.Layers[l]
		lc.Attn, lc.AttnOut, lc.FFN = quant.NewStats(c.NEmbd), quant.NewStats(qDim), quant.NewStats(c.NEmbd)
		if L.Router == nil {
			lc.Down = quant.NewStats(L.Down.Cols)
			continue
		}
		for e := range L.ExpGate {
			lc.ExpFFN = append(lc.ExpFFN, quant.NewStats(c.NEmbd))
			lc.ExpDown = append(lc.ExpDown, quant.NewStats(L.ExpDown[e].Cols))
		}
		if L.ShDown != nil {
			lc.ShDown = quant.NewStats(L.ShDown.Cols)
		}
	}
	f := newCalibForward(m, window+1, cal)
	bos := int32(-1)
	if m.Tok != nil && m.Tok.AddBOS() {
		bos = m.Tok.BOS()
	}
	for w := 0; w < len(tokens); w += window {
		seq := tokens[w:min(len(tokens), w+window)]
		pos := 0
		if bos >= 0 {
			f.forward(bos, pos)
			pos++
		}
		for _, t := range seq {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			f.forward(t, pos)
			pos++
		}
		cal.Tokens += pos
	}
	cal.finish()
	return cal, nil
}

func (cal *Calibration) finish() {
	seen := map[*quant.Stats]bool{}
	fin := func(s *quant.Stats) {
		if s != nil && !seen[s] {
			seen[s] = true
			s.Finish()
		}
	}
	fin(cal.Output)
	for l := range cal.Layers {
		lc := &cal.Layers[l]
		for _, s := range []*quant.Stats{lc.Attn, lc.AttnOut, lc.FFN, lc.Down, lc.ShDown} {
			fin(s)
		}
		for e := range lc.ExpFFN {
			fin(lc.ExpFFN[e])
			fin(lc.ExpDown[e])
		}
	}
}

// calibForward is a plain single-sequence float forward pass that records the inputs
// of every projection into a Calibration (nil: records nothing).
type calibForward struct {
	m                  *Model
	cal                *Calibration
	x, xn, tmp, q, att []float32
	attOut, h, u, y    []float32
	kc, vc             []float32
	scores, logits     []float32
	rl, ew             []float32
	ei                 []int32
	inv                []float64
	cos, sin           []float32
	router             *moe.Router
	cap                int
}

func newCalibForward(m *Model, capacity int, cal *Calibration) *calibForward {
	c := &m.Config
	qDim, kvDim := c.NHead*c.HeadDim, c.NKVHead*c.HeadDim
	hidden := max(c.NFF, c.NFFExpert, c.NFFShared)
	f := &calibForward{m: m, cal: cal, cap: capacity,
		x: make([]float32, c.NEmbd), xn: make([]float32, c.NEmbd), tmp: make([]float32, c.NEmbd), y: make([]float32, c.NEmbd),
		q: make([]float32, qDim), attOut: make([]float32, qDim), scores: make([]float32, capacity),
		h: make([]float32, hidden), u: make([]float32, hidden),
		kc: make([]float32, c.NLayer*capacity*kvDim), vc: make([]float32, c.NLayer*capacity*kvDim),
		logits: make([]float32, c.Vocab),
		rl:     make([]float32, c.NExpert), ew: make([]float32, c.NExpertUsed), ei: make([]int32, c.NExpertUsed),
		inv: make([]float64, c.HeadDim/2), cos: make([]float32, c.HeadDim/2), sin: make([]float32, c.HeadDim/2),
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

// forward runs one token and returns the logits (valid until the next call).
func (f *calibForward) forward(token int32, pos int) []float32 {
	m, c := f.m, &f.m.Config
	p := m.pool
	hd, kvDim := c.HeadDim, c.NKVHead*c.HeadDim
	m.Embed.RowF32(int(token), f.x)
	kernels.RoPEAngles(f.cos, f.sin, f.inv, pos)
	rope := kernels.RoPENeoX
	if !c.RopeNeoX {
		rope = kernels.RoPEInterleaved
	}
	var lc *LayerCalib
	for l := range m.Layers {
		L := &m.Layers[l]
		if f.cal != nil {
			lc = &f.cal.Layers[l]
		} else {
			lc = &LayerCalib{}
		}
		kernels.RMSNorm(f.xn, f.x, L.AttnNorm, c.NormEps)
		addStats(lc.Attn, f.xn)
		off := (l*f.cap + pos) * kvDim
		k, v := f.kc[off:off+kvDim], f.vc[off:off+kvDim]
		L.Wq.MulVec(p, f.q, f.xn)
		L.Wk.MulVec(p, k, f.xn)
		L.Wv.MulVec(p, v, f.xn)
		if L.Bq != nil {
			kernels.Add(f.q, L.Bq)
			kernels.Add(k, L.Bk)
			kernels.Add(v, L.Bv)
		}
		switch c.QKNorm {
		case "head":
			for h := 0; h < c.NHead; h++ {
				kernels.RMSNorm(f.q[h*hd:(h+1)*hd], f.q[h*hd:(h+1)*hd], L.QNorm, c.NormEps)
			}
			for h := 0; h < c.NKVHead; h++ {
				kernels.RMSNorm(k[h*hd:(h+1)*hd], k[h*hd:(h+1)*hd], L.KNorm, c.NormEps)
			}
		case "full":
			kernels.RMSNorm(f.q, f.q, L.QNorm, c.NormEps)
			kernels.RMSNorm(k, k, L.KNorm, c.NormEps)
		}
		for h := 0; h < c.NHead; h++ {
			rope(f.q[h*hd:(h+1)*hd], f.cos, f.sin)
		}
		for h := 0; h < c.NKVHead; h++ {
			rope(k[h*hd:(h+1)*hd], f.cos, f.sin)
		}
		group := c.NHead / c.NKVHead
		scale := float32(1 / math.Sqrt(float64(hd)))
		base := l * f.cap * kvDim
		for h := 0; h < c.NHead; h++ {
			qh := f.q[h*hd : (h+1)*hd]
			ko := base + (h/group)*hd
			sc := f.scores[:pos+1]
			for t := range sc {
				sc[t] = kernels.Dot(qh, f.kc[ko+t*kvDim:ko+t*kvDim+hd]) * scale
			}
			kernels.Softmax(sc)
			out := f.attOut[h*hd : (h+1)*hd]
			clear(out)
			for t, w := range sc {
				kernels.Axpy(out, w, f.vc[ko+t*kvDim:ko+t*kvDim+hd])
			}
		}
		addStats(lc.AttnOut, f.attOut)
		L.Wo.MulVec(p, f.tmp, f.attOut)
		if L.Bo != nil {
			kernels.Add(f.tmp, L.Bo)
		}
		kernels.Add(f.x, f.tmp)

		kernels.RMSNorm(f.xn, f.x, L.FFNNorm, c.NormEps)
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
		if L.Router == nil {
			expert(L.Gate, L.Up, L.Down, 1, nil, lc.Down)
		} else {
			for e := range f.rl {
				f.rl[e] = L.Router.DotRow(e, f.xn)
			}
			f.router.Route(f.rl, f.ei, f.ew)
			for j, e := range f.ei {
				var in, dn *quant.Stats
				if lc.ExpFFN != nil {
					in, dn = lc.ExpFFN[e], lc.ExpDown[e]
				}
				expert(L.ExpGate[e], L.ExpUp[e], L.ExpDown[e], f.ew[j], in, dn)
			}
			if L.ShGate != nil {
				expert(L.ShGate, L.ShUp, L.ShDown, kernels.Sigmoid(L.ShGateInp.DotRow(0, f.xn)), nil, lc.ShDown)
			}
		}
		kernels.Add(f.x, f.tmp)
	}
	kernels.RMSNorm(f.xn, f.x, m.OutNorm, c.NormEps)
	if f.cal != nil {
		addStats(f.cal.Output, f.xn)
	}
	m.Output.MulVec(p, f.logits, f.xn)
	return f.logits
}
