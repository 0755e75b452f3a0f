package engine

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func randomLogits(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(r.NormFloat64() * 3)
	}
	return l
}

func argmax(l []float32) int32 {
	best := 0
	for i, v := range l {
		if v > l[best] {
			best = i
		}
	}
	return int32(best)
}

func TestSampleGreedyIsArgmax(t *testing.T) {
	for seed := range uint64(20) {
		l := randomLogits(1000, seed)
		s := NewSampler(len(l), 1024, SamplerOptions{Temperature: 0, TopK: 40, TopP: 0.9, MinP: 0.1})
		if got, want := s.Sample(l), argmax(l); got != want {
			t.Fatalf("seed %d: greedy %d, argmax %d", seed, got, want)
		}
	}
	// Ties go to the lowest id.
	s := NewSampler(4, 1024, SamplerOptions{})
	if got := s.Sample([]float32{1, 3, 3, 2}); got != 1 {
		t.Fatalf("tie: got %d want 1", got)
	}
}

func TestSampleTopK1IsGreedy(t *testing.T) {
	for _, temp := range []float32{0.1, 0.8, 1, 5, 100} {
		s := NewSampler(5000, 1024, SamplerOptions{Temperature: temp, TopK: 1, Seed: 7})
		for seed := range uint64(10) {
			l := randomLogits(5000, seed+100)
			if got, want := s.Sample(l), argmax(l); got != want {
				t.Fatalf("temp %v seed %d: top-k 1 gave %d, argmax %d", temp, seed, got, want)
			}
		}
	}
}

func TestSampleSeedReproduces(t *testing.T) {
	o := SamplerOptions{Temperature: 1.2, TopK: 50, TopP: 0.95, MinP: 0.01, RepeatPenalty: 1.1, Seed: 42}
	run := func() []int32 {
		s := NewSampler(2000, 1024, o)
		var out []int32
		for i := range uint64(200) {
			out = append(out, s.Sample(randomLogits(2000, i)))
		}
		return out
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Fatal("same seed gave different tokens")
	}
	o.Seed = 43
	if c := run(); slices.Equal(a, c) {
		t.Fatal("different seeds gave identical 200-token sequences")
	}
	// Reset restores the initial stream.
	s := NewSampler(2000, 1024, o)
	first := s.Sample(randomLogits(2000, 0))
	s.Sample(randomLogits(2000, 1))
	s.Reset()
	if again := s.Sample(randomLogits(2000, 0)); again != first {
		t.Fatalf("after Reset got %d, want %d", again, first)
	}
}

// TestSampleFrequencies draws from a known 4-token distribution and checks the empirical
// frequencies: a wrong softmax, temperature or draw would move them well outside tolerance.
func TestSampleFrequencies(t *testing.T) {
	want := []float64{0.1, 0.2, 0.3, 0.4}
	logits := make([]float32, 4)
	for i, p := range want {
		logits[i] = float32(math.Log(p)) + 5 // a shift must not matter
	}
	const n = 200000
	check := func(name string, o SamplerOptions, want []float64) {
		t.Helper()
		s := NewSampler(4, 1024, o)
		counts := make([]int, 4)
		for range n {
			counts[s.Sample(logits)]++
		}
		for i, p := range want {
			got := float64(counts[i]) / n
			// 5 standard deviations of a binomial proportion, plus a hair.
			tol := 5*math.Sqrt(p*(1-p)/n) + 1e-4
			if math.Abs(got-p) > tol {
				t.Errorf("%s: token %d frequency %.4f, want %.4f ± %.4f", name, i, got, p, tol)
			}
		}
	}
	check("temp 1", SamplerOptions{Temperature: 1, Seed: 1}, want)
	// Temperature 0.5 squares the probabilities before renormalising.
	var sq []float64
	var z float64
	for _, p := range want {
		sq = append(sq, p*p)
		z += p * p
	}
	for i := range sq {
		sq[i] /= z
	}
	check("temp 0.5", SamplerOptions{Temperature: 0.5, Seed: 2}, sq)
	// Top-k 2 keeps tokens 3 and 2, renormalised: 0.4/0.7 and 0.3/0.7.
	check("top-k 2", SamplerOptions{Temperature: 1, TopK: 2, Seed: 3}, []float64{0, 0, 3.0 / 7, 4.0 / 7})
}

func TestSampleTopPMinPExclude(t *testing.T) {
	// probabilities 0.5, 0.25, 0.15, 0.1
	probs := []float64{0.5, 0.25, 0.15, 0.1}
	logits := make([]float32, 4)
	for i, p := range probs {
		logits[i] = float32(math.Log(p))
	}
	draw := func(o SamplerOptions) map[int32]bool {
		s := NewSampler(4, 1024, o)
		seen := map[int32]bool{}
		for range 20000 {
			seen[s.Sample(logits)] = true
		}
		return seen
	}
	// top-p 0.7: 0.5 < 0.7 <= 0.75, so tokens 0 and 1 only.
	seen := draw(SamplerOptions{Temperature: 1, TopP: 0.7, Seed: 1})
	if !seen[0] || !seen[1] || seen[2] || seen[3] {
		t.Errorf("top-p 0.7 drew %v, want exactly {0,1}", seen)
	}
	// top-p 0.76 needs token 2 too.
	seen = draw(SamplerOptions{Temperature: 1, TopP: 0.76, Seed: 1})
	if !seen[2] || seen[3] {
		t.Errorf("top-p 0.76 drew %v, want {0,1,2}", seen)
	}
	// min-p 0.25: threshold 0.125, drops token 3 (0.1) only.
	seen = draw(SamplerOptions{Temperature: 1, MinP: 0.25, Seed: 1})
	if !seen[0] || !seen[1] || !seen[2] || seen[3] {
		t.Errorf("min-p 0.25 drew %v, want {0,1,2}", seen)
	}
	// min-p 0.6: threshold 0.3, only token 0; even at a huge temperature.
	seen = draw(SamplerOptions{Temperature: 50, MinP: 0.6, Seed: 1})
	if len(seen) != 1 || !seen[0] {
		t.Errorf("min-p 0.6 drew %v, want {0}", seen)
	}
	// The filters judge untempered probabilities: temperature is applied after them.
	seen = draw(SamplerOptions{Temperature: 100, TopP: 0.7, TopK: 3, Seed: 1})
	if seen[2] || seen[3] {
		t.Errorf("top-p 0.7 at temp 100 drew %v, want {0,1}", seen)
	}
}

func TestSampleRepeatPenalty(t *testing.T) {
	logits := []float32{2.0, 1.9, -1, -1.05}
	s := NewSampler(4, 1024, SamplerOptions{RepeatPenalty: 1.1, RepeatLastN: DefaultRepeatLastN})
	if got := s.Sample(logits); got != 0 { // history empty
		t.Fatalf("got %d want 0", got)
	}
	// Token 0 is now in the history: 2.0/1.1 = 1.82 < 1.9.
	if got := s.Sample(logits); got != 1 {
		t.Fatalf("with 0 penalised got %d want 1", got)
	}
	// Negative logits are multiplied: accepting token 2 makes it -1.1 < -1.05.
	l2 := []float32{-1, -1.05}
	s2 := NewSampler(2, 1024, SamplerOptions{RepeatPenalty: 1.1, RepeatLastN: DefaultRepeatLastN})
	s2.Accept(0)
	s2.Accept(0) // repeats are penalised once, like llama.cpp
	if got := s2.Sample(l2); got != 1 {
		t.Fatalf("negative logit: got %d want 1", got)
	}
	// The window forgets: with RepeatLastN 2, token 0 falls out after two newer tokens.
	s3 := NewSampler(4, 1024, SamplerOptions{RepeatPenalty: 1.1, RepeatLastN: 2})
	s3.Accept(0)
	s3.Accept(2)
	s3.Accept(3)
	if got := s3.Sample(logits); got != 0 {
		t.Fatalf("after window slid got %d want 0", got)
	}
	// The caller's logits are not modified.
	if logits[0] != 2.0 {
		t.Fatalf("logits modified: %v", logits)
	}
}

func TestSelectTop(t *testing.T) {
	for _, n := range []int{1, 2, 3, 10, 100, 1001} {
		for k := 1; k <= n; k = k*2 + 1 {
			l := randomLogits(n, uint64(n*1000+k))
			if n > 10 { // duplicates exercise the id tie-break
				for i := 0; i < n; i += 7 {
					l[i] = l[0]
				}
			}
			c := make([]candidate, n)
			for i := range c {
				c[i] = candidate{id: int32(i), logit: l[i]}
			}
			ref := slices.Clone(c)
			slices.SortFunc(ref, byLogitDesc)
			selectTop(c, k)
			got := slices.Clone(c[:k])
			slices.SortFunc(got, byLogitDesc)
			if !slices.Equal(got, ref[:k]) {
				t.Fatalf("n %d k %d: selectTop wrong", n, k)
			}
		}
	}
}

func TestSampleNoAllocs(t *testing.T) {
	l := randomLogits(32000, 9)
	for _, o := range []SamplerOptions{
		{},
		DefaultSamplerOptions(),
		{Temperature: 0.7, TopP: 0.9, RepeatPenalty: 1.2, Seed: 3},
		{Temperature: 1, MinP: 0.05},
	} {
		s := NewSampler(len(l), 1024, o)
		if a := testing.AllocsPerRun(50, func() { s.Sample(l) }); a != 0 {
			t.Errorf("%+v: %v allocations per Sample", o, a)
		}
	}
}

func BenchmarkSampleDefault(b *testing.B) {
	l := randomLogits(151936, 9)
	s := NewSampler(len(l), 1024, DefaultSamplerOptions())
	for b.Loop() {
		s.Sample(l)
	}
}

// TestTopKWithPenalty compares the streaming top-k against a full sort of the penalised
// logits, with penalties above and below 1 (which move tokens down and up).
func TestTopKWithPenalty(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for trial := range 200 {
		n := 200 + r.IntN(2000)
		l := randomLogits(n, uint64(trial))
		pen := float32(0.5 + r.Float64()*1.5)
		k := 1 + r.IntN(20)
		s := NewSampler(n, 1024, SamplerOptions{Temperature: 1, TopK: k, RepeatPenalty: pen, RepeatLastN: 16})
		hist := make([]int32, r.IntN(40))
		for i := range hist {
			hist[i] = int32(r.IntN(n))
			if i > 0 && r.IntN(3) == 0 {
				hist[i] = hist[i-1] // repeats are penalised once
			}
			s.Accept(hist[i])
		}
		got := slices.Clone(s.topK(l, k))

		ref := make([]candidate, n)
		for i := range ref {
			ref[i] = candidate{id: int32(i), logit: l[i]}
		}
		done := map[int32]bool{}
		for _, id := range hist[max(0, len(hist)-16):] {
			if !done[id] {
				done[id] = true
				ref[id].logit = s.penalized(ref[id].logit)
			}
		}
		slices.SortFunc(ref, byLogitDesc)
		for i := range got {
			got[i].p = 0
		}
		if !slices.Equal(got, ref[:k]) {
			t.Fatalf("trial %d (n %d k %d penalty %v): got %v want %v", trial, n, k, pen, got, ref[:k])
		}
	}
}

func TestSamplerOptionsValidate(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	ok := []SamplerOptions{
		{RepeatPenalty: 1},
		DefaultSamplerOptions(),
		{Temperature: 0, TopK: -1, TopP: 1, MinP: 1, RepeatPenalty: 0.5, RepeatLastN: -1},
		{Temperature: 5, TopK: 1 << 30, TopP: 0, MinP: 0, RepeatPenalty: 3, RepeatLastN: 1 << 40},
	}
	for _, o := range ok {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	base := DefaultSamplerOptions()
	bad := []struct {
		field string
		set   func(*SamplerOptions)
	}{
		{"temperature", func(o *SamplerOptions) { o.Temperature = -0.1 }},
		{"temperature", func(o *SamplerOptions) { o.Temperature = nan }},
		{"temperature", func(o *SamplerOptions) { o.Temperature = inf }},
		{"top_k", func(o *SamplerOptions) { o.TopK = -2 }},
		{"top_p", func(o *SamplerOptions) { o.TopP = 2 }},
		{"top_p", func(o *SamplerOptions) { o.TopP = nan }},
		{"top_p", func(o *SamplerOptions) { o.TopP = -0.5 }},
		{"min_p", func(o *SamplerOptions) { o.MinP = 1.5 }},
		{"min_p", func(o *SamplerOptions) { o.MinP = nan }},
		{"repeat_penalty", func(o *SamplerOptions) { o.RepeatPenalty = 0 }},
		{"repeat_penalty", func(o *SamplerOptions) { o.RepeatPenalty = -1 }},
		{"repeat_penalty", func(o *SamplerOptions) { o.RepeatPenalty = inf }},
		{"repeat_last_n", func(o *SamplerOptions) { o.RepeatLastN = -2 }},
	}
	for _, c := range bad {
		o := base
		c.set(&o)
		err := o.Validate()
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Field != c.field {
			t.Errorf("%+v: got %v, want an OptionError for %s", o, err, c.field)
		}
	}
}

// TestSamplerSurvivesInvalidOptions: the sampler itself never panics nor allocates by an
// option's size, whatever Validate would have said (a min-p above 1 once crashed the
// server's scheduler, a huge repeat window exhausted memory).
func TestSamplerSurvivesInvalidOptions(t *testing.T) {
	l := randomLogits(500, 3)
	for _, o := range []SamplerOptions{
		{Temperature: 1, MinP: 2},
		{Temperature: 1, MinP: 2, TopK: 5},
		{Temperature: 0.5, MinP: float32(math.Inf(1)), TopP: 0.5},
		{Temperature: 1, RepeatPenalty: 1.1, RepeatLastN: 1 << 40},
		{Temperature: 1, RepeatPenalty: 1.1, RepeatLastN: -1},
		{Temperature: float32(math.NaN()), TopP: float32(math.NaN()), MinP: float32(math.NaN())},
	} {
		s := NewSampler(len(l), 300, o)
		if len(s.hist) > 300 {
			t.Errorf("%+v: history of %d tokens for a context of 300", o, len(s.hist))
		}
		for range 20 {
			if id := s.Sample(l); id < 0 || int(id) >= len(l) {
				t.Fatalf("%+v: token %d outside the vocabulary", o, id)
			}
		}
	}
	// min-p above 1 keeps the single best token, as llama.cpp's min_keep does.
	s := NewSampler(len(l), 300, SamplerOptions{Temperature: 1, MinP: 3})
	best := NewSampler(len(l), 300, SamplerOptions{}).Sample(l)
	if got := s.Sample(l); got != best {
		t.Errorf("min-p 3 drew %d, want the argmax %d", got, best)
	}
}

func FuzzSamplerOptions(f *testing.F) {
	f.Add(float32(0.8), 40, float32(0.95), float32(0.05), float32(1.1), 64, uint64(1))
	f.Add(float32(1), 0, float32(0), float32(2), float32(1.1), 1<<40, uint64(2))
	f.Add(float32(math.NaN()), -5, float32(math.Inf(1)), float32(-1), float32(0), -1, uint64(3))
	l := randomLogits(300, 11)
	f.Fuzz(func(t *testing.T, temp float32, k int, p, mp, pen float32, lastN int, seed uint64) {
		o := SamplerOptions{Temperature: temp, TopK: k, TopP: p, MinP: mp, RepeatPenalty: pen, RepeatLastN: lastN, Seed: seed}
		_ = o.Validate()
		s := NewSampler(len(l), 64, o)
		for range 8 {
			if id := s.Sample(l); id < 0 || int(id) >= len(l) {
				t.Fatalf("%+v: token %d", o, id)
			}
		}
	})
}
