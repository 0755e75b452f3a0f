package engine

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/mole-llm/mole/kernels"
)

// quantizedSynth writes the synthetic family's model quantised to each of mole's int8
// schemes (calibrated on a token stream of its own vocabulary) and loads them.
func quantizedSynth(t *testing.T, family string) map[string]*Model {
	var sp synthSpec
	for _, s := range synthSpecs {
		if s.family == family {
			sp = s
		}
	}
	dir := t.TempDir()
	newSynth(sp, sp.seed).writeHF(t, filepath.Join(dir, "hf"), "")
	f := loadModelFile(t, filepath.Join(dir, "hf"))
	out := map[string]*Model{}
	for _, s := range []string{"q8", "a8w4"} {
		path := filepath.Join(dir, s+".gguf")
		if _, err := Quantize(context.Background(), f, path, QuantizeOptions{Scheme: s, CalibName: "test", Calib: seqTokens(f, 4, 96)}); err != nil {
			t.Fatal(err)
		}
		m := loadModelFile(t, path)
		if m.act != actI8 || !m.Layers[0].Wq.gemm() || m.Layers[0].Wq.mole == nil {
			t.Fatalf("%s %s: the attention matrices are not on the int8 GEMM path", family, s)
		}
		out[family+"-"+s] = m
	}
	return out
}

// checkBatchExact runs three sequences with prompt chunks of several lengths (the GEMM
// kernels' token tiles of 4 and their tails) through one Batch and requires every logit
// to equal State.Forward's bit for bit, on every ISA this CPU runs.
func checkBatchExact(t *testing.T, models map[string]*Model, lens, chunks []int) {
	t.Helper()
	for isa := kernels.Generic; isa <= kernels.NEON; isa++ {
		if !kernels.Supported(isa) {
			continue
		}
		prev, err := kernels.SetISA(isa)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(isa.String(), func(t *testing.T) {
			for name, m := range models {
				var seqs [][]int32
				for k, n := range lens {
					seqs = append(seqs, seqTokens(m, k, n))
				}
				together := runBatched(m, seqs, []int{0, 0, 2}, chunks)
				for k := range seqs {
					ref := runAll(m, seqs[k])
					for p := range ref {
						for i, v := range ref[p] {
							if got := together[k][p][i]; math.Float32bits(v) != math.Float32bits(got) {
								t.Fatalf("%s: seq %d pos %d logit %d: Forward %v, batched %v", name, k, p, i, v, got)
							}
						}
					}
				}
			}
		})
		kernels.SetISA(prev)
	}
}

// TestBatchExactMoleSynth: MOLE_Q8 and MOLE_A8W4 (kernels.GemmI8/GemmA8W4 in a Batch)
// give logits bit-identical to State.Forward (GemvI8/GemvA8W4 per token) for a dense
// and two MoE families, with 50 output rows (not a whole number of 4-row strips), rows
// of 32 and 64 columns (less than one A8W4 group) and prompt chunks of 11, 1 and 13.
func TestBatchExactMoleSynth(t *testing.T) {
	models := map[string]*Model{}
	for _, fam := range []string{"llama", "mixtral", "qwen2moe"} {
		for k, m := range quantizedSynth(t, fam) {
			models[k] = m
		}
	}
	checkBatchExact(t, models, []int{13, 9, 15}, []int{11, 1, 13})

	// A prompt chunk of a quantised model (the GEMM path) allocates nothing.
	if raceEnabled {
		return
	}
	m := models["mixtral-a8w4"]
	b := m.NewBatch(12, 32)
	s := m.NewState(32)
	items := make([]BatchItem, 12)
	for i := range items {
		items[i] = BatchItem{State: s, Token: int32(i + 2), Pos: i, Wants: i == 11}
	}
	b.Forward(items)
	if n := testing.AllocsPerRun(5, func() { b.Forward(items) }); n != 0 {
		t.Errorf("Batch.Forward allocates %v times per step on MOLE_A8W4", n)
	}
}

// TestBatchExactMoleKJV is the same check on kjv-moe quantised to q8 and a8w4 by the
// calibrated quantizer (several A8W4 groups per row, 8 experts, a vocabulary that is not
// a whole number of strips), with a prompt chunk long enough for whole 64-token blocks.
func TestBatchExactMoleKJV(t *testing.T) {
	if testing.Short() {
		t.Skip("quantizes kjv-moe with the grid search")
	}
	_, files := kjvQuantized(t)
	models := map[string]*Model{}
	for _, s := range []string{"q8", "a8w4"} {
		models["kjv-"+s] = loadModelFile(t, files[s])
	}
	checkBatchExact(t, models, []int{20, 9, 12}, []int{14, 1, 5})
	for name, m := range models {
		checkPromptChunk(t, name, m, 70)
	}
}

// checkPromptChunk runs an n-token prompt as one Batch step (every item wanting its
// logits: the GEMM kernels see whole 64-token blocks and a tail) and compares each
// position's logits with State.Forward's, bit for bit.
func checkPromptChunk(t *testing.T, name string, m *Model, n int) {
	t.Helper()
	toks := seqTokens(m, 5, n)
	ref := runAll(m, toks)
	b := m.NewBatch(n, n)
	s := m.NewState(n)
	items := make([]BatchItem, n)
	for i := range items {
		items[i] = BatchItem{State: s, Token: toks[i], Pos: i, Wants: true}
	}
	b.Forward(items)
	for p := range ref {
		for i, v := range ref[p] {
			if got := b.Logits(p)[i]; math.Float32bits(v) != math.Float32bits(got) {
				t.Fatalf("%s: %d-token chunk, pos %d logit %d: Forward %v, batched %v", name, n, p, i, v, got)
			}
		}
	}
}
