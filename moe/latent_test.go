package moe

import (
	"math"
	"math/rand/v2"
	"testing"
)

// outErr is Σ_t ||(W - A B) x_t||² over the columns x_t of xs (n x T, row-major).
func outErr(w, a, b []float32, m, n, r int, xs []float64, T int) float64 {
	var e float64
	for t := range T {
		z := make([]float64, r)
		for k := range r {
			for j := range n {
				z[k] += float64(b[k*n+j]) * xs[j*T+t]
			}
		}
		for i := range m {
			var y, yh float64
			for j := range n {
				y += float64(w[i*n+j]) * xs[j*T+t]
			}
			for k := range r {
				yh += float64(a[i*r+k]) * z[k]
			}
			e += (y - yh) * (y - yh)
		}
	}
	return e
}

// RefitIn is the least-squares A for fixed B: with an identity covariance it is the
// projection W Bᵀ Build returns, and on correlated inputs its output error is below the
// projection's (and at a minimum: perturbing A only raises it).
func TestRefitIn(t *testing.T) {
	const m, n, r, T, N = 6, 10, 4, 400, 3
	rng := rand.New(rand.NewPCG(1, 2))
	ws := make([][]float32, N)
	for e := range ws {
		ws[e] = make([]float32, m*n)
		for i := range ws[e] {
			ws[e][i] = float32(rng.NormFloat64())
		}
	}
	f, err := NewInFactor(ws, m, n, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	bases, proj := f.Build(r)
	groupOf := make([]int, N)

	// Identity covariance (T·I, any scale): the refit is the projection.
	id := make([]float64, n*n)
	for i := range n {
		id[i*n+i] = 5
	}
	eye := [][]float64{id, id, id}
	got := make([][]float32, N)
	for e := range got {
		got[e] = append([]float32(nil), proj[e]...)
	}
	if err := RefitIn(ws, m, n, bases, groupOf, eye, got); err != nil {
		t.Fatal(err)
	}
	for e := range got {
		for i := range got[e] {
			if d := math.Abs(float64(got[e][i] - proj[e][i])); d > 1e-4 {
				t.Fatalf("identity covariance: A[%d][%d] = %v, projection %v", e, i, got[e][i], proj[e][i])
			}
		}
	}

	// Correlated inputs: x = M u with a random mixing M.
	mix := make([]float64, n*n)
	for i := range mix {
		mix[i] = rng.NormFloat64()
	}
	xs := make([]float64, n*T)
	for t := range T {
		u := make([]float64, n)
		for j := range u {
			u[j] = rng.NormFloat64()
		}
		for i := range n {
			for j := range n {
				xs[i*T+t] += mix[i*n+j] * u[j]
			}
		}
	}
	cov := make([]float64, n*n)
	for i := range n {
		for j := range n {
			for t := range T {
				cov[i*n+j] += xs[i*T+t] * xs[j*T+t]
			}
		}
	}
	covs := [][]float64{cov, cov, cov}
	for e := range got {
		got[e] = append([]float32(nil), proj[e]...)
	}
	if err := RefitIn(ws, m, n, bases, groupOf, covs, got); err != nil {
		t.Fatal(err)
	}
	for e := range ws {
		before := outErr(ws[e], proj[e], bases[0], m, n, r, xs, T)
		after := outErr(ws[e], got[e], bases[0], m, n, r, xs, T)
		t.Logf("expert %d: output error %.4g projected, %.4g refitted", e, before, after)
		if !(after < 0.95*before) {
			t.Fatalf("expert %d: refit output error %v not below the projection's %v", e, after, before)
		}
		bumped := append([]float32(nil), got[e]...)
		bumped[3] += 0.05
		if outErr(ws[e], bumped, bases[0], m, n, r, xs, T) < after {
			t.Fatalf("expert %d: the refit is not a minimum", e)
		}
	}
}
