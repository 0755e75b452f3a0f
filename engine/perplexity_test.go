package engine

import (
	"context"
	"math"
	"slices"
	"testing"
)

// TestPerplexityProtocol checks which tokens are fed and scored with a fake model whose
// logits are uniform over 4 tokens except a fixed bonus for token 3, so every scored token
// has a known NLL.
func TestPerplexityProtocol(t *testing.T) {
	logits := []float32{0, 0, 0, 1}
	z := 3 + math.E
	nllOf := func(id int32) float64 { return math.Log(z) - float64(logits[id]) }
	var fed []int32
	var positions []int
	resets := 0
	fwd := func(tok int32, pos int) []float32 {
		fed = append(fed, tok)
		positions = append(positions, pos)
		return logits
	}
	tokens := []int32{3, 1, 2, 3, 3, 1, 2} // windows of 3: [3 1 2] [3 3 1] [2]

	r, err := perplexity(context.Background(), forwardEval(fwd), func() { resets++ }, 8, 0, tokens, PerplexityOptions{Window: 3})
	if err != nil {
		t.Fatal(err)
	}
	// With BOS (id 0): fed [0 3 1] [0 3 3] [0], all 7 tokens scored.
	wantFed := []int32{0, 3, 1, 0, 3, 3, 0}
	if !slices.Equal(fed, wantFed) || resets != 3 || r.Windows != 3 || r.Scored != 7 {
		t.Fatalf("fed %v resets %d result %+v", fed, resets, r)
	}
	if positions[2] != 2 || positions[3] != 0 {
		t.Fatalf("positions %v: each window must start at 0", positions)
	}
	var want float64
	for _, id := range tokens {
		want += nllOf(id)
	}
	want /= 7
	if math.Abs(r.MeanNLL-want) > 1e-12 || math.Abs(r.Perplexity-math.Exp(want)) > 1e-9 {
		t.Fatalf("mean NLL %v want %v", r.MeanNLL, want)
	}

	// Without BOS: fed [3 1] [3 3], scored 1 2 3 1; the 1-token last window scores nothing.
	fed = nil
	r, err = perplexity(context.Background(), forwardEval(fwd), func() {}, 8, -1, tokens, PerplexityOptions{Window: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fed, []int32{3, 1, 3, 3}) || r.Scored != 4 {
		t.Fatalf("no BOS: fed %v result %+v", fed, r)
	}
	// MaxWindows.
	fed = nil
	r, _ = perplexity(context.Background(), forwardEval(fwd), func() {}, 8, 0, tokens, PerplexityOptions{Window: 3, MaxWindows: 1})
	if r.Windows != 1 || r.Scored != 3 {
		t.Fatalf("MaxWindows 1: %+v", r)
	}
	if _, err := perplexity(context.Background(), forwardEval(fwd), func() {}, 2, 0, tokens, PerplexityOptions{Window: 3}); err == nil {
		t.Fatal("window larger than context: want error")
	}
}
