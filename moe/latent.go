package moe

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// MoLE (Mixture of Latent Experts, arXiv 2503.23100; docs/algorithms.md §4) factors the
// experts of a layer through a subspace they share:
//
//   - projections that read the token (gate, up; W_e is m x n): W_e ≈ A_e B with one B
//     (r x n) for all experts of a group and a small A_e (m x r), so B x is computed once
//     per token however many experts run;
//   - projections that write the token (down; W_e is n x m): W_e ≈ C D_e with one C
//     (n x r) and a small D_e (r x m), so C is applied once to the weighted sum of the
//     experts' latent outputs.
//
// The factorisations are the Eckart–Young optimum of the stacked experts, found through
// the n x n Gram matrix (never the N*m x n stack itself, so an OLMoE-sized layer fits in
// memory): its top-r eigenvectors are the shared right (left, for down) singular
// vectors. With calibration statistics the error is measured on real activations
// instead of in Frobenius norm (see NewInFactor, NewOutFactor).

// LatentFactor is the spectrum of one projection of one layer, from which factors of
// any rank can be built.
type LatentFactor struct {
	in     bool // gate/up (W_e ≈ A_e B) rather than down (W_e ≈ C D_e)
	m, n   int  // each expert is m x n (in) or n x m (out); n is the model width
	ws     [][]float32
	groups [][]int // experts of each group
	vals   [][]float64
	vecs   []*mat.Dense // per group: n x n eigenvectors, columns by descending value
	sqrt   *mat.Dense   // in, whitened: S^{1/2} and S^{-1/2}
	noVecs bool         // only the spectrum (Energy, RankFor, Gains), no Build
	isqrt  *mat.Dense
}

// GroupOf assigns expert e of nExpert to one of groups contiguous groups.
func GroupOf(e, nExpert, groups int) int {
	if groups <= 1 {
		return 0
	}
	return e * groups / nExpert
}

func groupLists(nExpert, groups int) [][]int {
	groups = max(1, min(groups, nExpert))
	out := make([][]int, groups)
	for e := range nExpert {
		g := GroupOf(e, nExpert, groups)
		out[g] = append(out[g], e)
	}
	return out
}

// Damping is the ridge added to calibration covariances, as a fraction of their mean
// diagonal: directions the calibration text never excites still keep some weight, so a
// basis fitted to a short text does not throw away what other text needs, and S^{-1/2}
// stays bounded.
var Damping = 0.01

// NewInFactor prepares W_e ≈ A_e B for the gate or up projections ws (each m x n,
// row-major) of nExpert experts sharing a basis within groups groups. cov, when not
// nil, is the n x n covariance (Gram matrix) of the projection's inputs over
// calibration text: the factors then minimise Σ_e ||(W_e - A_e B) X||² over those
// inputs X, which is the Frobenius problem for W_e S^{1/2} (S = X Xᵀ, damped): B =
// V_rᵀ S^{-1/2} and A_e = W_e S^{1/2} V_r for the top eigenvectors V_r of
// Σ S^{1/2} W_eᵀ W_e S^{1/2}.
func NewInFactor(ws [][]float32, m, n, groups int, cov []float64) (*LatentFactor, error) {
	return newInFactor(ws, m, n, groups, cov, false)
}

// NewInSpectrum is NewInFactor for the spectrum only (several times cheaper: no
// eigenvectors); Build must not be called on it.
func NewInSpectrum(ws [][]float32, m, n, groups int, cov []float64) (*LatentFactor, error) {
	return newInFactor(ws, m, n, groups, cov, true)
}

// NewOutSpectrum is NewOutFactor for the spectrum only; Build must not be called on it.
func NewOutSpectrum(ws [][]float32, n, m, groups int, covs [][]float64) (*LatentFactor, error) {
	return newOutFactor(ws, n, m, groups, covs, true)
}

func newInFactor(ws [][]float32, m, n, groups int, cov []float64, noVecs bool) (*LatentFactor, error) {
	f := &LatentFactor{in: true, m: m, n: n, ws: ws, groups: groupLists(len(ws), groups), noVecs: noVecs}
	if cov != nil {
		var err error
		if f.sqrt, f.isqrt, err = sqrtSym(cov, n); err != nil {
			return nil, err
		}
	}
	for _, g := range f.groups {
		gram := mat.NewSymDense(n, nil)
		for _, e := range g {
			w := toDense(ws[e], m, n)
			if f.sqrt != nil {
				var t mat.Dense
				t.Mul(w, f.sqrt)
				w = &t
			}
			gram.SymRankK(gram, 1, w.T()) // += Wᵀ W
		}
		if err := f.addEigen(gram); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// NewOutFactor prepares W_e ≈ C D_e for down projections ws (each n x m). covs, when not
// nil, holds each expert's input covariance (m x m, the Gram matrix of its hidden
// activations over the tokens routed to it): the factors then minimise
// Σ_e ||(W_e - C D_e) H_e||², whose C is the top eigenvectors of Σ_e W_e S_e W_eᵀ —
// exactly, with no square root, because C acts on the output side; D_e = Cᵀ W_e is
// optimal for any input weighting once C has orthonormal columns. Because each expert
// brings its own S_e, experts are weighted by how many tokens they see.
func NewOutFactor(ws [][]float32, n, m, groups int, covs [][]float64) (*LatentFactor, error) {
	return newOutFactor(ws, n, m, groups, covs, false)
}

func newOutFactor(ws [][]float32, n, m, groups int, covs [][]float64, noVecs bool) (*LatentFactor, error) {
	f := &LatentFactor{m: m, n: n, ws: ws, groups: groupLists(len(ws), groups), noVecs: noVecs}
	var damp float64
	if covs != nil {
		for _, c := range covs {
			damp += trace(c, m) / float64(m)
		}
		damp *= Damping / float64(len(covs))
	}
	for _, g := range f.groups {
		gram := mat.NewSymDense(n, nil)
		for _, e := range g {
			w := toDense(ws[e], n, m)
			if covs != nil {
				s := mat.NewSymDense(m, append([]float64(nil), covs[e]...))
				for i := range m {
					s.SetSym(i, i, s.At(i, i)+damp)
				}
				var ch mat.Cholesky
				if !ch.Factorize(s) {
					return nil, fmt.Errorf("moe: expert %d's activation covariance is not positive definite", e)
				}
				var l mat.TriDense
				ch.LTo(&l)
				var t mat.Dense
				t.Mul(w, &l) // (W L)(W L)ᵀ = W S Wᵀ
				w = &t
			}
			gram.SymRankK(gram, 1, w) // += W Wᵀ
		}
		if err := f.addEigen(gram); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (f *LatentFactor) addEigen(gram *mat.SymDense) error {
	var es mat.EigenSym
	if !es.Factorize(gram, !f.noVecs) {
		return fmt.Errorf("moe: eigendecomposition of a %d x %d Gram matrix failed", f.n, f.n)
	}
	asc := es.Values(nil)
	n := f.n
	if f.noVecs {
		vals := make([]float64, n)
		for k := range n {
			vals[k] = max(asc[n-1-k], 0)
		}
		f.vals = append(f.vals, vals)
		return nil
	}
	var v mat.Dense
	es.VectorsTo(&v)
	vals := make([]float64, n)
	vecs := mat.NewDense(n, n, nil)
	for k := range n { // descending
		vals[k] = max(asc[n-1-k], 0)
		for i := range n {
			vecs.Set(i, k, v.At(i, n-1-k))
		}
	}
	f.vals = append(f.vals, vals)
	f.vecs = append(f.vecs, vecs)
	return nil
}

// MaxRank is the largest useful rank: the model width.
func (f *LatentFactor) MaxRank() int { return f.n }

// Energy is the fraction of the (whitened, when calibrated) spectrum that rank r keeps,
// over all groups.
func (f *LatentFactor) Energy(r int) float64 {
	var kept, total float64
	for _, v := range f.vals {
		for k, x := range v {
			total += x
			if k < r {
				kept += x
			}
		}
	}
	if total == 0 {
		return 1
	}
	return kept / total
}

// RankFor is the smallest rank keeping at least the energy fraction e.
func (f *LatentFactor) RankFor(e float64) int {
	for r := 1; r <= f.n; r++ {
		if f.Energy(r) >= e-1e-12 {
			return r
		}
	}
	return f.n
}

// Build returns the factors at rank r: for in-projections the per-group bases B_g (r x n)
// and per-expert A_e (m x r); for out-projections the per-group C_g (n x r) and
// per-expert D_e (r x m). All are row-major float32.
func (f *LatentFactor) Build(r int) (bases, experts [][]float32) {
	if f.noVecs {
		panic("moe: Build on a spectrum-only LatentFactor")
	}
	r = max(1, min(r, f.n))
	bases = make([][]float32, len(f.groups))
	experts = make([][]float32, len(f.ws))
	for g, members := range f.groups {
		vr := f.vecs[g].Slice(0, f.n, 0, r) // n x r
		if f.in {
			var b mat.Dense // B = V_rᵀ S^{-1/2}
			if f.isqrt != nil {
				b.Mul(vr.T(), f.isqrt)
			} else {
				b.CloneFrom(vr.T())
			}
			bases[g] = fromDense(&b)
			proj := mat.DenseCopyOf(vr) // S^{1/2} V_r: A_e = W_e S^{1/2} V_r
			if f.sqrt != nil {
				proj.Mul(f.sqrt, vr)
			}
			for _, e := range members {
				var a mat.Dense
				a.Mul(toDense(f.ws[e], f.m, f.n), proj)
				experts[e] = fromDense(&a)
			}
			continue
		}
		bases[g] = fromDense(mat.DenseCopyOf(vr))
		for _, e := range members {
			var d mat.Dense // D_e = C_gᵀ W_e
			d.Mul(vr.T(), toDense(f.ws[e], f.n, f.m))
			experts[e] = fromDense(&d)
		}
	}
	return bases, experts
}

// LatentParams is the parameter count of one projection factored at rank r with
// groups bases: r*n per basis plus r*m per expert.
func LatentParams(nExpert, m, n, r, groups int) int64 {
	return int64(groups)*int64(r)*int64(n) + int64(nExpert)*int64(r)*int64(m)
}

// BaselineRank is the rank at which every expert factored on its own (W_e ≈ A_e B_e,
// the per-expert truncated SVD) has the parameters of MoLE at rank r with groups bases:
// N r_b (m + n) = G r n + N r m.
func BaselineRank(nExpert, m, n, r, groups int) int {
	p := LatentParams(nExpert, m, n, r, groups)
	return max(1, int(math.Round(float64(p)/float64(int64(nExpert)*int64(m+n)))))
}

// sqrtSym returns S^{1/2} and S^{-1/2} of the damped symmetric n x n matrix s.
func sqrtSym(s []float64, n int) (*mat.Dense, *mat.Dense, error) {
	sym := mat.NewSymDense(n, append([]float64(nil), s...))
	damp := Damping * trace(s, n) / float64(n)
	if damp <= 0 {
		return nil, nil, fmt.Errorf("moe: calibration covariance is zero")
	}
	for i := range n {
		sym.SetSym(i, i, sym.At(i, i)+damp)
	}
	var es mat.EigenSym
	if !es.Factorize(sym, true) {
		return nil, nil, fmt.Errorf("moe: eigendecomposition of the %d x %d covariance failed", n, n)
	}
	vals := es.Values(nil)
	var q mat.Dense
	es.VectorsTo(&q)
	sq, isq := mat.NewDense(n, n, nil), mat.NewDense(n, n, nil)
	ql, qi := mat.DenseCopyOf(&q), mat.DenseCopyOf(&q)
	for k, v := range vals {
		v = max(v, damp)
		s, is := math.Sqrt(v), 1/math.Sqrt(v)
		for i := range n {
			ql.Set(i, k, q.At(i, k)*s)
			qi.Set(i, k, q.At(i, k)*is)
		}
	}
	sq.Mul(ql, q.T())
	isq.Mul(qi, q.T())
	return sq, isq, nil
}

func trace(s []float64, n int) float64 {
	var t float64
	for i := range n {
		t += s[i*n+i]
	}
	return t
}

func toDense(w []float32, rows, cols int) *mat.Dense {
	d := make([]float64, rows*cols)
	for i, v := range w[:rows*cols] {
		d[i] = float64(v)
	}
	return mat.NewDense(rows, cols, d)
}

func fromDense(d *mat.Dense) []float32 {
	r, c := d.Dims()
	out := make([]float32, r*c)
	for i := range r {
		for j := range c {
			out[i*c+j] = float32(d.At(i, j))
		}
	}
	return out
}

// RefitIn refits the per-expert factors A_e of in-projections (gate, up) to expert e's
// own inputs once the bases are fixed: A_e = argmin ||(W_e - A_e B) X_e||² =
// W_e S_e Bᵀ (B S_e Bᵀ)⁻¹, with S_e = X_e X_eᵀ the Gram matrix of the tokens routed to
// e (damped by Damping of its mean diagonal). Where B drops a direction of the input
// that correlates with the directions it keeps, A_e recovers the correlated part; the
// plain projection W_e Bᵀ (what Build returns, and what this gives for S_e = I) cannot.
// ws are the experts (m x n), bases the B of each group (r x n), covs the n x n Gram
// matrices (nil or unseen: A_e stays as given in experts).
func RefitIn(ws [][]float32, m, n int, bases [][]float32, groupOf []int, covs [][]float64, experts [][]float32) error {
	for e, w := range ws {
		if covs == nil || covs[e] == nil {
			continue
		}
		d := Damping * trace(covs[e], n) / float64(n)
		if !(d > 0) {
			continue
		}
		b := bases[groupOf[e]]
		r := len(b) / n
		s := mat.NewSymDense(n, append([]float64(nil), covs[e]...))
		for i := range n {
			s.SetSym(i, i, s.At(i, i)+d)
		}
		bd := toDense(b, r, n)
		var p mat.Dense // S Bᵀ, n x r
		p.Mul(s, bd.T())
		var g mat.Dense // B S Bᵀ, r x r
		g.Mul(bd, &p)
		var wp mat.Dense // W S Bᵀ, m x r
		wp.Mul(toDense(w, m, n), &p)
		a, err := solveA(e, &g, &wp)
		if err != nil {
			return err
		}
		experts[e] = fromDense(a)
	}
	return nil
}
