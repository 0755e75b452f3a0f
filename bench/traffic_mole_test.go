package bench

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mole-llm/mole/engine"
	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
)

// A MoLE token reads each latent layer's shared matrices once (B_gate, B_up, C) and the
// small matrices of the experts it routes to (A_gate, A_up, D), counted by hand for the
// tiny preset (hidden 128, expert width 192, 2 of 4 experts, 2 layers) at rank 16 in F16;
// every other part of the traffic is the original model's.
func TestTrafficMoLEByHand(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "tiny.gguf")
	if err := GenerateGGUF(src, GenOptions{Shape: tinyShape(t), Type: loader.F16}); err != nil {
		t.Fatal(err)
	}
	_, m := load(t, src)
	dst := filepath.Join(dir, "tiny-mole.gguf")
	if _, err := engine.ConvertMoLEStream(context.Background(), m, dst, engine.MoLEOptions{Rank: 16}, loader.F16); err != nil {
		t.Fatal(err)
	}
	_, lm := load(t, dst)
	orig, got := TrafficOf(m), TrafficOf(lm)
	const (
		n, ff, r, used, layers = 128, 192, 16, 2, 2
		shared                 = 3 * r * n               // B_gate, B_up (r x n) and C (n x r)
		perExpert              = 3 * ff * r              // A_gate, A_up (ff x r) and D (r x ff)
		perLayer               = shared + used*perExpert // weights a token reads per layer
	)
	if want := int64(layers * perLayer * 2); got.Experts != want {
		t.Errorf("latent expert bytes per token %d, want %d", got.Experts, want)
	}
	if want := orig.MACs - int64(layers*used*3*ff*n) + int64(layers*perLayer); got.MACs != want {
		t.Errorf("multiply-adds per token %d, want %d", got.MACs, want)
	}
	if got.Attention != orig.Attention || got.Router != orig.Router || got.Output != orig.Output || got.Other != orig.Other {
		t.Errorf("non-expert traffic changed:\n got %+v\nwant %+v", got, orig)
	}
	if want := got.Attention + got.Router + got.Experts + got.DenseFFN + got.Output + got.Other; got.Bytes != want {
		t.Errorf("bytes %d, parts sum to %d", got.Bytes, want)
	}
}

// An MWQ matrix whose columns are not a whole number of groups stores each row padded to
// whole groups, and a token reads the padded planes: 200 columns are two groups a row.
func TestMWQPlaneBytesPadded(t *testing.T) {
	mm := &engine.Matrix{DType: loader.MWQBase2, Rows: 3, Cols: 200}
	if got, want := mwqPlaneBytes(mm, 2), int64(2*3*2*kernels.MWQPlaneBlockBytes); got != want {
		t.Errorf("2 planes of a 3x200 MWQ matrix: %d bytes, want %d", got, want)
	}
	if got := mwqPlaneBytes(&engine.Matrix{DType: loader.F16, Rows: 3, Cols: 200}, 2); got != 0 {
		t.Errorf("F16 matrix: %d plane bytes, want 0", got)
	}
}
