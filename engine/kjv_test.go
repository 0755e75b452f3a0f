package engine

import (
	"math"
	"slices"
	"testing"
)

// TestKJVSafetensors checks the Mixtral forward pass against reference.json, which
// an independent PyTorch implementation of HF modeling_mixtral produced from the same
// safetensors bytes.
func TestKJVSafetensors(t *testing.T) {
	ref := readKJVReference(t)
	m := openTestModel(t, "kjv-moe")
	if m.Config.Family != "mixtral" || !m.Config.RopeNeoX || !m.Config.NormTopK {
		t.Fatalf("config %+v", m.Config)
	}
	s := m.NewState(512)
	for _, p := range ref.Prompts {
		var logits []float32
		for i, tok := range p.IDs {
			logits = s.Forward(tok, i)
		}
		var maxDiff float64
		for i, v := range p.LastLogits {
			maxDiff = math.Max(maxDiff, math.Abs(float64(logits[i])-v))
		}
		t.Logf("%q: last-position logits max abs diff %.3g", p.Text, maxDiff)
		if maxDiff > 1e-3 {
			t.Errorf("%q: logits differ by %g (> 1e-3)", p.Text, maxDiff)
		}
		got := greedy(s, p.IDs, len(p.Greedy.IDs))
		if !slices.Equal(got, p.Greedy.IDs) {
			t.Errorf("%q: greedy continuation\n got %v\nwant %v", p.Text, got, p.Greedy.IDs)
		}
	}
}

// TestKJVRouter compares the per-layer top-2 experts and weights of the first prompt.
func TestKJVRouter(t *testing.T) {
	ref := readKJVReference(t)
	m := openTestModel(t, "kjv-moe")
	s := m.NewState(64)
	rf := ref.RouterFirstPrompt
	pos := 0
	var maxW float64
	s.SetRouterTrace(func(layer int, experts []int32, weights []float32) {
		want := rf.Layers[layer]
		if !slices.Equal(experts, want.Top2Experts[pos]) {
			t.Errorf("layer %d position %d: experts %v want %v (reference 2nd-vs-3rd margin %.4f)",
				layer, pos, experts, want.Top2Experts[pos], want.Margins[pos])
			return
		}
		for j := range weights {
			maxW = math.Max(maxW, math.Abs(float64(weights[j])-want.Top2Weights[pos][j]))
		}
	})
	for i, tok := range rf.IDs {
		pos = i
		s.Forward(tok, i)
	}
	t.Logf("router weights max abs diff %.3g", maxW)
	if maxW > 1e-4 {
		t.Errorf("router weights differ by %g", maxW)
	}
}
