package engine

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mole-llm/mole/loader"
)

// batchModels returns the embedded model and every synthetic family (F32 safetensors, plus
// Q8_0 GGUF of one MoE family so the non-expanding row path is covered).
func batchModels(t *testing.T) map[string]*Model {
	ms := map[string]*Model{"kjv-moe": loadDefaultModel(t)}
	for _, sp := range synthSpecs {
		sm := newSynth(sp, sp.seed)
		dir := t.TempDir()
		sm.writeHF(t, filepath.Join(dir, "hf"), "")
		m := loadModelFile(t, filepath.Join(dir, "hf"))
		ms[sp.family] = m
		if sp.family == "qwen2moe" {
			path := filepath.Join(dir, "q8.gguf")
			if err := WriteGGUF(m, path, loader.Q8_0); err != nil {
				t.Fatal(err)
			}
			ms["qwen2moe-q8_0"] = loadModelFile(t, path)
		}
	}
	return ms
}

// seqTokens gives sequence k a distinct token stream.
func seqTokens(m *Model, k, n int) []int32 {
	v := int32(m.Config.Vocab)
	out := make([]int32, n)
	for i := range out {
		out[i] = (int32(k*7+i*13+3) % (v - 1)) + 1
	}
	return out
}

// runBatched runs the sequences through one Batch in steps: in each step, sequence k
// contributes chunk[k] tokens (a prompt chunk) the first time and one token afterwards, and a
// sequence only starts at step start[k] (joining a batch already in flight). It returns every
// position's logits per sequence.
func runBatched(m *Model, seqs [][]int32, start, chunk []int) [][][]float32 {
	b := m.NewBatch(16, 64)
	states := make([]*State, len(seqs))
	next := make([]int, len(seqs))
	out := make([][][]float32, len(seqs))
	for k := range seqs {
		states[k] = m.NewState(64)
		out[k] = make([][]float32, len(seqs[k]))
	}
	var items []BatchItem
	var owner []int
	for step := 0; ; step++ {
		items, owner = items[:0], owner[:0]
		left := false
		for k, toks := range seqs {
			if step < start[k] || next[k] >= len(toks) {
				left = left || next[k] < len(toks)
				continue
			}
			left = true
			n := 1
			if next[k] == 0 {
				n = chunk[k]
			}
			for ; n > 0 && next[k] < len(toks); n-- {
				items = append(items, BatchItem{State: states[k], Token: toks[next[k]], Pos: next[k], Wants: true})
				owner = append(owner, k)
				next[k]++
			}
		}
		if !left {
			return out
		}
		b.Forward(items)
		for i, it := range items {
			out[owner[i]][it.Pos] = append([]float32(nil), b.Logits(i)...)
		}
	}
}

// TestBatchExact: a sequence's logits do not depend on what else is in its batch (bit for bit),
// and they match State.Forward.
func TestBatchExact(t *testing.T) {
	for name, m := range batchModels(t) {
		t.Run(name, func(t *testing.T) {
			seqs := [][]int32{seqTokens(m, 0, 12), seqTokens(m, 1, 9), seqTokens(m, 2, 14), seqTokens(m, 3, 5)}
			// Alone: one sequence at a time, one token per step.
			var alone [][][]float32
			for k := range seqs {
				alone = append(alone, runBatched(m, seqs[k:k+1], []int{0}, []int{1})[0])
			}
			// Together, with staggered joins and prompt chunks.
			together := runBatched(m, seqs, []int{0, 0, 3, 5}, []int{4, 1, 6, 5})
			for k := range seqs {
				for p := range seqs[k] {
					for i, v := range alone[k][p] {
						if math.Float32bits(v) != math.Float32bits(together[k][p][i]) {
							t.Fatalf("seq %d pos %d logit %d: %v alone, %v in a batch", k, p, i, v, together[k][p][i])
						}
					}
				}
			}
			// Against the single-sequence forward pass.
			var maxd float64
			exact := true
			for k := range seqs {
				ref := runAll(m, seqs[k])
				for p := range ref {
					for i, v := range ref[p] {
						d := math.Abs(float64(v - alone[k][p][i]))
						maxd = max(maxd, d/max(1, math.Abs(float64(v))))
						exact = exact && v == alone[k][p][i]
					}
				}
			}
			t.Logf("batched vs Forward: max relative diff %.3g (identical: %v)", maxd, exact)
			if maxd > 1e-4 {
				t.Errorf("batched logits differ from Forward by %g", maxd)
			}
		})
	}
}

// TestBatchTrace: the router trace of each State sees its own tokens' choices, the same as
// under Forward.
func TestBatchTrace(t *testing.T) {
	m := loadDefaultModel(t)
	toks := seqTokens(m, 5, 6)
	type choice struct {
		layer int
		e0    int32
	}
	var want, got []choice
	s := m.NewState(32)
	s.SetRouterTrace(func(l int, e []int32, _ []float32) { want = append(want, choice{l, e[0]}) })
	for i, tok := range toks {
		s.Forward(tok, i)
	}
	s2, other := m.NewState(32), m.NewState(32)
	s2.SetRouterTrace(func(l int, e []int32, _ []float32) { got = append(got, choice{l, e[0]}) })
	b := m.NewBatch(4, 32)
	for i, tok := range toks {
		b.Forward([]BatchItem{{State: other, Token: 7, Pos: i}, {State: s2, Token: tok, Pos: i, Wants: i == len(toks)-1}})
	}
	if len(got) != len(want) || len(want) != len(toks)*m.Config.NLayer {
		t.Fatalf("trace calls: %d batched, %d Forward", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("trace %d: %v batched, %v Forward", i, got[i], want[i])
		}
	}
	if b.Logits(0) != nil || b.Logits(1) == nil {
		t.Fatal("Logits must be nil exactly for items that did not want them")
	}
}

func TestBatchNoAllocs(t *testing.T) {
	m := loadDefaultModel(t)
	b := m.NewBatch(8, 32)
	var items []BatchItem
	for k := 0; k < 8; k++ {
		items = append(items, BatchItem{State: m.NewState(32), Token: int32(k + 5), Pos: 0, Wants: true})
	}
	b.Forward(items)
	for i := range items {
		items[i].Pos = 1
	}
	if n := testing.AllocsPerRun(10, func() { b.Forward(items) }); n != 0 {
		t.Errorf("Batch.Forward allocates %v times per step", n)
	}
}

// BenchmarkBatchStep measures decode tokens/s of the embedded model with B sequences per
// step; compare ns/token across B.
func BenchmarkBatchStep(b *testing.B) {
	m := loadDefaultModel(b)
	for _, n := range []int{1, 4, 8} {
		b.Run("B="+string(rune('0'+n)), func(b *testing.B) {
			bt := m.NewBatch(n, 128)
			items := make([]BatchItem, n)
			for k := range items {
				items[k] = BatchItem{State: m.NewState(128), Token: int32(k + 5), Wants: true}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for k := range items {
					items[k].Pos = i % 64
				}
				bt.Forward(items)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
		})
	}
}

// TestSequenceMatchesGenerate: Sequences stepped together in one Batch, joining at different
// steps, produce exactly Generate's text and stats for every sampler setting.
func TestSequenceMatchesGenerate(t *testing.T) {
	m := loadDefaultModel(t)
	prompts := []string{"In the beginning", "And the LORD said unto Moses", "Blessed", "For God so loved the world"}
	opts := []GenerateOptions{
		{MaxTokens: 24},
		{MaxTokens: 30, Sampler: SamplerOptions{Temperature: 0.9, TopK: 40, TopP: 0.95, MinP: 0.05, Seed: 7}},
		{MaxTokens: 40, Stop: []string{"LORD", ","}},
		{MaxTokens: 20, Sampler: SamplerOptions{Temperature: 0.7, RepeatPenalty: 1.3, Seed: 3}},
	}
	type out struct {
		text string
		st   Stats
	}
	var want []out
	for i, p := range prompts {
		var sb strings.Builder
		st, err := m.Generate(context.Background(), m.NewState(128), m.Tok.Encode(p, true, false), opts[i], func(s string) error {
			sb.WriteString(s)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, out{sb.String(), st})
	}

	b := m.NewBatch(8, 128)
	texts := make([]strings.Builder, len(prompts))
	seqs := make([]*Sequence, len(prompts))
	states := make([]*State, len(prompts))
	var items []BatchItem
	var owner []int
	for step := 0; ; step++ {
		// Sequence i joins at step 2*i, so prompts are evaluated beside decoding sequences.
		for i := range prompts {
			if seqs[i] == nil && step == 2*i {
				states[i] = m.NewState(128)
				q, err := m.NewSequence(states[i], m.Tok.Encode(prompts[i], true, false), opts[i], func(s string) error {
					texts[i].WriteString(s)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				seqs[i] = q
			}
		}
		items, owner = items[:0], owner[:0]
		for i, q := range seqs {
			if q == nil || q.Done() {
				continue
			}
			n := len(items)
			items = q.Items(items, states[i], 3) // small prompt chunks: several prefill steps
			for range len(items) - n {
				owner = append(owner, i)
			}
		}
		if len(items) == 0 {
			if step > 2*len(prompts) {
				break
			}
			continue
		}
		b.Forward(items)
		for i, q := range seqs {
			if q == nil || q.Done() {
				continue
			}
			var logits []float32
			for j := range items {
				if owner[j] == i && items[j].Wants {
					logits = b.Logits(j)
				}
			}
			if _, err := q.Advance(logits); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, q := range seqs {
		st := q.Stats()
		if texts[i].String() != want[i].text || st.GenTokens != want[i].st.GenTokens ||
			st.PromptTokens != want[i].st.PromptTokens || st.StopReason != want[i].st.StopReason {
			t.Errorf("prompt %d: batched %q %+v\nGenerate %q %+v", i, texts[i].String(), st, want[i].text, want[i].st)
		}
	}
}
