package moe

import (
	"math"
	"math/rand/v2"
	"testing"
)

// fitProblem returns N random experts (m x n) and, for each, T inputs drawn with its own
// random mixing (columns of n x T), so every expert sees differently correlated inputs,
// as the experts of a trained MoE do.
func fitProblem(rng *rand.Rand, N, m, n, T int) (ws [][]float32, xs, covs [][]float64) {
	for range N {
		w := make([]float32, m*n)
		for i := range w {
			w[i] = float32(rng.NormFloat64())
		}
		ws = append(ws, w)
		mix := make([]float64, n*n)
		for i := range mix {
			mix[i] = rng.NormFloat64()
		}
		x := make([]float64, n*T)
		for t := range T {
			u := make([]float64, n)
			for j := range u {
				u[j] = rng.NormFloat64() * math.Pow(0.7, float64(j)) // a decaying spectrum
			}
			for i := range n {
				for j := range n {
					x[i*T+t] += mix[i*n+j] * u[j]
				}
			}
		}
		cov := make([]float64, n*n)
		for i := range n {
			for j := range n {
				for t := range T {
					cov[i*n+j] += x[i*T+t] * x[j*T+t]
				}
			}
		}
		xs, covs = append(xs, x), append(covs, cov)
	}
	return ws, xs, covs
}

// FitIn's objective is the true output error of its factors on the calibration inputs
// (computed here from the inputs themselves), never rises from round to round, and ends
// well below RefitIn's (the best A for the Frobenius-optimal shared B).
func TestFitInMonotone(t *testing.T) {
	defer func(d float64) { Damping = d }(Damping)
	Damping = 1e-9 // the objective is then the output error on xs
	const N, m, n, r, T = 4, 12, 10, 4, 200
	rng := rand.New(rand.NewPCG(3, 4))
	ws, xs, covs := fitProblem(rng, N, m, n, T)
	f, err := NewInFactor(ws, m, n, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	bases, experts := f.Build(r)
	groupOf := make([]int, N)
	if err := RefitIn(ws, m, n, bases, groupOf, covs, experts); err != nil {
		t.Fatal(err)
	}
	total := func(bases, experts [][]float32) (e float64) {
		for i := range ws {
			e += outErr(ws[i], experts[i], bases[groupOf[i]], m, n, r, xs[i], T)
		}
		return e
	}
	refit := total(bases, experts)
	objs, err := FitIn(ws, m, n, bases, groupOf, covs, experts, 8, 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("objective by round: %.6g (RefitIn's output error %.6g)", objs, refit)
	if math.Abs(objs[0]-refit) > 1e-6*refit {
		t.Fatalf("round 0 objective %v, RefitIn's output error %v", objs[0], refit)
	}
	for k := 1; k < len(objs); k++ {
		if objs[k] > objs[k-1]*(1+1e-12) {
			t.Fatalf("objective rose in round %d: %v -> %v", k, objs[k-1], objs[k])
		}
	}
	got := total(bases, experts)
	if last := objs[len(objs)-1]; math.Abs(got-last) > 1e-4*last {
		t.Fatalf("final factors' output error %v, reported objective %v", got, last)
	}
	if !(got < 0.9*refit) {
		t.Fatalf("fitted output error %v not 10%% below RefitIn's %v", got, refit)
	}
}

// With every expert its own group nothing is shared, and alternating least squares
// must reach each expert's known optimum: the truncated SVD of W_e S_e^{1/2}
// (ExpertFactors, the data-aware baseline).
func TestFitInReachesExpertOptimum(t *testing.T) {
	defer func(d float64) { Damping = d }(Damping)
	Damping = 1e-9
	const N, m, n, r, T = 3, 12, 10, 4, 200
	rng := rand.New(rand.NewPCG(5, 6))
	ws, xs, covs := fitProblem(rng, N, m, n, T)
	f, err := NewInFactor(ws, m, n, N, nil)
	if err != nil {
		t.Fatal(err)
	}
	bases, experts := f.Build(r)
	groupOf := []int{0, 1, 2}
	objs, err := FitIn(ws, m, n, bases, groupOf, covs, experts, 40, 30)
	if err != nil {
		t.Fatal(err)
	}
	ob, oe, _, err := ExpertFactors(ws, m, n, true, covs, r)
	if err != nil {
		t.Fatal(err)
	}
	var opt float64
	for e := range ws {
		opt += outErr(ws[e], oe[e], ob[e], m, n, r, xs[e], T)
	}
	got := objs[len(objs)-1]
	t.Logf("start %.6g, after 40 rounds %.6g, per-expert optimum %.6g", objs[0], got, opt)
	if got < opt*(1-1e-4) {
		t.Fatalf("fit %v below the optimum %v: one of them is wrong", got, opt)
	}
	if got > opt*1.001 {
		t.Fatalf("fit %v does not reach the per-expert optimum %v", got, opt)
	}
}
