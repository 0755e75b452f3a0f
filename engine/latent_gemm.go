package engine

// The GEMM path of a latent layer in a Batch.
//
// rowDots computes a Quantized matrix's products one row and one token at a time, which
// for MoLE's short latent rows (rank values) is mostly per-call setup. When a matrix has
// a GEMM kernel (Matrix.gemm), the products of all the users of a basis or an expert go
// through Matrix.gemmRows instead, as a Batch's dense experts do: each weight strip is
// read once for all those tokens, and each output is bit-identical to the GEMV Forward
// uses (MulRowsQ), so a token's numbers still do not depend on its batch.
//
// Every user of a product gets an ordinal: phase B numbers the (token, expert slot)
// users expert after expert, phases A and D the (token, group slot) users group after
// group. A product's planar inputs and token-major outputs sit at its users' ordinals in
// buffers sized for n*K users, so the products of different experts (or groups) never
// share memory and the pool's workers need no scratch of their own.

// latGemm is the scratch of the GEMM path.
type latGemm struct {
	eBase []int // per usedE index: the ordinal of the expert's first user
	gBase []int // per usedG index: the ordinal of the group's first user

	// Phases A and D: each used group's packed inputs, when the current phase's
	// matrices all have a GEMM path (aOn, dOn).
	gIn      []gemmIn
	aOn, dOn bool

	qMax  int // bytes per user in q (the largest encoding of a latent product's input)
	q     []byte
	x8    []int8 // int8 inputs of mole's types, padded width per user (pcMax)
	pcMax int
	xs    []float32

	oMax int // floats per user in out (the largest product's row count)
	out  []float32
}

// newLatGemm sizes the GEMM scratch for n tokens of K experts, whose products take at
// most inMax values and give at most outMax.
func newLatGemm(m *Model, n, K, experts, groups, inMax, outMax int) latGemm {
	g := latGemm{eBase: make([]int, 0, experts), gBase: make([]int, 0, groups), gIn: make([]gemmIn, 0, groups)}
	g.qMax = m.actBytes(inMax)
	g.q = make([]byte, n*K*g.qMax)
	if m.act == actI8 {
		g.pcMax = padCols(inMax)
		g.x8 = make([]int8, n*K*g.pcMax)
	}
	g.xs = make([]float32, n*K)
	g.oMax = outMax
	g.out = make([]float32, n*K*outMax)
	return g
}

// latGemmOK reports whether the users of mm go through its GEMM kernel.
func latGemmOK(mm *Matrix, users int) bool {
	return users > 1 && mm.Quantized() && mm.gemm()
}

// gemmIn packs the encoded inputs of users (vec gives each one's encoding) at ordinal
// base into the form mm.gemmRows takes.
func (g *latGemm) gemmIn(mm *Matrix, users []latUser, base int, vec func(u latUser) ([]float32, []byte)) gemmIn {
	n := len(users)
	qn := mm.actBytes(mm.Cols)
	if p := mm.mole; p != nil {
		x8, xs := g.x8[base*g.pcMax:base*g.pcMax+n*p.pc], g.xs[base:base+n]
		for k, u := range users {
			_, q := vec(u)
			xs[k] = packI8(x8[k*p.pc:(k+1)*p.pc], q)
		}
		return gemmIn{x8: x8, pc: p.pc, xs: xs}
	}
	q := g.q[base*g.qMax : base*g.qMax+n*qn]
	for k, u := range users {
		_, e := vec(u)
		copy(q[k*qn:(k+1)*qn], e[:qn])
	}
	return gemmIn{q: q, qn: qn}
}

// gemmUsers sets dst(u) = mm · vec(u) (all mm.Rows rows) for every user, the users at
// ordinals base.. of the scratch.
func (s *latentScratch) gemmUsers(mm *Matrix, users []latUser, base int, vec func(u latUser) ([]float32, []byte), dst func(u latUser) []float32) {
	g := &s.gm
	in := g.gemmIn(mm, users, base, vec)
	n, rows := len(users), mm.Rows
	out := g.out[base*g.oMax : base*g.oMax+n*rows]
	mm.gemmRows(out, 0, rows, in, n)
	for k, u := range users {
		copy(dst(u), out[k*rows:(k+1)*rows])
	}
}

// setBases numbers the users of the current call: experts' users for phase B, groups'
// users for phases A and D.
func (s *latentScratch) setBases() {
	g := &s.gm
	g.eBase, g.gBase = g.eBase[:0], g.gBase[:0]
	o := 0
	for _, e := range s.usedE {
		g.eBase = append(g.eBase, o)
		o += len(s.eUsers[e])
	}
	o = 0
	for _, gr := range s.usedG {
		g.gBase = append(g.gBase, o)
		o += len(s.gUsers[gr])
	}
}

// hSlot, uSlot and vSlot are the outputs of a user's gate, up and down products.
func (s *latentScratch) hSlot(u latUser) []float32 {
	o := u.item*s.K + u.slot
	return s.h[o*s.mExp : (o+1)*s.mExp]
}

func (s *latentScratch) uSlot(u latUser) []float32 {
	o := u.item*s.K + u.slot
	return s.u[o*s.mExp : (o+1)*s.mExp]
}

func (s *latentScratch) vSlot(u latUser) []float32 {
	o := u.item*s.K + u.slot
	return s.v[o*s.rd : (o+1)*s.rd]
}

// groupInputs packs the inputs of every used group's users (vec gives each one's
// encoding) for the GEMM of a[g] (and b[g], which must take the same input), and reports
// whether the phase runs on the GEMM path: a batch whose groups' matrices all have one.
func (s *latentScratch) groupInputs(a, b []*Matrix, vec func(u latUser) ([]float32, []byte)) bool {
	g := &s.gm
	if s.n == 1 {
		return false
	}
	for _, gr := range s.usedG {
		if !latGemmOK(a[gr], 2) {
			return false
		}
		if b != nil && (!latGemmOK(b[gr], 2) || (a[gr].mole == nil) != (b[gr].mole == nil) || a[gr].Cols != b[gr].Cols) {
			return false
		}
	}
	g.gIn = g.gIn[:0]
	for gi, gr := range s.usedG {
		g.gIn = append(g.gIn, g.gemmIn(a[gr], s.gUsers[gr], g.gBase[gi], vec))
	}
	return true
}

// xOf and yOf are a group user's encoded input of B (its token's) and of C.
func (s *latentScratch) xOf(u latUser) ([]float32, []byte) {
	return nil, s.xq[u.item*s.qx : (u.item+1)*s.qx]
}

func (s *latentScratch) yOf(u latUser) ([]float32, []byte) {
	o := u.item*s.K + u.slot
	return nil, s.yq[o*s.qy : (o+1)*s.qy]
}

// phaseAGemm is phaseA on the GEMM path: rows lo..hi-1 of the used groups' stacked
// [B_gate; B_up] for all of each group's users at once.
func (s *latentScratch) phaseAGemm(lo, hi int) {
	g := &s.gm
	for r := lo; r < hi; {
		gi, j := r/s.zs, r%s.zs
		gr := s.usedG[gi]
		mm, row, end := s.lf.GateIn[gr], j, min(s.rg, j+hi-r)
		if j >= s.rg {
			mm, row, end = s.lf.UpIn[gr], j-s.rg, min(s.zs, j+hi-r)-s.rg
		}
		users := s.gUsers[gr]
		nr, ng := end-row, len(users)
		// Rows j.. of group gi: inside the group's ordinals, apart from other chunks.
		out := g.out[g.gBase[gi]*g.oMax+j*ng:][:nr*ng]
		mm.gemmRows(out, row, end, g.gIn[gi], ng)
		for t, u := range users {
			copy(s.z[(u.item*s.K+u.slot)*s.zs+j:][:nr], out[t*nr:(t+1)*nr])
		}
		r += nr
	}
}

// phaseDGemm is phaseD on the GEMM path: rows lo..hi-1 of every used group's C for all
// its users, then each token's sum over its groups in slot order, as phaseD sums.
func (s *latentScratch) phaseDGemm(lo, hi int) {
	g := &s.gm
	K, ne, nr := s.K, s.m.Config.NEmbd, hi-lo
	for gi, gr := range s.usedG {
		users := s.gUsers[gr]
		ng := len(users)
		out := g.out[g.gBase[gi]*g.oMax+lo*ng:][:nr*ng]
		s.lf.DownOut[gr].gemmRows(out, lo, hi, g.gIn[gi], ng)
		for t, u := range users {
			copy(s.o[(u.item*K+u.slot)*ne+lo:][:nr], out[t*nr:(t+1)*nr])
		}
	}
	for it := range s.n {
		for i := lo; i < hi; i++ {
			var sum float32
			for gs := range s.ngs[it] {
				sum += s.o[(it*K+gs)*ne+i]
			}
			s.out[it*ne+i] = sum
		}
	}
}
