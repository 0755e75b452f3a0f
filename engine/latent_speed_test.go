package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mole-llm/mole/loader"
)

// A latent layer's decode step and batch step allocate nothing: the scratch is sized
// once (newLatentScratch) and the pool runs reuse its closures.
func TestLatentNoAllocs(t *testing.T) {
	m := sharedKJV(t)
	for _, o := range []MoLEOptions{{Rank: 64, Groups: 1}, {Rank: 40, Groups: 2}} {
		lm, _ := convertSharedKJV(t, o)
		toks := kjvTokens(m, 8)
		s := lm.NewState(64)
		for i, tk := range toks {
			s.Forward(tk, i)
		}
		pos := len(toks)
		if n := testing.AllocsPerRun(20, func() { s.Forward(toks[pos%len(toks)], pos); pos++ }); n != 0 {
			t.Errorf("%+v: State.Forward allocates %v times per token", o, n)
		}
		b := lm.NewBatch(4, 0)
		var items []BatchItem
		for k := range 4 {
			items = append(items, BatchItem{State: lm.NewState(64), Token: toks[k], Pos: 0, Wants: true})
		}
		b.Forward(items)
		for i := range items {
			items[i].Pos = 1
		}
		if n := testing.AllocsPerRun(10, func() { b.Forward(items) }); n != 0 {
			t.Errorf("%+v: Batch.Forward allocates %v times per step", o, n)
		}
	}
}

// ConvertMoLEStream's exact path (a rank whose subspace is most of the width) writes the
// factorisation ConvertMoLE computes: up to the sign of each basis vector, which the
// products A·B and C·D do not see, so the logits agree to float rounding; its energies
// agree too. Its randomized path keeps nearly the exact solver's energy.
func TestLatentStreamMatchesConvert(t *testing.T) {
	m := openTestModel(t, "kjv-moe-gguf/kjv-moe-F16.gguf")
	c := &m.Config
	toks := kjvTokens(m, 16)
	dir := t.TempDir()
	for _, rank := range []int{c.NEmbd - 8, c.NEmbd / 4} {
		path := filepath.Join(dir, fmt.Sprintf("stream-%d.gguf", rank))
		rep, err := ConvertMoLEStream(context.Background(), m, path, MoLEOptions{Rank: rank}, loader.F32)
		if err != nil {
			t.Fatal(err)
		}
		ref, refRep := convertKJV(t, m, MoLEOptions{Rank: rank, Groups: 1})
		if rep.ParamsAfter != refRep.ParamsAfter || rep.ParamsBefore != refRep.ParamsBefore {
			t.Fatalf("rank %d: params %d -> %d, ConvertMoLE %d -> %d", rank, rep.ParamsBefore, rep.ParamsAfter, refRep.ParamsBefore, refRep.ParamsAfter)
		}
		exact := 100*min(c.NEmbd, rank+streamOversample) >= streamFullPct*c.NEmbd
		for l, lr := range rep.Layers {
			want := refRep.Layers[l]
			for p, got := range []float64{lr.EnergyGate, lr.EnergyUp, lr.EnergyDown} {
				ref := []float64{want.EnergyGate, want.EnergyUp, want.EnergyDown}[p]
				// Exact: the same spectrum (float32 vs float64 Gram). Randomized: a
				// subspace no better than the optimum and close to it.
				lo, hi := ref-1e-5, ref+1e-5
				if !exact {
					lo = ref * 0.97
				}
				if got < lo || got > hi {
					t.Errorf("rank %d layer %d projection %d: energy %.6f, ConvertMoLE %.6f", rank, l, p, got, ref)
				}
			}
		}
		sm := loadModelFile(t, path)
		if !sm.hasLatent() {
			t.Fatalf("rank %d: the streamed file has no latent layer", rank)
		}
		if exact {
			d := maxDiff(logitsOf(ref, toks), logitsOf(sm, toks))
			t.Logf("rank %d: max |logit diff| streaming vs ConvertMoLE: %.3g", rank, d)
			if d > 1e-3 {
				t.Errorf("rank %d: streamed logits differ from ConvertMoLE's by %g", rank, d)
			}
		}
	}
}
