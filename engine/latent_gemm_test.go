package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mole-llm/mole/quant"
)

// A quantized latent model's batch step runs the latent products on the GEMM kernels
// (latent_gemm.go) and still gives every token Forward's logits bit for bit, with the
// GEMM path on and off (moleRowPath sends mole's types back to the row path).
func TestLatentGemmBatchExact(t *testing.T) {
	if testing.Short() {
		t.Skip("converts and quantizes kjv-moe")
	}
	m := sharedKJV(t)
	toks := kjvTokens(m, 16)
	for _, c := range []struct {
		o      MoLEOptions
		scheme string
	}{{MoLEOptions{Rank: 48, Groups: 1}, "q8"}, {MoLEOptions{Rank: 40, Groups: 2}, "q8"}, {MoLEOptions{Rank: 48, Groups: 1}, "a8w4"}} {
		name := fmt.Sprintf("%+v %s", c.o, c.scheme)
		lm, _ := convertSharedKJV(t, c.o)
		path := filepath.Join(t.TempDir(), "kjv-mole.gguf")
		if _, err := Quantize(context.Background(), lm, path, QuantizeOptions{Scheme: c.scheme, CalibName: "builtin",
			Calib: lm.Tok.Encode(quant.BuiltinCalibration, false, false)}); err != nil {
			t.Fatal(err)
		}
		qm := loadModelFile(t, path)
		lf := qm.Layers[0].Latent
		if lf == nil {
			t.Fatalf("%s: layer 0 is not latent after quantizing", name)
		}
		for _, mm := range []*Matrix{lf.GateIn[0], lf.UpIn[0], lf.DownOut[0], lf.ExpGate[0], lf.ExpUp[0], lf.ExpDown[0]} {
			if !latGemmOK(mm, 2) {
				t.Fatalf("%s: %s (%v) has no GEMM path", name, mm.Name, mm.DType)
			}
		}
		want := logitsOf(qm, toks)
		for _, rowPath := range []bool{false, true} {
			moleRowPath = rowPath
			b := qm.NewBatch(len(toks), 0)
			s := qm.NewState(0)
			items := make([]BatchItem, len(toks))
			for i, tk := range toks {
				items[i] = BatchItem{State: s, Token: tk, Pos: i, Wants: true}
			}
			b.Forward(items)
			moleRowPath = false
			for i := range toks {
				for j, v := range b.Logits(i) {
					if v != want[i][j] {
						t.Fatalf("%s (row path %v): batch logit %d of token %d: %v, Forward %v", name, rowPath, j, i, v, want[i][j])
					}
				}
			}
		}
		// The GEMM path allocates nothing either (its scratch is sized with the batch).
		b := qm.NewBatch(4, 0)
		var items []BatchItem
		for k := range 4 {
			items = append(items, BatchItem{State: qm.NewState(64), Token: toks[k], Pos: 0, Wants: true})
		}
		b.Forward(items)
		for i := range items {
			items[i].Pos = 1
		}
		if n := testing.AllocsPerRun(5, func() { b.Forward(items) }); n != 0 {
			t.Errorf("%s: Batch.Forward allocates %v times per step", name, n)
		}
	}
}
