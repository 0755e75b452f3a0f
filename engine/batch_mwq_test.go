package engine

import "testing"

// TestBatchExactMWQ: a batched step of an MWQ model (three sequences, prompts fed
// together, then one token each per step) gives every sequence the bits State.Forward
// gives it alone, at 2 and 4 bits — Batch runs MWQ experts through Matrix.gemmRows (one
// fused GEMV per token over a tile of rows), Forward over its own row blocks.
func TestBatchExactMWQ(t *testing.T) {
	m := loadModelFile(t, fakeMWQPath(t))
	prompts := []string{schedPrompt, "In the beginning God created", "Blessed are the"}
	const steps = 5
	for _, bits := range []int{2, 4} {
		m.SetExpertBits([]int{bits})
		got := batchLogits(t, m, steps)
		for k, p := range prompts {
			ids := m.Tok.Encode(p, true, false)
			s := m.NewState(len(ids) + steps)
			var lg []float32
			for i, tok := range ids {
				lg = s.Forward(tok, i)
			}
			for step := 0; step < steps; step++ {
				sameLogits(t, "Batch vs Forward", [][]float32{got[step*len(prompts)+k]}, [][]float32{lg})
				lg = s.Forward(argmaxID(lg), len(ids)+step)
			}
		}
	}
}
