package moe

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// FitIn improves the factors of in-projections (gate, up: W_e ≈ A_e B_g) by alternating
// least squares on the calibration objective
//
//	Σ_e ||(W_e - A_e B_g) X_e||² = Σ_e tr((W_e - A_e B_g) S_e (W_e - A_e B_g)ᵀ),
//
// where X_e are the calibration inputs routed to expert e and S_e = X_e X_eᵀ their Gram
// matrix (covs[e], n x n, damped by Damping of its mean diagonal). Build's factors are
// optimal for one covariance shared by all experts; the experts of a trained MoE see
// different inputs (the router sends each its own kind of token), so the shared basis
// that is best for what each expert actually reads is a different one. Each round:
//
//   - A step, per expert: A_e = W_e S_e Bᵀ (B S_e Bᵀ)⁻¹ (exact least squares, as RefitIn);
//   - B step, per group: B solves Σ_e A_eᵀA_e B S_e = Σ_e A_eᵀ W_e S_e, a symmetric
//     positive definite linear system in B (the gradient of the objective in B set to
//     zero), by conjugate gradients warm-started from the current B.
//
// Neither step can raise the objective (the A step is exact; conjugate gradients from
// the current B only lower the quadratic it minimises), so the objective falls
// monotonically. FitIn returns the objective after each A step (rounds+1 values, the
// first for the given bases) and overwrites bases and experts. Experts that saw no
// calibration token (covs[e] nil or zero) are weighted by a small multiple of the
// identity, so they still constrain their group's basis a little.
func FitIn(ws [][]float32, m, n int, bases [][]float32, groupOf []int, covs [][]float64, experts [][]float32, rounds, cgIters int) ([]float64, error) {
	ne := len(ws)
	if len(covs) != ne || len(groupOf) != ne || len(experts) != ne {
		return nil, fmt.Errorf("moe: FitIn: %d experts, %d covariances, %d groups, %d factors", ne, len(covs), len(groupOf), len(experts))
	}
	// Damped covariances; unseen experts get Damping of the mean of the others' scale.
	var scale float64
	seen := 0
	for _, c := range covs {
		if c != nil {
			if t := trace(c, n) / float64(n); t > 0 {
				scale += t
				seen++
			}
		}
	}
	if seen == 0 {
		return nil, fmt.Errorf("moe: FitIn: no expert saw a calibration token")
	}
	scale /= float64(seen)
	s := make([]*mat.Dense, ne)
	p := make([]*mat.Dense, ne) // W_e S_e, m x n
	c := make([]float64, ne)    // tr(W_e S_e W_eᵀ)
	w := make([]*mat.Dense, ne)
	for e := range ne {
		var d []float64
		var t float64
		if covs[e] != nil {
			t = trace(covs[e], n) / float64(n)
		}
		if t > 0 {
			d = append([]float64(nil), covs[e]...)
			for i := range n {
				d[i*n+i] += Damping * t
			}
		} else {
			d = make([]float64, n*n)
			for i := range n {
				d[i*n+i] = Damping * scale
			}
		}
		s[e] = mat.NewDense(n, n, d)
		w[e] = toDense(ws[e], m, n)
		p[e] = new(mat.Dense)
		p[e].Mul(w[e], s[e])
		c[e] = mat.Sum(elemMul(w[e], p[e]))
	}
	b := make([]*mat.Dense, len(bases))
	r := len(bases[0]) / n
	for g := range bases {
		b[g] = toDense(bases[g], r, n)
	}
	a := make([]*mat.Dense, ne)
	aStep := func() (float64, error) {
		var obj float64
		for e := range ne {
			bg := b[groupOf[e]]
			var q mat.Dense // S Bᵀ, n x r
			q.Mul(s[e], bg.T())
			var gm mat.Dense // B S Bᵀ
			gm.Mul(bg, &q)
			var rhs mat.Dense // W S Bᵀ, m x r
			rhs.Mul(p[e], bg.T())
			var err error
			if a[e], err = solveA(e, &gm, &rhs); err != nil {
				return 0, err
			}
			// At the least-squares A the objective is c - <A, W S Bᵀ>.
			obj += c[e] - mat.Sum(elemMul(a[e], &rhs))
		}
		return obj, nil
	}
	var objs []float64
	obj, err := aStep()
	if err != nil {
		return nil, err
	}
	objs = append(objs, obj)
	for range rounds {
		for g := range b {
			var members []int
			for e := range ne {
				if groupOf[e] == g {
					members = append(members, e)
				}
			}
			b[g] = solveBasis(b[g], members, a, s, p, cgIters)
		}
		if obj, err = aStep(); err != nil {
			return nil, err
		}
		objs = append(objs, obj)
	}
	for g := range b {
		bases[g] = fromDense(b[g])
	}
	for e := range ne {
		experts[e] = fromDense(a[e])
	}
	return objs, nil
}

// solveBasis runs preconditioned conjugate gradients on Σ_e M_e B S_e = Σ_e A_eᵀ P_e
// (M_e = A_eᵀ A_e) from b0, with the operator's diagonal as preconditioner, and returns
// the new B with orthonormal rows (its row space; the next A step absorbs the change of
// coordinates, so the product A B is unaffected and the system stays well scaled).
func solveBasis(b0 *mat.Dense, members []int, a, s, p []*mat.Dense, iters int) *mat.Dense {
	r, n := b0.Dims()
	ms := make([]*mat.Dense, len(members))
	rhs := mat.NewDense(r, n, nil)
	diag := mat.NewDense(r, n, nil)
	for k, e := range members {
		ms[k] = new(mat.Dense)
		ms[k].Mul(a[e].T(), a[e])
		var t mat.Dense
		t.Mul(a[e].T(), p[e])
		rhs.Add(rhs, &t)
		for i := range r {
			mi := ms[k].At(i, i)
			for j := range n {
				diag.Set(i, j, diag.At(i, j)+mi*s[e].At(j, j))
			}
		}
	}
	apply := func(dst, x *mat.Dense) {
		dst.Zero()
		var t, u mat.Dense
		for k, e := range members {
			t.Mul(ms[k], x)
			u.Mul(&t, s[e])
			dst.Add(dst, &u)
		}
	}
	x := mat.DenseCopyOf(b0)
	res := mat.NewDense(r, n, nil)
	apply(res, x)
	res.Sub(rhs, res)
	z := mat.NewDense(r, n, nil)
	z.DivElem(res, diag)
	dir := mat.DenseCopyOf(z)
	rz := mat.Sum(elemMul(res, z))
	q := mat.NewDense(r, n, nil)
	for range iters {
		if rz <= 0 {
			break
		}
		apply(q, dir)
		den := mat.Sum(elemMul(dir, q))
		if den <= 0 {
			break
		}
		alpha := rz / den
		var t mat.Dense
		t.Scale(alpha, dir)
		x.Add(x, &t)
		t.Scale(alpha, q)
		res.Sub(res, &t)
		z.DivElem(res, diag)
		rzNew := mat.Sum(elemMul(res, z))
		dir.Scale(rzNew/rz, dir)
		dir.Add(dir, z)
		rz = rzNew
	}
	// Orthonormal rows spanning the same space: Bᵀ = Q R, B' = Qᵀ.
	var qr mat.QR
	qr.Factorize(mat.DenseCopyOf(x.T()))
	var qm mat.Dense
	qr.QTo(&qm)
	return mat.DenseCopyOf(qm.Slice(0, n, 0, r).T())
}

// solveA is the least-squares A of expert e: A = rhs (B S Bᵀ)⁻¹ for gm = B S Bᵀ (r x r,
// symmetrised here) and rhs = W S Bᵀ (m x r), by Cholesky (FitIn's A step, RefitIn).
func solveA(e int, gm, rhs *mat.Dense) (*mat.Dense, error) {
	r, _ := gm.Dims()
	sym := mat.NewSymDense(r, nil)
	for i := range r {
		for j := i; j < r; j++ {
			sym.SetSym(i, j, (gm.At(i, j)+gm.At(j, i))/2)
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(sym) {
		return nil, fmt.Errorf("moe: expert %d: B S Bᵀ is not positive definite", e)
	}
	var at mat.Dense // Aᵀ = (B S Bᵀ)⁻¹ (W S Bᵀ)ᵀ
	if err := ch.SolveTo(&at, rhs.T()); err != nil {
		return nil, fmt.Errorf("moe: expert %d: %w", e, err)
	}
	return mat.DenseCopyOf(at.T()), nil
}

func elemMul(x, y mat.Matrix) *mat.Dense {
	var d mat.Dense
	d.MulElem(x, y)
	return &d
}

// ExpertFactors is the data-aware per-expert baseline: every expert factored alone at
// rank r by its own calibration covariance (covs[e]: for in-projections the Gram matrix
// of its inputs, n x n; for out-projections that of its hidden activations, m x m), the
// optimum of ||(W_e - A_e B_e) X_e||² (in) or ||(W_e - C_e D_e) H_e||² (out) with no
// sharing. ws are m x n (in) or n x m (out); bases[e] and experts[e] come back as Build's,
// with the fraction of the (whitened) spectrum kept over all experts.
func ExpertFactors(ws [][]float32, m, n int, in bool, covs [][]float64, r int) (bases, experts [][]float32, energy float64, err error) {
	bases, experts = make([][]float32, len(ws)), make([][]float32, len(ws))
	var kept, total float64
	for e, w := range ws {
		var f *LatentFactor
		var cov []float64
		dim := n // the covariance is of the expert's input: n (in) or m (out) wide
		if !in {
			dim = m
		}
		if covs != nil && covs[e] != nil && trace(covs[e], dim) > 0 {
			cov = covs[e]
		}
		if in {
			f, err = NewInFactor([][]float32{w}, m, n, 1, cov)
		} else {
			var cs [][]float64
			if cov != nil {
				cs = [][]float64{cov}
			}
			f, err = NewOutFactor([][]float32{w}, n, m, 1, cs)
		}
		if err != nil {
			return nil, nil, 0, fmt.Errorf("expert %d: %w", e, err)
		}
		b, x := f.Build(r)
		bases[e], experts[e] = b[0], x[0]
		for k, v := range f.vals[0] {
			total += v
			if k < r {
				kept += v
			}
		}
	}
	energy = 1
	if total > 0 {
		energy = kept / total
	}
	return bases, experts, energy, nil
}

// Gains returns, for k = 0 .. MaxRank-1, the fraction of the spectrum (over all groups)
// that the k-th direction adds: Energy(k+1) - Energy(k).
func (f *LatentFactor) Gains() []float64 {
	g := make([]float64, f.n)
	var total float64
	for _, v := range f.vals {
		for k, x := range v {
			g[k] += x
			total += x
		}
	}
	if total > 0 {
		for k := range g {
			g[k] /= total
		}
	}
	return g
}
