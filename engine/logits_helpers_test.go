package engine

// Helpers shared by the tests that compare logits of decode and batched steps, with and
// without a memory budget. They need no budget themselves, so they build everywhere,
// while the budget's own tests (sched_test.go) run only on Linux.

import (
	"math"
	"path/filepath"
	"testing"
)

// fakeMWQPath writes kjv-moe (embedded) with mwq24 experts of random bits: what is tested
// here is which bytes products read, not quality.
func fakeMWQPath(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kjv-mwq24.gguf")
	writeFakeMWQ(t, loadDefaultModel(t), path)
	return path
}

var schedPrompt = "And the LORD said unto Moses, Speak unto the children of Israel"

// greedyLogits runs the prompt and n greedy steps, returning every step's logits.
func greedyLogits(t *testing.T, m *Model, n int) (toks []int32, logits [][]float32) {
	t.Helper()
	prompt := m.Tok.Encode(schedPrompt, true, false)
	s := m.NewState(len(prompt) + n)
	var lg []float32
	for i, tok := range prompt {
		lg = s.Forward(tok, i)
	}
	for i := 0; i < n; i++ {
		logits = append(logits, append([]float32(nil), lg...))
		next := argmaxID(lg)
		toks = append(toks, next)
		lg = s.Forward(next, len(prompt)+i)
	}
	return toks, logits
}

// batchLogits runs three prompts together through a Batch (prompts first, one token per
// sequence per step after), n greedy steps, returning each step's logits of every sequence.
func batchLogits(t *testing.T, m *Model, n int) [][]float32 {
	t.Helper()
	prompts := []string{schedPrompt, "In the beginning God created", "Blessed are the"}
	b := m.NewBatch(64, 96)
	var states []*State
	var items []BatchItem
	var last []int32
	for _, p := range prompts {
		ids := m.Tok.Encode(p, true, false)
		s := m.NewState(96)
		if traceAll != nil {
			s.SetRouterTrace(traceAll)
		}
		states = append(states, s)
		for i, tok := range ids {
			items = append(items, BatchItem{State: s, Token: tok, Pos: i, Wants: i == len(ids)-1})
		}
		last = append(last, int32(len(ids)))
	}
	var out [][]float32
	for step := 0; step < n; step++ {
		b.Forward(items)
		var next []BatchItem
		k := 0
		for i, it := range items {
			if !it.Wants {
				continue
			}
			lg := b.Logits(i)
			out = append(out, append([]float32(nil), lg...))
			next = append(next, BatchItem{State: states[k], Token: argmaxID(lg), Pos: int(last[k]), Wants: true})
			last[k]++
			k++
		}
		items = next
	}
	return out
}

func sameLogits(t *testing.T, what string, got, want [][]float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d steps, want %d", what, len(got), len(want))
	}
	for i := range got {
		for j := range got[i] {
			if math.Float32bits(got[i][j]) != math.Float32bits(want[i][j]) {
				t.Fatalf("%s: step %d logit %d = %v, resident %v", what, i, j, got[i][j], want[i][j])
			}
		}
	}
}

// traceAll, when set, is installed on the States batchLogits creates (tests only).
var traceAll func(int, []int32, []float32)
