package engine

import (
	"math"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/quant"
)

// Block-at-once calibration (calibRun.layer): every calibration token goes through a
// block together, so each weight row is read once per block for all the tokens that
// use it (a token-by-token pass reads every expert matrix once per routed token: for
// bench-moe's F32 copy about 70 MB per token and block). Each token's numbers are the
// bits calibForward.block computes: the products go through rowDots (the kernels of
// MulVec's rows, one vector's bits whatever the group), and every sum and every
// Stats.Add runs in the token-by-token pass's order (tokens in order within each
// statistic; a token's experts in routing order). TestCalibBlockMatchesTokenPass
// checks it.

// batchMul sets outs[u][i] = row i of mm · xs[u] for every user u, reading each row
// once for dotGroup users, in parallel over rows on p. mm is a float matrix (the
// calibration runs on float32 copies).
func batchMul(p *Pool, mm *Matrix, xs, outs [][]float32) {
	if len(xs) == 0 {
		return
	}
	chunk := max(1, (mm.Rows+4*p.workers-1)/(4*p.workers))
	p.RunChunk(mm.Rows, chunk, func(lo, hi int) {
		var res [dotGroup]float32
		for i := lo; i < hi; i++ {
			for u0 := 0; u0 < len(xs); u0 += dotGroup {
				u1 := min(u0+dotGroup, len(xs))
				rowDots(mm, i, xs[u0:u1], nil, res[:u1-u0])
				for k := range u1 - u0 {
					outs[u0+k][i] = res[k]
				}
			}
		}
	})
}

// addBatch adds xs to s when s is not nil.
func addBatch(s *quant.Stats, xs [][]float32) {
	if s != nil {
		s.AddBatch(xs)
	}
}

// views returns the slices buf[idx[k]*w : idx[k]*w+n] for each k.
func views(buf []float32, idx []int, w, n int) [][]float32 {
	out := make([][]float32, len(idx))
	for k, i := range idx {
		out[k] = buf[i*w : i*w+n]
	}
	return out
}

// layerAll runs every calibration token through block L (float32 weights) at once.
func (r *calibRun) layerAll(L *Layer, lc *LayerCalib) {
	f, c, p := r.f, r.f.c, r.f.pool
	T, ne := r.tokens, c.NEmbd
	hd, qDim, kvDim := c.HeadDim, c.NHead*c.HeadDim, c.NKVHead*c.HeadDim
	all := make([]int, T)
	for t := range all {
		all[t] = t
	}
	// pos[t] is token t's position in its window, start[t] its window's first token.
	pos, start := make([]int, T), make([]int, T)
	t := 0
	for _, seq := range r.windows {
		for i := range seq {
			pos[t], start[t] = i, t-i
			t++
		}
	}

	// Attention.
	xn := make([]float32, T*ne)
	for t := range T {
		kernels.RMSNorm(xn[t*ne:(t+1)*ne], r.x[t*ne:(t+1)*ne], L.AttnNorm, c.NormEps)
	}
	xs := views(xn, all, ne, ne)
	addBatch(lc.Attn, xs)
	q, k, v := make([]float32, T*qDim), make([]float32, T*kvDim), make([]float32, T*kvDim)
	batchMul(p, L.Wq, xs, views(q, all, qDim, qDim))
	batchMul(p, L.Wk, xs, views(k, all, kvDim, kvDim))
	batchMul(p, L.Wv, xs, views(v, all, kvDim, kvDim))
	for t := range T {
		qt, kt, vt := q[t*qDim:(t+1)*qDim], k[t*kvDim:(t+1)*kvDim], v[t*kvDim:(t+1)*kvDim]
		kernels.RoPEAngles(f.cos, f.sin, f.inv, pos[t])
		c.qkvTail(L, qt, kt, vt, f.cos, f.sin)
	}
	att := make([]float32, T*qDim)
	group := c.NHead / c.NKVHead
	scale := float32(1 / math.Sqrt(float64(hd)))
	p.RunChunk(T, max(1, T/(4*p.workers)), func(lo, hi int) {
		scores := make([]float32, f.cap)
		for t := lo; t < hi; t++ {
			kc, vc := k[start[t]*kvDim:], v[start[t]*kvDim:]
			for h := 0; h < c.NHead; h++ {
				qh := q[t*qDim+h*hd : t*qDim+(h+1)*hd]
				ko := (h / group) * hd
				sc := scores[:pos[t]+1]
				for s := range sc {
					sc[s] = kernels.Dot(qh, kc[ko+s*kvDim:ko+s*kvDim+hd]) * scale
				}
				kernels.Softmax(sc)
				out := att[t*qDim+h*hd : t*qDim+(h+1)*hd]
				clear(out)
				for s, w := range sc {
					kernels.Axpy(out, w, vc[ko+s*kvDim:ko+s*kvDim+hd])
				}
			}
		}
	})
	o := make([]float32, T*ne)
	atts := views(att, all, qDim, qDim)
	addBatch(lc.AttnOut, atts)
	batchMul(p, L.Wo, atts, views(o, all, ne, ne))
	for t := range T {
		ot := o[t*ne : (t+1)*ne]
		if L.Bo != nil {
			kernels.Add(ot, L.Bo)
		}
		kernels.Add(r.x[t*ne:(t+1)*ne], ot)
	}

	// FFN input.
	for t := range T {
		kernels.RMSNorm(xn[t*ne:(t+1)*ne], r.x[t*ne:(t+1)*ne], L.FFNNorm, c.NormEps)
	}
	addBatch(lc.FFN, xs)
	tmp := o // reused: each token's FFN output before it joins the residual
	clear(tmp)
	switch {
	case L.Router == nil:
		y := r.denseAll(L.Gate, L.Up, L.Down, xn, all, lc.Down)
		for t := range T {
			kernels.Axpy(tmp[t*ne:(t+1)*ne], 1, y[t*ne:(t+1)*ne])
		}
	default:
		K := c.NExpertUsed
		ei, ew := make([]int32, T*K), make([]float32, T*K)
		for t := range T {
			for e := range f.rl {
				f.rl[e] = L.Router.DotRow(e, xn[t*ne:(t+1)*ne])
			}
			f.router.Route(f.rl, ei[t*K:(t+1)*K], ew[t*K:(t+1)*K])
		}
		if L.Latent != nil {
			r.latentAll(L.Latent, lc, xn, ei, ew, tmp)
		} else {
			r.expertsAll(L, lc, xn, ei, ew, tmp)
		}
		if L.ShGate != nil {
			y := r.denseAll(L.ShGate, L.ShUp, L.ShDown, xn, all, lc.ShDown)
			for t := range T {
				w := kernels.Sigmoid(L.ShGateInp.DotRow(0, xn[t*ne:(t+1)*ne]))
				kernels.Axpy(tmp[t*ne:(t+1)*ne], w, y[t*ne:(t+1)*ne])
			}
		}
	}
	for t := range T {
		kernels.Add(r.x[t*ne:(t+1)*ne], tmp[t*ne:(t+1)*ne])
	}
}

// denseAll runs one SwiGLU FFN (gate, up, down) on the tokens idx of xn, adding the
// down inputs to st in order, and returns the outputs ([len(idx)][NEmbd]).
func (r *calibRun) denseAll(g, u, d *Matrix, xn []float32, idx []int, st *quant.Stats) []float32 {
	p, ne, m := r.f.pool, r.f.c.NEmbd, g.Rows
	n := len(idx)
	seq := make([]int, n)
	for i := range seq {
		seq[i] = i
	}
	h, uu := make([]float32, n*m), make([]float32, n*m)
	xs := views(xn, idx, ne, ne)
	batchMul(p, g, xs, views(h, seq, m, m))
	batchMul(p, u, xs, views(uu, seq, m, m))
	for i := range n {
		kernels.SiLUMul(h[i*m:(i+1)*m], uu[i*m:(i+1)*m])
	}
	hs := views(h, seq, m, m)
	addBatch(st, hs)
	y := make([]float32, n*ne)
	batchMul(p, d, hs, views(y, seq, ne, ne))
	return y
}

// expertUsers lists, per expert, the (token*K + slot) indices routed to it, in token
// order.
func expertUsers(ei []int32, nExpert int) [][]int {
	users := make([][]int, nExpert)
	for i, e := range ei {
		users[e] = append(users[e], i)
	}
	return users
}

// parallelExperts runs f(e) for every expert on p; each expert's statistics are its
// own, so their Adds keep the token order whichever worker runs them.
func parallelExperts(p *Pool, n int, f func(e int)) {
	p.RunChunk(n, 1, func(lo, hi int) {
		for e := lo; e < hi; e++ {
			f(e)
		}
	})
}

// expertsAll adds the routed experts' outputs of every token to tmp.
func (r *calibRun) expertsAll(L *Layer, lc *LayerCalib, xn []float32, ei []int32, ew []float32, tmp []float32) {
	p, c := r.f.pool, r.f.c
	T, ne, K, m := r.tokens, c.NEmbd, c.NExpertUsed, c.NFFExpert
	users := expertUsers(ei, len(L.ExpGate))
	h, u := make([]float32, T*K*m), make([]float32, T*K*m)
	tokOf := func(us []int) []int {
		out := make([]int, len(us))
		for k, i := range us {
			out[k] = i / K
		}
		return out
	}
	for e, us := range users {
		xs := views(xn, tokOf(us), ne, ne)
		batchMul(p, L.ExpGate[e], xs, views(h, us, m, m))
		batchMul(p, L.ExpUp[e], xs, views(u, us, m, m))
		for _, i := range us {
			kernels.SiLUMul(h[i*m:(i+1)*m], u[i*m:(i+1)*m])
		}
	}
	if lc.ExpFFN != nil {
		parallelExperts(p, len(users), func(e int) {
			lc.ExpFFN[e].AddBatch(views(xn, tokOf(users[e]), ne, ne))
			lc.ExpDown[e].AddBatch(views(h, users[e], m, m))
		})
	}
	y := make([]float32, T*K*ne)
	for e, us := range users {
		batchMul(p, L.ExpDown[e], views(h, us, m, m), views(y, us, ne, ne))
	}
	for i := range T * K {
		t := i / K
		kernels.Axpy(tmp[t*ne:(t+1)*ne], ew[i], y[i*ne:(i+1)*ne])
	}
}

// latentAll adds a latent layer's routed experts of every token to tmp, as
// calibForward.latent does for one token.
func (r *calibRun) latentAll(lf *LatentFFN, lc *LayerCalib, xn []float32, ei []int32, ew []float32, tmp []float32) {
	p, c := r.f.pool, r.f.c
	T, ne, K, m := r.tokens, c.NEmbd, c.NExpertUsed, c.NFFExpert
	rg, ru, rd := lf.GateIn[0].Rows, lf.UpIn[0].Rows, lf.ExpDown[0].Rows
	// Group slots: token t's gs-th distinct group (in routing order) is slot t*K+gs.
	gsOf := make([]int, T*K) // expert slot -> group slot index
	ngs := make([]int, T)
	gOf := make([]int, T*K)
	groupUsers := make([][]int, len(lf.GateIn))
	for t := range T {
		ng := 0
		for j := range K {
			g := lf.GroupOf[ei[t*K+j]]
			gs := -1
			for s := range ng {
				if gOf[t*K+s] == g {
					gs = s
				}
			}
			if gs < 0 {
				gs, ng = ng, ng+1
				gOf[t*K+gs] = g
				groupUsers[g] = append(groupUsers[g], t*K+gs)
			}
			gsOf[t*K+j] = t*K + gs
		}
		ngs[t] = ng
	}
	zg, zu := make([]float32, T*K*rg), make([]float32, T*K*ru)
	for g, us := range groupUsers {
		toks := make([]int, len(us))
		for k, i := range us {
			toks[k] = i / K
		}
		xs := views(xn, toks, ne, ne)
		if len(lf.GateIn) > 1 {
			addBatch(lc.LatIn[g], xs)
		}
		batchMul(p, lf.GateIn[g], xs, views(zg, us, rg, rg))
		batchMul(p, lf.UpIn[g], xs, views(zu, us, ru, ru))
	}
	users := expertUsers(ei, len(lf.ExpGate))
	h, u := make([]float32, T*K*m), make([]float32, T*K*m)
	for e, us := range users {
		zs := make([]int, len(us))
		for k, i := range us {
			zs[k] = gsOf[i]
		}
		batchMul(p, lf.ExpGate[e], views(zg, zs, rg, rg), views(h, us, m, m))
		batchMul(p, lf.ExpUp[e], views(zu, zs, ru, ru), views(u, us, m, m))
		for _, i := range us {
			kernels.SiLUMul(h[i*m:(i+1)*m], u[i*m:(i+1)*m])
		}
	}
	if lc.LatZGate != nil {
		parallelExperts(p, len(users), func(e int) {
			zs := make([]int, len(users[e]))
			for k, i := range users[e] {
				zs[k] = gsOf[i]
			}
			lc.LatZGate[e].AddBatch(views(zg, zs, rg, rg))
			lc.LatZUp[e].AddBatch(views(zu, zs, ru, ru))
			lc.ExpDown[e].AddBatch(views(h, users[e], m, m))
		})
	}
	v := make([]float32, T*K*rd)
	for e, us := range users {
		batchMul(p, lf.ExpDown[e], views(h, us, m, m), views(v, us, rd, rd))
	}
	ly := make([]float32, T*K*rd)
	for i := range T * K {
		gs := gsOf[i]
		kernels.Axpy(ly[gs*rd:(gs+1)*rd], ew[i], v[i*rd:(i+1)*rd])
	}
	co := make([]float32, T*K*ne)
	for g, us := range groupUsers {
		ys := views(ly, us, rd, rd)
		if lc.LatY != nil {
			lc.LatY[g].AddBatch(ys)
		}
		batchMul(p, lf.DownOut[g], ys, views(co, us, ne, ne))
	}
	for t := range T {
		for gs := range ngs[t] {
			i := t*K + gs
			kernels.Add(tmp[t*ne:(t+1)*ne], co[i*ne:(i+1)*ne])
		}
	}
}
