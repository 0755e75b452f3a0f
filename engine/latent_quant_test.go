package engine

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/quant"
)

// Issue 7: MoLE composes with a8w4. A converted kjv-moe (rank 192) quantized by
// Quantize loads as a latent model whose factors are MOLE_A8W4, runs, and scores within
// 2% of the float MoLE model's perplexity (kjv-moe's own a8w4 costs 0.6% on the same 16
// windows; the latent form adds two int8 activations per expert path, z and y).
func TestLatentA8W4Perplexity(t *testing.T) {
	if testing.Short() {
		t.Skip("quantizes a converted kjv-moe with the grid search")
	}
	m := sharedKJV(t)
	lm, _ := convertKJV(t, m, MoLEOptions{Rank: 192, Groups: 1})
	path := filepath.Join(t.TempDir(), "kjv-mole-a8w4.gguf")
	rep, err := Quantize(context.Background(), lm, path, QuantizeOptions{Scheme: "a8w4", CalibName: "builtin",
		Calib: lm.Tok.Encode(quant.BuiltinCalibration, false, false)})
	if err != nil {
		t.Fatal(err)
	}
	qm := loadModelFile(t, path)
	for l := range qm.Layers {
		lf := qm.Layers[l].Latent
		if lf == nil || lf.RankG != 192 {
			t.Fatalf("layer %d: not a rank-192 latent layer after quantizing: %+v", l, lf)
		}
		shared, perExpert := lf.Matrices()
		for _, mm := range append(shared, perExpert...) {
			if mm.DType != loader.MoleA8W4 {
				t.Fatalf("layer %d: %s is %v, want MOLE_A8W4", l, mm.Name, mm.DType)
			}
		}
	}
	float, quantized := kjvPerplexity(t, lm), kjvPerplexity(t, qm)
	t.Logf("MoLE rank 192: float %.4f, a8w4 %.4f (ratio %.5f; %d channels smoothed)", float, quantized, quantized/float, rep.SmoothedChannels)
	if r := quantized / float; r > 1.02 || r < 0.99 {
		t.Fatalf("a8w4 MoLE perplexity %.4f is %.2f%% off the float MoLE's %.4f (bound +2%%)", quantized, 100*(r-1), float)
	}
}
