package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// fakeModel predicts script[pos] after the token at pos (one-hot logits), whatever the
// token; it stands in for a real model so the loop's logic can be tested exactly.
type fakeModel struct {
	script []int32
	logits []float32
	calls  int
}

func (f *fakeModel) forward(tok int32, pos int) []float32 {
	f.calls++
	clear(f.logits)
	f.logits[f.script[pos%len(f.script)]] = 10
	return f.logits
}

// fakeText decodes by table lookup; Flush returns what was given as tail.
type fakeText struct {
	pieces []string
	tail   string
}

func (d *fakeText) Next(id int32) string { return d.pieces[id] }
func (d *fakeText) Flush() string        { t := d.tail; d.tail = ""; return t }

const fakeEOG = 0

func runFake(t *testing.T, pieces []string, script []int32, ctxLen int, prompt []int32, o GenerateOptions) ([]string, Stats, error) {
	t.Helper()
	f := &fakeModel{script: script, logits: make([]float32, len(pieces))}
	var chunks []string
	g := newGenerator(genModel{
		forward: f.forward,
		isEOG:   func(id int32) bool { return id == fakeEOG },
		dec:     &fakeText{pieces: pieces},
		vocab:   len(pieces),
		ctxLen:  ctxLen,
	}, o, func(s string) error { chunks = append(chunks, s); return nil })
	st, err := g.run(context.Background(), prompt)
	return chunks, st, err
}

var pieces = []string{"<eos>", "Hel", "lo wo", "rld", "!", " ", "a", "x", "yb"}

func TestGenerateLengthAndEOG(t *testing.T) {
	// After the 2-token prompt the model writes 1 2 3 4 then EOG.
	script := []int32{9, 1, 2, 3, 4, fakeEOG, 6, 6, 6}
	pieces := append(pieces, "<bos>")
	chunks, st, err := runFake(t, pieces, script, 100, []int32{9, 9}, GenerateOptions{MaxTokens: -1})
	if err != nil {
		t.Fatal(err)
	}
	// script[pos] is predicted at pos, so after prompt positions 0,1 the first sampled
	// token is script[1] = 1.
	if got := strings.Join(chunks, ""); got != "Hello world!" {
		t.Fatalf("text %q", got)
	}
	if st.StopReason != StopEOG || st.GenTokens != 4 || st.PromptTokens != 2 {
		t.Fatalf("stats %+v", st)
	}
	_, st, _ = runFake(t, pieces, script, 100, []int32{9, 9}, GenerateOptions{MaxTokens: 2})
	if st.StopReason != StopLength || st.GenTokens != 2 {
		t.Fatalf("MaxTokens 2: stats %+v", st)
	}
	chunks, st, _ = runFake(t, pieces, script, 100, []int32{9, 9}, GenerateOptions{MaxTokens: 0})
	if st.StopReason != StopLength || st.GenTokens != 0 || len(chunks) != 0 {
		t.Fatalf("MaxTokens 0: stats %+v chunks %q", st, chunks)
	}
}

func TestGenerateContextFull(t *testing.T) {
	script := []int32{6}
	// ctx 5, prompt 2: positions 2,3,4 take generated tokens, and the token sampled after
	// position 4 is still returned, so 4 tokens.
	chunks, st, err := runFake(t, pieces, script, 5, []int32{6, 6}, GenerateOptions{MaxTokens: -1})
	if err != nil {
		t.Fatal(err)
	}
	if st.StopReason != StopLength || st.GenTokens != 4 || strings.Join(chunks, "") != "aaaa" {
		t.Fatalf("stats %+v chunks %q", st, chunks)
	}
	if _, _, err := runFake(t, pieces, script, 5, make([]int32, 6), GenerateOptions{}); err == nil {
		t.Fatal("prompt longer than context: want error")
	}
	if _, _, err := runFake(t, pieces, script, 5, nil, GenerateOptions{}); err == nil {
		t.Fatal("empty prompt: want error")
	}
}

func TestGenerateStopStrings(t *testing.T) {
	script := []int32{1, 2, 3, 4, 4}
	cases := []struct {
		stop   []string
		chunks []string
		reason string
	}{
		// "o w" spans tokens 1 and 2: "Hel" + "lo wo"; nothing of it may appear.
		{[]string{"o w"}, []string{"Hel", "l"}, StopEOG},
		// Spanning three tokens; "l" and "lo wo" are held while they could begin "lo world".
		{[]string{"lo world"}, []string{"He", "l"}, StopEOG},
		// A held prefix that turns out not to match is released with the next text.
		{[]string{"ld?"}, []string{"He", "l", "lo wo", "r", "ld", "!"}, StopLength},
		// The earliest of several stop strings wins.
		{[]string{"rld", "wor"}, []string{"Hel", "lo "}, StopEOG},
		// A stop string at the very start of a token.
		{[]string{"Hel"}, nil, StopEOG},
	}
	for _, c := range cases {
		chunks, st, err := runFake(t, pieces, script, 100, []int32{1}, GenerateOptions{MaxTokens: 4, Stop: c.stop})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(chunks, "|") != strings.Join(c.chunks, "|") || st.StopReason != c.reason {
			t.Errorf("stop %q: chunks %q reason %s, want %q %s", c.stop, chunks, st.StopReason, c.chunks, c.reason)
		}
	}
}

func TestGenerateFlush(t *testing.T) {
	f := &fakeModel{script: []int32{6, 6, fakeEOG}, logits: make([]float32, len(pieces))}
	var out strings.Builder
	g := newGenerator(genModel{
		forward: f.forward, isEOG: func(id int32) bool { return id == fakeEOG },
		dec: &fakeText{pieces: pieces, tail: "\ufffd"}, vocab: len(pieces), ctxLen: 10,
	}, GenerateOptions{MaxTokens: -1, Stop: []string{"a\ufffdz"}}, func(s string) error { out.WriteString(s); return nil })
	if _, err := g.run(context.Background(), []int32{6}); err != nil {
		t.Fatal(err)
	}
	// "a" is held (it could start the stop string) until the flush shows it does not.
	if out.String() != "aa\ufffd" {
		t.Fatalf("got %q", out.String())
	}
}

func TestGenerateErrors(t *testing.T) {
	boom := errors.New("boom")
	f := &fakeModel{script: []int32{6}, logits: make([]float32, len(pieces))}
	m := genModel{forward: f.forward, isEOG: func(int32) bool { return false }, dec: &fakeText{pieces: pieces}, vocab: len(pieces), ctxLen: 100}
	n := 0
	g := newGenerator(m, GenerateOptions{MaxTokens: -1}, func(string) error {
		if n++; n == 3 {
			return boom
		}
		return nil
	})
	if _, err := g.run(context.Background(), []int32{1}); !errors.Is(err, boom) {
		t.Fatalf("emit error: got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g = newGenerator(m, GenerateOptions{MaxTokens: -1}, func(string) error {
		if n++; n == 5 {
			cancel()
		}
		return nil
	})
	st, err := g.run(ctx, []int32{1})
	if !errors.Is(err, context.Canceled) || st.GenTokens > 10 {
		t.Fatalf("cancel: got %v after %d tokens", err, st.GenTokens)
	}
}

// TestGenerateNoAllocsPerToken runs generations of 10 and 1000 tokens: equal allocation
// counts mean the per-token loop allocates nothing (setup allocations cancel out).
func TestGenerateNoAllocsPerToken(t *testing.T) {
	for _, o := range []GenerateOptions{
		{Sampler: SamplerOptions{}},
		{Sampler: DefaultSamplerOptions(), Stop: []string{"</end>", "\n\n"}},
		{Sampler: SamplerOptions{Temperature: 1, RepeatPenalty: 1.3, TopK: 3}},
	} {
		pieces := []string{"<eos>", "a", " b", "c\n", "\n", "</", "e"}
		f := &fakeModel{script: []int32{1, 2, 3, 5, 1, 6, 2}, logits: make([]float32, len(pieces))}
		m := genModel{forward: f.forward, isEOG: func(id int32) bool { return id == fakeEOG }, dec: &fakeText{pieces: pieces}, vocab: len(pieces), ctxLen: 1 << 20}
		nop := func(string) error { return nil }
		allocs := func(n int) float64 {
			o := o
			o.MaxTokens = n
			return testing.AllocsPerRun(5, func() {
				g := newGenerator(m, o, nop)
				if st, err := g.run(context.Background(), []int32{1}); err != nil || st.GenTokens != n {
					t.Fatalf("%v %+v", err, st)
				}
			})
		}
		if a, b := allocs(10), allocs(1000); a != b {
			t.Errorf("%+v: %v allocations for 10 tokens, %v for 1000", o, a, b)
		}
	}
}
