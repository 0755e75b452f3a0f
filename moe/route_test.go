package moe

import (
	"math"
	"testing"
)

func TestRouteMixtral(t *testing.T) {
	// Logits of reference.json's layer 0, position 0: top-2 = [0 5], weights .7279/.2721.
	logits := []float32{1.224621295928955, 0.028209587559103966, -0.05987975001335144, -0.27105429768562317, -0.4455733597278595, 0.24066781997680664, -0.4630877375602722, 0.06556078791618347}
	r := NewRouter(8, 2, true)
	idx := make([]int32, 2)
	w := make([]float32, 2)
	r.Route(logits, idx, w)
	if idx[0] != 0 || idx[1] != 5 {
		t.Fatalf("experts %v want [0 5]", idx)
	}
	if math.Abs(float64(w[0])-0.7278919816017151) > 1e-6 || math.Abs(float64(w[1])-0.2721080482006073) > 1e-6 {
		t.Fatalf("weights %v", w)
	}
}

func TestRouteNoNormAndTies(t *testing.T) {
	logits := []float32{0, 1, 1, 0.5}
	r := NewRouter(4, 3, false)
	idx := make([]int32, 3)
	w := make([]float32, 3)
	r.Route(logits, idx, w)
	if idx[0] != 1 || idx[1] != 2 || idx[2] != 3 {
		t.Fatalf("tie order %v want [1 2 3]", idx)
	}
	den := 1 + 2*math.E + math.Exp(0.5)
	if math.Abs(float64(w[0])-math.E/den) > 1e-6 || math.Abs(float64(w[2])-math.Exp(0.5)/den) > 1e-6 {
		t.Fatalf("unnormalised weights %v", w)
	}
	if n := testing.AllocsPerRun(10, func() { r.Route(logits, idx, w) }); n != 0 {
		t.Fatalf("Route allocates %v", n)
	}
}
