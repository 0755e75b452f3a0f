package engine

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mole-llm/mole/loader/sharedmodels"
)

// TestKJVGGUF runs llama.cpp's own conversions of kjv-moe: arch "llama" with permuted
// q/k rows (interleaved RoPE) and stacked experts, in F16, Q8_0 and Q4_0.
func TestKJVGGUF(t *testing.T) {
	ref := readKJVReference(t)
	moses := ref.Prompts[1] // "And the LORD said unto Moses,", the prompt SOURCE.txt reports
	for _, c := range []struct {
		file    string
		logitTo float64 // tolerance on the last logits of every prompt vs the F32 reference
	}{
		{"kjv-moe-F16.gguf", 0.02},
		// Q8_0 and Q4_0 round the activations to Q8_0 blocks before each product, as
		// llama.cpp does (kernels.QuantizeQ8_0Act): most of their distance to F32.
		{"kjv-moe-Q8_0.gguf", 0.35},
		{"kjv-moe-Q4_0-pure.gguf", 3},
	} {
		t.Run(c.file, func(t *testing.T) {
			m := openTestModel(t, filepath.Join("kjv-moe-gguf", c.file))
			if m.Config.Family != "mixtral" || m.Config.RopeNeoX {
				t.Fatalf("config %+v", m.Config)
			}
			s := m.NewState(256)
			for _, p := range ref.Prompts {
				var logits []float32
				for i, tok := range p.IDs {
					logits = s.Forward(tok, i)
				}
				var d float64
				for i, v := range p.LastLogits {
					d = math.Max(d, math.Abs(float64(logits[i])-v))
				}
				t.Logf("%q: last logits max abs diff vs F32 reference %.3g", p.Text, d)
				if d > c.logitTo {
					t.Errorf("%q: logits differ by %g (> %g)", p.Text, d, c.logitTo)
				}
			}
			if !strings.Contains(c.file, "Q4_0") {
				got := greedy(s, moses.IDs, 32)
				if !slices.Equal(got, moses.Greedy.IDs) {
					t.Errorf("greedy\n got %v\nwant %v", got, moses.Greedy.IDs)
				}
				return
			}
			// llama.cpp's Q4_0 continuation (SOURCE.txt) leaves the F32 one at token 18.
			// llama.cpp also rounds activations to 8 bits before its Q4_0 dot products,
			// so a later near-tie may legitimately go the other way: the tokens must
			// agree up to the first difference, which must come after token 18 and be a
			// near-tie (margin < 0.05) between mole's choice and llama.cpp's.
			want := " Speak unto the children of Israel, and say unto them, Thus saith the LORD of hosts, the God of Israel, the God of Israel;"
			if m.Tok == nil {
				t.Fatal("no tokenizer")
			}
			wantIDs := m.Tok.Encode(moses.Text+want, false, false)[len(moses.IDs)-1:]
			logits := s.Forward(moses.IDs[0], 0)
			for i, tok := range moses.IDs[1:] {
				logits = s.Forward(tok, i+1)
			}
			for i, w := range wantIDs {
				got := argmaxID(logits)
				if got != w {
					margin := logits[got] - logits[w]
					t.Logf("Q4_0: first difference from llama.cpp at token %d: %q (mole) vs %q (llama.cpp), margin %.4f",
						i, m.Tok.Token(got), m.Tok.Token(w), margin)
					if i <= 18 || margin >= 0.05 {
						t.Errorf("Q4_0 continuation differs from llama.cpp's at token %d by margin %v", i, margin)
					}
					return
				}
				logits = s.Forward(got, len(moses.IDs)+i)
			}
		})
	}
}

// TestStories260K checks the dense llama path (GGUF, F32, tied-less output) against
// Karpathy's documented greedy story, and the two MoE re-packings of the same model.
func TestStories260K(t *testing.T) {
	dir := sharedmodels.Find(t)
	data, err := os.ReadFile(filepath.Join(dir, "stories260K", "EXPECTED.txt"))
	if err != nil {
		t.Skipf("../shared/models/stories260K/EXPECTED.txt not found: %v", err)
	}
	line := regexp.MustCompile(`(?m)^tokens: (.*)$`).FindStringSubmatch(string(data))
	textLine := regexp.MustCompile(`(?m)^text: (".*")$`).FindStringSubmatch(string(data))
	if line == nil || textLine == nil {
		t.Fatal("EXPECTED.txt: no tokens:/text: line")
	}
	var want []int32
	for _, f := range strings.Fields(line[1]) {
		v, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, int32(v))
	}
	wantText, err := strconv.Unquote(textLine[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"stories260K/stories260K.gguf", "stories260K-moe/stories260K-moe-split4-top4.gguf", "stories260K-moe/stories260K-moe-dup4-top2.gguf"} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			m := openTestModel(t, file)
			s := m.NewState(len(want) + 1)
			// Position 0 is BOS; the 80 expected tokens are the argmax at positions 0..79.
			got := greedy(s, []int32{1}, len(want))
			if !slices.Equal(got, want) {
				t.Fatalf("greedy from BOS\n got %v\nwant %v", got, want)
			}
			if m.Tok != nil {
				if text := m.Tok.Decode(got); text != wantText {
					t.Errorf("decoded %q\nwant %q", text, wantText)
				}
			}
		})
	}
}
