package engine

import (
	"fmt"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/moe"
)

// LatentFFN is a MoE layer's routed experts in MoLE's latent form (docs/algorithms.md
// §4, docs/format.md "MoLE"): expert e's gate projection is ExpGate[e] · GateIn[g],
// its up projection ExpUp[e] · UpIn[g] and its down projection DownOut[g] · ExpDown[e],
// where g = GroupOf[e] (one group: every expert shares one basis; as many groups as
// experts: the per-expert SVD baseline). A token computes z = B x once per group its
// experts use, each expert works in the latent space (r values instead of NEmbd),
// and the shared C is applied once to the weighted sum of the experts' latent outputs,
// which is exact because C is linear.
type LatentFFN struct {
	GroupOf          []int
	GateIn, UpIn     []*Matrix // per group: B [rank, NEmbd]
	DownOut          []*Matrix // per group: C [NEmbd, rank]
	ExpGate, ExpUp   []*Matrix // per expert: A [NFFExpert, rank]
	ExpDown          []*Matrix // per expert: D [rank, NFFExpert]
	Method           string    // "mole" or "svd-expert" (the baseline), from the metadata
	RankG, RankU, RD int
}

// latentNames are the GGUF names of a latent layer's tensors (docs/format.md).
const (
	latGateIn   = "blk.%d.ffn_gate_lat.weight"
	latGateExps = "blk.%d.ffn_gate_lat_exps.weight"
	latUpIn     = "blk.%d.ffn_up_lat.weight"
	latUpExps   = "blk.%d.ffn_up_lat_exps.weight"
	latDownOut  = "blk.%d.ffn_down_lat.weight"
	latDownExps = "blk.%d.ffn_down_lat_exps.weight"
)

// Params is the number of weights of the latent experts.
func (lf *LatentFFN) Params() int64 {
	var n int64
	for _, ms := range [][]*Matrix{lf.GateIn, lf.UpIn, lf.DownOut, lf.ExpGate, lf.ExpUp, lf.ExpDown} {
		for _, mm := range ms {
			n += int64(mm.Rows) * int64(mm.Cols)
		}
	}
	return n
}

// Matrices lists every matrix of the layer, for counting traffic and file sizes.
func (lf *LatentFFN) Matrices() (shared, perExpert []*Matrix) {
	shared = append(append(append(shared, lf.GateIn...), lf.UpIn...), lf.DownOut...)
	perExpert = append(append(append(perExpert, lf.ExpGate...), lf.ExpUp...), lf.ExpDown...)
	return shared, perExpert
}

// Expert returns the dense float32 weights expert e's latent factors stand for
// (gate and up m x n, down n x m): the reconstruction A B, C D the tests compare with.
func (lf *LatentFFN) Expert(e int) (gate, up, down []float32) {
	g := lf.GroupOf[e]
	return matMul(lf.ExpGate[e], lf.GateIn[g]), matMul(lf.ExpUp[e], lf.UpIn[g]), matMul(lf.DownOut[g], lf.ExpDown[e])
}

// matMul returns a·b in float64 accumulation (rows of a x cols of b, row-major).
func matMul(a, b *Matrix) []float32 {
	af, bf := dequantAll(a), dequantAll(b)
	out := make([]float32, a.Rows*b.Cols)
	acc := make([]float64, b.Cols)
	for i := 0; i < a.Rows; i++ {
		clear(acc)
		for k := 0; k < a.Cols; k++ {
			av := float64(af[i*a.Cols+k])
			for j, bv := range bf[k*b.Cols : (k+1)*b.Cols] {
				acc[j] += av * float64(bv)
			}
		}
		for j, v := range acc {
			out[i*b.Cols+j] = float32(v)
		}
	}
	return out
}

// latent binds layer l's latent tensors when the file has them (nil, nil otherwise).
func (b binder) latent(l int, c *Config) (*LatentFFN, error) {
	name := func(t string) string { return fmt.Sprintf(t, l) }
	tg, ok := b.lm.Tensor(name(latGateIn))
	if !ok {
		return nil, nil
	}
	// Groups and ranks come from the shapes (a basis is [groups, rank, n], or [rank, n]
	// for one group); the down rank from D's rows, which no row padding touches.
	lead := func(t *loader.Tensor) (groups, rows int) {
		if len(t.Shape) == 3 {
			return t.Shape[0], t.Shape[1]
		}
		return 1, t.Shape[0]
	}
	groups, rg := lead(tg)
	tu, ok := b.lm.Tensor(name(latUpIn))
	if !ok {
		return nil, fmt.Errorf("missing tensor %s", name(latUpIn))
	}
	_, ru := lead(tu)
	td, ok := b.lm.Tensor(name(latDownExps))
	if !ok || len(td.Shape) != 3 {
		return nil, fmt.Errorf("missing tensor %s [%d, rank, %d]", name(latDownExps), c.NExpert, c.NFFExpert)
	}
	rd := td.Shape[1]
	if groups < 1 || groups > c.NExpert {
		return nil, fmt.Errorf("tensor %s: %d groups for %d experts", name(latGateIn), groups, c.NExpert)
	}
	lf := &LatentFFN{Method: "mole", RankG: rg, RankU: ru, RD: rd}
	if groups == c.NExpert && groups > 1 {
		lf.Method = "svd-expert"
	}
	if v, ok := b.lm.GGUF.String("mole.mole.method"); ok {
		lf.Method = v
	}
	m, n := c.NFFExpert, c.NEmbd
	var err error
	step := func(dst *[]*Matrix, t string, count, rows, cols int) {
		if err == nil {
			*dst, err = b.experts(t, "", l, count, rows, cols)
		}
	}
	step(&lf.GateIn, latGateIn, groups, rg, n)
	step(&lf.UpIn, latUpIn, groups, ru, n)
	step(&lf.DownOut, latDownOut, groups, n, rd)
	step(&lf.ExpGate, latGateExps, c.NExpert, m, rg)
	step(&lf.ExpUp, latUpExps, c.NExpert, m, ru)
	step(&lf.ExpDown, latDownExps, c.NExpert, rd, m)
	if err != nil {
		return nil, err
	}
	lf.GroupOf = make([]int, c.NExpert)
	for e := range lf.GroupOf {
		lf.GroupOf[e] = moe.GroupOf(e, c.NExpert, groups)
	}
	return lf, nil
}

// hasLatent reports whether any layer is latent.
func (m *Model) hasLatent() bool {
	for l := range m.Layers {
		if m.Layers[l].Latent != nil {
			return true
		}
	}
	return false
}

// latUser is a token using a group (slot: its group slot) or an expert (slot: its
// expert slot in routing order).
type latUser struct{ item, slot int }

// latentScratch runs latent layers for up to n tokens at once (State.Forward: one;
// Batch: its items), with every buffer allocated once. One code path serves both, so
// a token's numbers never depend on the batch it is in: every product goes through
// rowDots (the kernels Forward's rows use, one vector's bits whatever the group) or, in
// a batch whose matrices have one, the GEMM kernel (latent_gemm.go), which equals the
// GEMV Forward uses bit for bit; and every sum runs in the token's own slot order.
type latentScratch struct {
	m    *Model
	maxN int
	K    int

	// Current call.
	lf       *LatentFFN
	n        int
	xn, out  []float32
	idx      []int32
	w        []float32
	rg, ru   int
	rd, mExp int
	zs       int // rg + ru: z of one (item, group slot), gate part then up part

	ngs    []int // group slots used by each item
	gsOf   []int // [item*K + slot]: the group slot of expert slot
	gOf    []int // [item*K + gslot]: the group of a group slot
	gUsers [][]latUser
	eUsers [][]latUser
	usedG  []int
	usedE  []int

	z, h, u, v, y, o []float32
	xq, zq, hq, yq   []byte
	qx, qz, qh, qy   int // bytes per encoding in each buffer (0: that phase is float)

	runA, runB, runD func(lo, hi int)

	gm latGemm // the GEMM path's scratch (batches only: see latent_gemm.go)
}

// newLatentScratch returns scratch for n tokens, or nil when m has no latent layer.
func (m *Model) newLatentScratch(n int) *latentScratch {
	if !m.hasLatent() {
		return nil
	}
	c := &m.Config
	K := c.NExpertUsed
	var zs, rd, groups int
	for l := range m.Layers {
		if lf := m.Layers[l].Latent; lf != nil {
			zs = max(zs, lf.GateIn[0].Rows+lf.UpIn[0].Rows)
			rd = max(rd, lf.ExpDown[0].Rows)
			groups = max(groups, len(lf.GateIn))
		}
	}
	mExp := c.NFFExpert
	s := &latentScratch{m: m, maxN: n, K: K,
		ngs: make([]int, n), gsOf: make([]int, n*K), gOf: make([]int, n*K),
		gUsers: make([][]latUser, groups), eUsers: make([][]latUser, c.NExpert),
		usedG: make([]int, 0, groups), usedE: make([]int, 0, c.NExpert),
		z: make([]float32, n*K*zs), h: make([]float32, n*K*mExp), u: make([]float32, n*K*mExp),
		v: make([]float32, n*K*rd), y: make([]float32, n*K*rd), o: make([]float32, n*K*c.NEmbd),
		xq: make([]byte, n*m.actBuf(c.NEmbd, 1)), zq: make([]byte, 2*n*K*m.actBuf(zs, 1)),
		hq: make([]byte, n*K*m.actBuf(mExp, 1)), yq: make([]byte, n*K*m.actBuf(rd, 1)),
	}
	for g := range s.gUsers {
		s.gUsers[g] = make([]latUser, 0, n*K)
	}
	for e := range s.eUsers {
		s.eUsers[e] = make([]latUser, 0, n)
	}
	s.runA, s.runB, s.runD = s.phaseA, s.phaseB, s.phaseD
	if n > 1 {
		s.gm = newLatGemm(m, n, K, c.NExpert, groups, max(zs, mExp, rd, c.NEmbd), max(zs, mExp, rd, c.NEmbd))
	}
	return s
}

// run computes the routed experts of n tokens (inputs xn, n*NEmbd) into out (n*NEmbd),
// each token's experts and weights at idx[i*K:], w[i*K:] as the router chose them.
func (s *latentScratch) run(p *Pool, lf *LatentFFN, n int, xn, out []float32, idx []int32, w []float32) {
	m, K := s.m, s.K
	ne := m.Config.NEmbd
	s.lf, s.n, s.xn, s.out, s.idx, s.w = lf, n, xn, out, idx, w
	s.rg, s.ru, s.rd, s.mExp = lf.GateIn[0].Rows, lf.UpIn[0].Rows, lf.ExpDown[0].Rows, lf.ExpGate[0].Rows
	s.zs = s.rg + s.ru
	for _, g := range s.usedG {
		s.gUsers[g] = s.gUsers[g][:0]
	}
	for _, e := range s.usedE {
		s.eUsers[e] = s.eUsers[e][:0]
	}
	s.usedG, s.usedE = s.usedG[:0], s.usedE[:0]
	for i := range n {
		ng := 0
		for k, e := range idx[i*K : (i+1)*K] {
			g := lf.GroupOf[e]
			gs := -1
			for t := range ng {
				if s.gOf[i*K+t] == g {
					gs = t
				}
			}
			if gs < 0 {
				gs = ng
				s.gOf[i*K+gs] = g
				ng++
				if len(s.gUsers[g]) == 0 {
					s.usedG = append(s.usedG, g)
				}
				s.gUsers[g] = append(s.gUsers[g], latUser{i, gs})
			}
			s.gsOf[i*K+k] = gs
			if len(s.eUsers[e]) == 0 {
				s.usedE = append(s.usedE, int(e))
			}
			s.eUsers[e] = append(s.eUsers[e], latUser{i, k})
		}
		s.ngs[i] = ng
	}
	if n > 1 {
		s.setBases()
	}

	// Phase A: z = B x for each (token, group).
	s.qx = 0
	if lf.GateIn[0].Quantized() || lf.UpIn[0].Quantized() {
		s.qx = m.actBytes(ne)
		for i := range n {
			m.quantAct(s.xq[i*s.qx:(i+1)*s.qx], xn[i*ne:(i+1)*ne])
		}
	}
	s.gm.aOn = s.qx > 0 && s.groupInputs(lf.GateIn, lf.UpIn, s.xOf)
	rows := len(s.usedG) * s.zs
	p.RunChunk(rows, latChunk(p, rows, ne*n), s.runA)

	// The latent inputs of A_gate and A_up, encoded when they are Quantized.
	s.qz = 0
	if lf.ExpGate[0].Quantized() || lf.ExpUp[0].Quantized() {
		s.qz = m.actBytes(max(s.rg, s.ru))
		for i := range n {
			for gs := range s.ngs[i] {
				z := s.z[(i*K+gs)*s.zs:]
				o := (i*K + gs) * 2 * s.qz
				m.quantAct(s.zq[o:o+m.actBytes(s.rg)], z[:s.rg])
				m.quantAct(s.zq[o+s.qz:o+s.qz+m.actBytes(s.ru)], z[s.rg:s.zs])
			}
		}
	}
	// Phases B and C, one pool run with an expert per work item: h = silu(A_gate z_gate)
	// * (A_up z_up) for each of the expert's (token, slot) users, then v = D h. An
	// expert's users need only its own h, so no barrier separates the two products
	// (before, each was a pool run of its own: four wake-ups per latent layer instead of
	// three).
	s.qh = 0
	if lf.ExpDown[0].Quantized() {
		s.qh = m.actBytes(s.mExp)
	}
	// Experts differ in users (in a batch), so they are handed out one at a time; work
	// too small to pay for a wake-up stays on the caller.
	chunk := 1
	if n*K*(s.mExp*(s.rg+s.ru)+s.rd*s.mExp) < 2*16384 {
		chunk = len(s.usedE)
	}
	p.RunChunk(len(s.usedE), chunk, s.runB)

	// y = Σ w v per (token, group) in the token's expert order.
	rd := s.rd
	for i := range n {
		for gs := range s.ngs[i] {
			y := s.y[(i*K+gs)*rd : (i*K+gs+1)*rd]
			clear(y)
			for k := range K {
				if s.gsOf[i*K+k] == gs {
					wk := w[i*K+k]
					for j, v := range s.v[(i*K+k)*rd : (i*K+k+1)*rd] {
						y[j] += wk * v
					}
				}
			}
		}
	}

	// Phase D: out = Σ over the token's groups of C y.
	s.qy = 0
	if lf.DownOut[0].Quantized() {
		s.qy = m.actBytes(rd)
		for i := range n {
			for gs := range s.ngs[i] {
				o := i*K + gs
				m.quantAct(s.yq[o*s.qy:(o+1)*s.qy], s.y[o*rd:(o+1)*rd])
			}
		}
	}
	s.gm.dOn = s.qy > 0 && s.groupInputs(lf.DownOut, nil, s.yOf)
	p.RunChunk(ne, latChunk(p, ne, rd*n*K), s.runD)
}

// latChunk is chunkFor with the cost of a row given in multiply-adds.
func latChunk(p *Pool, rows, cost int) int {
	c := (rows + 4*p.workers - 1) / (4 * p.workers)
	return max(c, 16384/max(cost, 1))
}

// dots runs row i of mm against each user's vector (vec gives it and, for a Quantized
// matrix, its encoding) and hands the results to put, dotGroup users per pass so a row
// is read once for several tokens.
func (s *latentScratch) dots(mm *Matrix, i int, users []latUser, vec func(u latUser) ([]float32, []byte), put func(u latUser, v float32)) {
	if len(users) == 1 && !mm.Quantized() {
		// A decode step's case: the row's own dot kernel, which the batched float
		// kernels rowDots uses match bit for bit, without their per-call setup.
		x, _ := vec(users[0])
		put(users[0], mm.DotRow(i, x))
		return
	}
	var xs [dotGroup][]float32
	var xqs [dotGroup][]byte
	var res [dotGroup]float32
	for u0 := 0; u0 < len(users); u0 += dotGroup {
		us := users[u0:min(u0+dotGroup, len(users))]
		for k, u := range us {
			xs[k], xqs[k] = vec(u)
		}
		rowDots(mm, i, xs[:len(us)], xqs[:len(us)], res[:len(us)])
		for k, u := range us {
			put(u, res[k])
		}
	}
}

func (s *latentScratch) phaseA(lo, hi int) {
	ne, K := s.m.Config.NEmbd, s.K
	if s.gm.aOn {
		s.phaseAGemm(lo, hi)
		return
	}
	if s.n == 1 { // one token: whole runs of rows of one matrix (see oneUser)
		var xq []byte
		if s.qx > 0 {
			xq = s.xq[:s.qx]
		}
		for r := lo; r < hi; {
			gi, j := r/s.zs, r%s.zs
			g, u := s.usedG[gi], s.gUsers[s.usedG[gi]][0]
			mm, row, end := s.lf.GateIn[g], j, min(s.rg, j+hi-r)
			if j >= s.rg {
				mm, row, end = s.lf.UpIn[g], j-s.rg, min(s.zs, j+hi-r)-s.rg
			}
			z := s.z[(u.item*K+u.slot)*s.zs+j:]
			latRows(mm, z[:end-row], row, s.xn[:ne], xq)
			r += end - row
		}
		return
	}
	for r := lo; r < hi; r++ {
		g := s.usedG[r/s.zs]
		j := r % s.zs
		mm, row := s.lf.GateIn[g], j
		if j >= s.rg {
			mm, row = s.lf.UpIn[g], j-s.rg
		}
		s.dots(mm, row, s.gUsers[g], func(u latUser) ([]float32, []byte) {
			var q []byte
			if s.qx > 0 {
				q = s.xq[u.item*s.qx : (u.item+1)*s.qx]
			}
			return s.xn[u.item*ne : (u.item+1)*ne], q
		}, func(u latUser, v float32) { s.z[(u.item*K+u.slot)*s.zs+j] = v })
	}
}

// phaseB runs experts usedE[lo:hi] for all their users: the gate and up rows into h and
// u, h = silu(h) * u (encoded for D when it is Quantized), then D's rows into v. Every
// product is rowDots over the same vectors as before, so the bits do not depend on how
// the experts are split among workers.
func (s *latentScratch) phaseB(lo, hi int) {
	K, mExp, rd := s.K, s.mExp, s.rd
	for r := lo; r < hi; r++ {
		e := s.usedE[r]
		users := s.eUsers[e]
		if len(users) == 1 {
			s.oneUser(e, users[0])
			continue
		}
		base := 0
		if s.n > 1 {
			base = s.gm.eBase[r]
		}
		if ag := s.lf.ExpGate[e]; latGemmOK(ag, len(users)) {
			s.gemmUsers(ag, users, base, s.zGate, s.hSlot)
		} else {
			for i := range mExp {
				s.dots(ag, i, users, s.zGate, func(u latUser, v float32) { s.h[(u.item*K+u.slot)*mExp+i] = v })
			}
		}
		if au := s.lf.ExpUp[e]; latGemmOK(au, len(users)) {
			s.gemmUsers(au, users, base, s.zUp, s.uSlot)
		} else {
			for i := range mExp {
				s.dots(au, i, users, s.zUp, func(u latUser, v float32) { s.u[(u.item*K+u.slot)*mExp+i] = v })
			}
		}
		for _, u := range users {
			o := u.item*K + u.slot
			h := s.h[o*mExp : (o+1)*mExp]
			kernels.SiLUMul(h, s.u[o*mExp:(o+1)*mExp])
			if s.qh > 0 {
				s.m.quantAct(s.hq[o*s.qh:(o+1)*s.qh], h)
			}
		}
		if d := s.lf.ExpDown[e]; latGemmOK(d, len(users)) {
			s.gemmUsers(d, users, base, s.hOf, s.vSlot)
			continue
		}
		for j := range rd {
			s.dots(s.lf.ExpDown[e], j, users, s.hOf, func(u latUser, v float32) { s.v[(u.item*K+u.slot)*rd+j] = v })
		}
	}
}

// oneUser runs expert e for its only user (every decode step) with whole row ranges:
// each float matrix through its own dot kernel, which the batched float kernels of
// rowDots match bit for bit, and each Quantized one through MulRowsQ over all its rows,
// which rounds every row as the single rows of rowDots do; it saves their per-row setup.
func (s *latentScratch) oneUser(e int, u latUser) {
	mExp, rd := s.mExp, s.rd
	o := u.item*s.K + u.slot
	zg, zgq := s.zGate(u)
	zu, zuq := s.zUp(u)
	h, uu := s.h[o*mExp:(o+1)*mExp], s.u[o*mExp:(o+1)*mExp]
	latRows(s.lf.ExpGate[e], h, 0, zg, zgq)
	latRows(s.lf.ExpUp[e], uu, 0, zu, zuq)
	kernels.SiLUMul(h, uu)
	var hq []byte
	if s.qh > 0 {
		hq = s.hq[o*s.qh : (o+1)*s.qh]
		s.m.quantAct(hq, h)
	}
	latRows(s.lf.ExpDown[e], s.v[o*rd:(o+1)*rd], 0, h, hq)
}

// latRows sets dst[k] = row lo+k of mm · x for k < len(dst) (xq: x encoded, for a
// Quantized mm).
func latRows(mm *Matrix, dst []float32, lo int, x []float32, xq []byte) {
	if mm.Quantized() {
		mm.MulRowsQ(dst, lo, lo+len(dst), xq)
		return
	}
	for k := range dst {
		dst[k] = mm.DotRow(lo+k, x)
	}
}

// zGate and zUp give a user's latent input of A_gate and A_up (and its encoding), hOf
// its hidden vector for D.
func (s *latentScratch) zGate(u latUser) ([]float32, []byte) { return s.zPart(u, 0, 0, s.rg) }
func (s *latentScratch) zUp(u latUser) ([]float32, []byte)   { return s.zPart(u, 1, s.rg, s.ru) }

func (s *latentScratch) zPart(u latUser, part, off, n int) ([]float32, []byte) {
	K := s.K
	gs := s.gsOf[u.item*K+u.slot]
	z := s.z[(u.item*K+gs)*s.zs+off : (u.item*K+gs)*s.zs+off+n]
	var q []byte
	if s.qz > 0 {
		o := (u.item*K+gs)*2*s.qz + part*s.qz
		q = s.zq[o : o+s.qz]
	}
	return z, q
}

func (s *latentScratch) hOf(u latUser) ([]float32, []byte) {
	o := u.item*s.K + u.slot
	var q []byte
	if s.qh > 0 {
		q = s.hq[o*s.qh : (o+1)*s.qh]
	}
	return s.h[o*s.mExp : (o+1)*s.mExp], q
}

func (s *latentScratch) phaseD(lo, hi int) {
	K, rd, ne := s.K, s.rd, s.m.Config.NEmbd
	if s.gm.dOn {
		s.phaseDGemm(lo, hi)
		return
	}
	if s.n == 1 { // one token: rows lo..hi of each group's C at once (see oneUser)
		for _, g := range s.usedG {
			o := s.gUsers[g][0].slot // item 0
			var yq []byte
			if s.qy > 0 {
				yq = s.yq[o*s.qy : (o+1)*s.qy]
			}
			latRows(s.lf.DownOut[g], s.o[o*ne+lo:o*ne+hi], lo, s.y[o*rd:(o+1)*rd], yq)
		}
		for i := lo; i < hi; i++ {
			var sum float32
			for gs := range s.ngs[0] {
				sum += s.o[gs*ne+i]
			}
			s.out[i] = sum
		}
		return
	}
	for i := lo; i < hi; i++ {
		for _, g := range s.usedG {
			s.dots(s.lf.DownOut[g], i, s.gUsers[g], func(u latUser) ([]float32, []byte) {
				o := u.item*K + u.slot
				var q []byte
				if s.qy > 0 {
					q = s.yq[o*s.qy : (o+1)*s.qy]
				}
				return s.y[o*rd : (o+1)*rd], q
			}, func(u latUser, v float32) { s.o[(u.item*K+u.slot)*ne+i] = v })
		}
		for it := range s.n {
			var sum float32
			for gs := range s.ngs[it] {
				sum += s.o[(it*K+gs)*ne+i]
			}
			s.out[it*ne+i] = sum
		}
	}
}

// latentFFN is State.Forward's FFN for a latent layer: route, then run the experts.
func (s *State) latentFFN(p *Pool, L *Layer, l int) {
	for e := range s.routerLogits {
		s.routerLogits[e] = L.Router.DotRow(e, s.xn)
	}
	s.router.Route(s.routerLogits, s.expIdx, s.expW)
	if s.trace != nil {
		s.trace(l, s.expIdx, s.expW)
	}
	s.lat.run(p, L.Latent, 1, s.xn, s.tmp, s.expIdx, s.expW)
}

// latentFFN is Batch.Forward's FFN for a latent layer.
func (b *Batch) latentFFN(p *Pool, L *Layer, l int) {
	c := &b.m.Config
	ne, K := c.NEmbd, c.NExpertUsed
	for i, it := range b.items {
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
	}
	b.lat.run(p, L.Latent, len(b.items), b.xn, b.tmp, b.expIdx, b.expW)
}
