package engine

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
)

// driveSequence steps q (started in s) through b in prompt chunks of chunk tokens until it
// ends, and returns its text and a copy of every logit vector it sampled from.
func driveSequence(t *testing.T, b *Batch, q *Sequence, s *State, chunk int, text *strings.Builder) [][]float32 {
	t.Helper()
	var items []BatchItem
	var seen [][]float32
	for !q.Done() {
		items = q.Items(items[:0], s, chunk)
		if len(items) == 0 {
			t.Fatal("a sequence that is not done asked for nothing")
		}
		b.Forward(items)
		var logits []float32
		if j := len(items) - 1; items[j].Wants {
			logits = b.Logits(j)
			seen = append(seen, slices.Clone(logits))
		}
		if _, err := q.Advance(logits); err != nil {
			t.Fatal(err)
		}
	}
	return seen
}

// TestSequenceCachedExact: a sequence started with NewCachedSequence in a State that holds
// an earlier turn evaluates only the prompt tokens past the held prefix, and samples from
// logits bit for bit equal to a cold NewSequence's, so its text and stats (but for
// CachedTokens) are the cold run's and Generate's. The repetition penalty is on, so the
// kept tokens must be in the sampler's history for the texts to agree.
func TestSequenceCachedExact(t *testing.T) {
	m := loadDefaultModel(t)
	const ctx = 256
	b := m.NewBatch(8, ctx)
	p1 := m.Tok.Encode("And the LORD said unto Moses, Speak unto the children of Israel", true, false)
	o1 := GenerateOptions{MaxTokens: 12}
	more := m.Tok.Encode(" And Moses said unto the LORD", false, false)
	o2 := GenerateOptions{MaxTokens: 16, Sampler: SamplerOptions{RepeatPenalty: 1.5, RepeatLastN: 64}}

	// turn1 returns a State holding the first turn, as a server slot keeps it.
	turn1 := func() (*State, Stats) {
		s := m.NewState(ctx)
		q, err := m.NewSequence(s, p1, o1, func(string) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		driveSequence(t, b, q, s, 5, &strings.Builder{})
		st := q.Stats()
		if st.StopReason != StopLength || st.CachedTokens != 0 {
			t.Fatalf("first turn: %+v, want a length stop and nothing cached", st)
		}
		// The last sampled token ends the turn without being evaluated.
		if got, want := len(s.Cached()), len(p1)+st.GenTokens-1; got != want || !slices.Equal(s.Cached()[:len(p1)], p1) {
			t.Fatalf("first turn holds %d tokens, want %d starting with the prompt", got, want)
		}
		return s, st
	}
	_, st1 := turn1()
	held := len(p1) + st1.GenTokens - 1

	cases := []struct {
		name   string
		prompt func(cached []int32) []int32
		keep   int // tokens expected to be reused
	}{
		{"next turn", func(c []int32) []int32 { return append(slices.Clone(c), more...) }, held},
		{"same prompt", func([]int32) []int32 { return slices.Clone(p1) }, len(p1) - 1},
		{"prefix of the held tokens", func(c []int32) []int32 { return slices.Clone(c[:len(p1)+3]) }, len(p1) + 2},
		{"diverges in the prompt", func([]int32) []int32 {
			return append(slices.Clone(p1[:len(p1)-2]), more...)
		}, len(p1) - 2},
	}
	for _, c := range cases {
		s, _ := turn1()
		p2 := c.prompt(s.Cached())
		if c.name == "diverges in the prompt" && more[0] == p1[len(p1)-2] {
			t.Fatal("the test's divergent prompt does not diverge")
		}
		var warm, cold strings.Builder
		q, err := m.NewCachedSequence(s, p2, o2, func(x string) error { warm.WriteString(x); return nil })
		if err != nil {
			t.Fatal(err)
		}
		wl := driveSequence(t, b, q, s, 5, &warm)
		ws := q.Stats()

		cs := m.NewState(ctx)
		qc, err := m.NewSequence(cs, p2, o2, func(x string) error { cold.WriteString(x); return nil })
		if err != nil {
			t.Fatal(err)
		}
		cl := driveSequence(t, b, qc, cs, 5, &cold)
		cst := qc.Stats()

		if ws.CachedTokens != c.keep || cst.CachedTokens != 0 || ws.PromptTokens != len(p2) {
			t.Errorf("%s: cached %d of %d (cold %d), want %d of %d", c.name, ws.CachedTokens, ws.PromptTokens, cst.CachedTokens, c.keep, len(p2))
		}
		if len(wl) != len(cl) || len(wl) == 0 {
			t.Fatalf("%s: sampled from %d logit vectors, cold run %d", c.name, len(wl), len(cl))
		}
		for i := range wl {
			for k := range wl[i] {
				if math.Float32bits(wl[i][k]) != math.Float32bits(cl[i][k]) {
					t.Fatalf("%s: step %d logit %d: %v after reuse, %v cold", c.name, i, k, wl[i][k], cl[i][k])
				}
			}
		}
		var gen strings.Builder
		gst, err := m.Generate(context.Background(), m.NewState(ctx), p2, o2, func(x string) error { gen.WriteString(x); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if warm.String() != cold.String() || warm.String() != gen.String() || ws.GenTokens != gst.GenTokens || ws.StopReason != gst.StopReason {
			t.Errorf("%s: after reuse %q %+v\ncold %q\nGenerate %q %+v", c.name, warm.String(), ws, cold.String(), gen.String(), gst)
		}
	}
}

// TestStateCached: the held prefix grows with in-order writes, drops at a position
// written again, ignores a write past a gap, and is cleared by Reset.
func TestStateCached(t *testing.T) {
	m := loadDefaultModel(t)
	s := m.NewState(32)
	for i, tok := range []int32{1, 5, 9} {
		s.Forward(tok, i)
	}
	if !slices.Equal(s.Cached(), []int32{1, 5, 9}) {
		t.Fatalf("after three tokens: %v", s.Cached())
	}
	s.Forward(7, 1)
	if !slices.Equal(s.Cached(), []int32{1, 7}) || s.CommonPrefix([]int32{1, 7, 9}) != 2 || s.CommonPrefix([]int32{1}) != 1 {
		t.Fatalf("after rewriting position 1: %v", s.Cached())
	}
	s.Forward(3, 5) // over positions 2..4 that hold nothing of this sequence
	if !slices.Equal(s.Cached(), []int32{1, 7}) {
		t.Fatalf("after a write past a gap: %v", s.Cached())
	}
	b := m.NewBatch(4, 32)
	b.Forward([]BatchItem{{State: s, Token: 4, Pos: 2}, {State: s, Token: 6, Pos: 3}, {State: s, Token: 8, Pos: 4, Wants: true}})
	if !slices.Equal(s.Cached(), []int32{1, 7, 4, 6, 8}) {
		t.Fatalf("after a batched chunk: %v", s.Cached())
	}
	s.Reset()
	if len(s.Cached()) != 0 || s.CommonPrefix([]int32{1}) != 0 {
		t.Fatalf("after Reset: %v", s.Cached())
	}
}
