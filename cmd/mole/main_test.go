package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mole-llm/mole/loader/sharedmodels"

	"github.com/mole-llm/mole/engine"
	"github.com/mole-llm/mole/engine/defaultmodel"
	"github.com/mole-llm/mole/loader"
)

// runMole runs the command line in-process and returns the exit status and both streams.
func runMole(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// defaultModel loads the embedded model through the engine, or skips.
func defaultModel(t *testing.T) *engine.Model {
	t.Helper()
	lm, err := defaultmodel.Open()
	if err != nil {
		t.Skipf("embedded default model cannot be opened: %v", err)
	}
	t.Cleanup(func() { lm.Close() })
	m, err := engine.Load(lm)
	if err != nil {
		t.Skipf("embedded default model cannot be loaded: %v", err)
	}
	t.Cleanup(m.Close)
	return m
}

type kjvRef struct {
	Prompts []struct {
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
	} `json:"prompts"`
	HeldoutNLL struct {
		MeanNLL    float64 `json:"mean_nll"`
		Perplexity float64 `json:"perplexity"`
	} `json:"heldout_nll"`
}

func readRef(t *testing.T) kjvRef {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedmodels.Find(t), "kjv-moe", "reference.json"))
	if err != nil {
		t.Skipf("kjv-moe reference.json not found: %v", err)
	}
	var r kjvRef
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTokenizeDefaultModel(t *testing.T) {
	defaultModel(t)
	ref := readRef(t)
	p := ref.Prompts[0]
	if p.Text != "In the beginning" {
		t.Fatalf("reference prompt 0 is %q", p.Text)
	}
	code, out, errOut := runMole(t, "", "tokenize", p.Text)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var want []string
	for _, id := range p.IDs {
		want = append(want, strconv.Itoa(int(id)))
	}
	if out != strings.Join(want, " ")+"\n" {
		t.Fatalf("got %q, want %q", out, strings.Join(want, " "))
	}
	// --no-bos drops the leading 1; --pieces adds a line of quoted pieces.
	code, out, _ = runMole(t, "", "tokenize", "--no-bos", "--pieces", p.Text)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) != 2 || lines[0] != strings.Join(want[1:], " ") || !strings.HasPrefix(lines[1], `"▁I" "n"`) {
		t.Fatalf("--no-bos --pieces: exit %d, output %q", code, out)
	}
}

func TestRunGreedyMatchesEngine(t *testing.T) {
	m := defaultModel(t)
	prompt := "In the beginning"
	var want strings.Builder
	ids := m.Tok.Encode(prompt, m.Tok.AddBOS(), true)
	if _, err := m.Generate(context.Background(), m.NewState(64), ids, engine.GenerateOptions{MaxTokens: 8},
		func(s string) error { want.WriteString(s); return nil }); err != nil {
		t.Fatal(err)
	}
	if want.Len() == 0 {
		t.Fatal("engine generated no text")
	}
	code, out, errOut := runMole(t, "", "run", "-n", "8", "--temp", "0", prompt)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// The text is ended with a newline so the shell prompt starts on its own line.
	if out != want.String()+"\n" {
		t.Fatalf("mole run printed %q, engine greedy gave %q (plus a newline)", out, want.String())
	}
	for _, s := range []string{"load time", "prompt eval", "generation", "tokens/s"} {
		if !strings.Contains(errOut, s) {
			t.Errorf("stderr lacks %q:\n%s", s, errOut)
		}
	}
	// The same prompt from stdin, with the newline echo would add.
	code, out2, errOut := runMole(t, prompt+"\n", "run", "-n", "8", "--temp", "0", "-")
	if code != 0 || out2 != out {
		t.Fatalf("stdin prompt: exit %d, %q vs %q; %s", code, out2, out, errOut)
	}
	// A fixed seed reproduces a sampled run.
	_, a, _ := runMole(t, "", "run", "-n", "12", "--seed", "7", prompt)
	_, b, _ := runMole(t, "", "run", "-n", "12", "--seed", "7", prompt)
	if a != b || a == "" {
		t.Fatalf("--seed 7 twice: %q vs %q", a, b)
	}
}

func TestRunChat(t *testing.T) {
	defaultModel(t)
	// The embedded model is not a chat model; this checks the template path runs end to end.
	code, _, errOut := runMole(t, "", "run", "-n", "4", "--temp", "0", "--system", "Answer briefly.", "Who is Moses?")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestInfoDefaultModel(t *testing.T) {
	defaultModel(t)
	code, out, errOut := runMole(t, "", "info")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// Counts from the kjv-moe README.
	for _, s := range []string{"mixtral", "13,904,128 total", "4,466,944 active per token", "8, 2 used per token", "model.layers.3.block_sparse_moe.gate.weight"} {
		if !strings.Contains(out, s) {
			t.Errorf("info lacks %q:\n%s", s, out)
		}
	}
}

func TestPerplexityKJV(t *testing.T) {
	if testing.Short() {
		t.Skip("4096 tokens; skipped in -short")
	}
	models := sharedmodels.Find(t)
	ref := readRef(t)
	code, out, errOut := runMole(t, "", "perplexity", "-m", filepath.Join(models, "kjv-moe"),
		"-f", filepath.Join(models, "kjv-moe", "heldout.txt"), "--ctx", "256", "--chunks", "16")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	v, ok := strings.CutPrefix(last, "perplexity: ")
	if !ok {
		t.Fatalf("last line %q", last)
	}
	ppl, err := strconv.ParseFloat(v, 64)
	if err != nil {
		t.Fatal(err)
	}
	want := ref.HeldoutNLL.Perplexity
	if math.Abs(ppl-want)/want > 0.005 {
		t.Fatalf("perplexity %.4f, reference %.4f", ppl, want)
	}
	if !strings.Contains(errOut, "[16/16]") {
		t.Errorf("no progress on stderr: %s", errOut)
	}
}

// TestErrors: bad inputs end with one line on stderr naming the problem and status 1.
func TestErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.gguf")
	if err := os.WriteFile(garbage, []byte("GGUF\x03\x00\x00\x00 this is not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(dir, "unknown-arch.gguf")
	w := loader.NewGGUFWriter()
	w.Set("general.architecture", loader.StringValue("frobnicator"))
	if err := w.AddTensor("token_embd.weight", loader.F32, []int{2, 4}, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile(unknown); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no-such-model.gguf")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "-m", missing, "hi"}, missing},
		{[]string{"info", missing}, missing},
		{[]string{"tokenize", "-m", missing, "hi"}, missing},
		{[]string{"perplexity", "-m", missing, "-f", garbage}, missing},
		{[]string{"run", "-m", garbage, "hi"}, garbage},
		{[]string{"info", garbage}, garbage},
		{[]string{"run", "-m", unknown, "hi"}, "frobnicator"},
		{[]string{"perplexity", "-f", filepath.Join(dir, "no-such-text.txt")}, "no-such-text.txt"},
		{[]string{"perplexity"}, "-f FILE"},
		{[]string{"frobnicate"}, "unknown command"},
	}
	for _, c := range cases {
		code, out, errOut := runMole(t, "", c.args...)
		if code != 1 || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q (want status 1 and one line mentioning %q)", c.args, code, errOut, c.want)
		}
		if strings.Contains(c.args[0], "run") && out != "" {
			t.Errorf("%v: stdout %q", c.args, out)
		}
	}
}
