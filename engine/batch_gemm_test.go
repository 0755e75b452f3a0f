package engine

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
)

// TestBatchExactTypes: on every ISA this CPU runs, batched steps (prompt chunks through
// kernels.GemmQ8_0/GemmQ4_0 for quantised matrices, the batched float dots for F16/F32
// rows) give logits bit-identical to State.Forward, for dense and MoE families, with
// row counts that are not multiples of the kernels' 4-row strips (vocabulary 50).
func TestBatchExactTypes(t *testing.T) {
	var specs []synthSpec
	for _, sp := range synthSpecs {
		switch sp.family {
		case "llama", "mixtral", "qwen2moe":
			specs = append(specs, sp)
		}
	}
	type named struct {
		name string
		m    *Model
	}
	var models []named
	for _, sp := range specs {
		sm := newSynth(sp, sp.seed)
		dir := t.TempDir()
		sm.writeHF(t, filepath.Join(dir, "hf"), "")
		m := loadModelFile(t, filepath.Join(dir, "hf"))
		models = append(models, named{sp.family + "-f32", m})
		for _, dt := range []loader.DType{loader.F16, loader.Q8_0, loader.Q4_0} {
			path := filepath.Join(dir, dt.String()+".gguf")
			if err := WriteGGUF(m, path, dt); err != nil {
				t.Fatal(err)
			}
			models = append(models, named{sp.family + "-" + dt.String(), loadModelFile(t, path)})
		}
	}
	// A prompt chunk of a quantised model (the GEMM path) allocates nothing either.
	checked := 0
	for _, nm := range models {
		if nm.name != "mixtral-Q4_0" && nm.name != "llama-Q8_0" {
			continue
		}
		checked++
		m := nm.m
		b := m.NewBatch(12, 32)
		s := m.NewState(32)
		items := make([]BatchItem, 12)
		for i := range items {
			items[i] = BatchItem{State: s, Token: int32(i + 2), Pos: i, Wants: i == 11}
		}
		b.Forward(items)
		if n := testing.AllocsPerRun(5, func() { b.Forward(items) }); n != 0 {
			t.Errorf("%s: Batch.Forward allocates %v times per step", nm.name, n)
		}
	}
	if checked != 2 {
		t.Fatalf("allocation check ran on %d models, want 2", checked)
	}
	for isa := kernels.Generic; isa <= kernels.NEON; isa++ {
		if !kernels.Supported(isa) {
			continue
		}
		prev, err := kernels.SetISA(isa)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(isa.String(), func(t *testing.T) {
			for _, nm := range models {
				m := nm.m
				seqs := [][]int32{seqTokens(m, 0, 13), seqTokens(m, 1, 9), seqTokens(m, 2, 15)}
				together := runBatched(m, seqs, []int{0, 0, 2}, []int{11, 1, 13})
				for k := range seqs {
					ref := runAll(m, seqs[k])
					for p := range ref {
						for i, v := range ref[p] {
							if got := together[k][p][i]; math.Float32bits(v) != math.Float32bits(got) {
								t.Fatalf("%s: seq %d pos %d logit %d: Forward %v, batched %v", nm.name, k, p, i, v, got)
							}
						}
					}
				}
			}
		})
		kernels.SetISA(prev)
	}
}
