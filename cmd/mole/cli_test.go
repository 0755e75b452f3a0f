package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// longPrompt is more tokens than the embedded model's trained context (512).
var longPrompt = strings.Repeat("In the beginning God created the heaven and the earth. ", 60)

var (
	promptTokensRE = regexp.MustCompile(`prompt eval .* / +(\d+) tokens`)
	genTokensRE    = regexp.MustCompile(`generation .* / +(\d+) tokens .*stop: (.*)`)
	contextRE      = regexp.MustCompile(`, context (\d+),`)
)

// summary parses run's stderr summary: the context reported, prompt and generated tokens
// and the stop reason.
func summary(t *testing.T, stderr string) (ctx, prompt, gen int, stop string) {
	t.Helper()
	c, p, g := contextRE.FindStringSubmatch(stderr), promptTokensRE.FindStringSubmatch(stderr), genTokensRE.FindStringSubmatch(stderr)
	if c == nil || p == nil || g == nil {
		t.Fatalf("no summary in stderr:\n%s", stderr)
	}
	ctx, _ = strconv.Atoi(c[1])
	prompt, _ = strconv.Atoi(p[1])
	gen, _ = strconv.Atoi(g[1])
	return ctx, prompt, gen, strings.TrimSpace(g[2])
}

// TestContextFlags: -c is the KV capacity, up to the trained length (512 for the embedded
// model) without --ctx-extend, past it with the flag and a warning; the context reported
// is the one generation fills.
func TestContextFlags(t *testing.T) {
	m := defaultModel(t)
	trained := m.Config.CtxLen
	if trained != 512 {
		t.Skipf("embedded model trained on %d tokens; the cases assume 512", trained)
	}

	// Too long without the flag: one line naming the trained length and the flag.
	for _, args := range [][]string{
		{"run", "-c", "2000", "x"},
		{"run", "--ctx", "2000", "x"}, // the old spelling is an alias
		{"perplexity", "-c", "600", "-f", "/dev/null"},
		{"serve", "--port", "0", "--ctx-size", "4096"},
	} {
		code, _, errOut := runMole(t, "", args...)
		if code != 1 || !strings.Contains(errOut, "trained on a context of 512") || !strings.Contains(errOut, "--ctx-extend") ||
			strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want 1 and one line naming 512 and --ctx-extend", args, code, errOut)
		}
	}

	// The reported context is the KV capacity: with -n -1 the prompt and the generated
	// tokens fill it exactly, below and (with the flag) beyond the trained length.
	for _, c := range []struct {
		args []string
		ctx  int
		warn bool
	}{
		{[]string{"-c", "48"}, 48, false},
		{nil, 512, false}, // default: min(trained, 4096)
		{[]string{"-c", "600", "--ctx-extend"}, 600, true},
	} {
		args := append([]string{"run", "--temp", "0", "-n", "-1"}, c.args...)
		code, _, errOut := runMole(t, "", append(args, "In the beginning")...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		got, prompt, gen, stop := summary(t, errOut)
		// Every position holds a prompt or a generated token except the last generated
		// one, which is printed but never evaluated.
		if got != c.ctx || prompt+gen-1 != c.ctx || stop != "length" {
			t.Errorf("%v: context %d, %d prompt + %d generated tokens, stop %q; want context %d filled", args, got, prompt, gen, stop, c.ctx)
		}
		warned := strings.Contains(errOut, "warning: context 600 is beyond the model's trained context of 512")
		if warned != c.warn {
			t.Errorf("%v: warning printed %v, want %v:\n%s", args, warned, c.warn, errOut)
		}
	}

	// A context whose KV cache cannot fit is an error, not an allocation that kills the
	// process.
	code, _, errOut := runMole(t, "", "run", "-c", "2000000000", "--ctx-extend", "-p", "x")
	if code != 1 || !strings.Contains(errOut, "--ctx-size 2000000000: the KV cache needs") {
		t.Errorf("-c 2e9 --ctx-extend: exit %d, %q", code, errOut)
	}

	// A prompt longer than the trained length: refused with a hint, accepted with the flag.
	code, _, errOut = runMole(t, "", "run", "-n", "2", "-c", "2048", longPrompt)
	if code != 1 || !strings.Contains(errOut, "--ctx-extend") {
		t.Errorf("long prompt without --ctx-extend: exit %d, %q", code, errOut)
	}
	code, _, errOut = runMole(t, "", "run", "-n", "2", "-p", longPrompt)
	if code != 1 || !strings.Contains(errOut, "more than the context of 512") || !strings.Contains(errOut, "--ctx-extend") {
		t.Errorf("long prompt at the default context: exit %d, %q", code, errOut)
	}
	code, _, errOut = runMole(t, "", "run", "-n", "2", "--temp", "0", "-c", "2048", "--ctx-extend", "-p", longPrompt)
	if code != 0 {
		t.Fatalf("long prompt with --ctx-extend: exit %d: %s", code, errOut)
	}
	if got, prompt, _, _ := summary(t, errOut); got != 2048 || prompt <= 512 {
		t.Errorf("long prompt with --ctx-extend: context %d, %d prompt tokens", got, prompt)
	}
}

// TestServeContextExtend: serve reports the context it uses, beyond the trained length
// with --ctx-extend, and the server takes a prompt that needs it.
func TestServeContextExtend(t *testing.T) {
	defaultModel(t)
	addr, errb, stop := startServe(t, "--port", "0", "-np", "1", "-c", "1024", "--ctx-extend")
	defer stop()
	if !strings.Contains(errb.String(), "1 parallel, context 1024") || !strings.Contains(errb.String(), "warning: context 1024") {
		t.Errorf("startup lines:\n%s", errb.String())
	}
	body := `{"prompt":` + strconv.Quote(longPrompt) + `,"max_tokens":2,"temperature":0}`
	resp, err := http.Post(addr+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("prompt past the trained length: %d %s", resp.StatusCode, b)
	}
}

// syncBuffer is a strings.Builder safe to read while serve writes to it.
type syncBuffer struct {
	ch chan struct{}
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.ch <- struct{}{}
	defer func() { <-s.ch }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.ch <- struct{}{}
	defer func() { <-s.ch }()
	return s.b.String()
}

// startServe runs mole serve in-process until stop, and returns its address and stderr.
func startServe(t *testing.T, args ...string) (string, *syncBuffer, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errb := &syncBuffer{ch: make(chan struct{}, 1)}
	codec := make(chan int, 1)
	go func() {
		codec <- run(ctx, append([]string{"serve"}, args...), strings.NewReader(""), pw, errb)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("serve %v: no address printed: %v (stderr %s)", args, err, errb.String())
	}
	go io.Copy(io.Discard, pr)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "mole: listening on ")
	if !ok {
		cancel()
		t.Fatalf("listening line %q", line)
	}
	return addr, errb, func() {
		cancel()
		select {
		case <-codec:
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop")
		}
	}
}

// TestServeBindsFirst: a port in use fails before the model is opened.
func TestServeBindsFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	before := modelOpens.Load()
	code, _, errOut := runMole(t, "", "serve", "--port", port)
	if code != 1 || !strings.Contains(errOut, "address already in use") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if n := modelOpens.Load() - before; n != 0 {
		t.Errorf("%d model(s) opened before the bind failed", n)
	}
}

// TestBadFlagValues: every out-of-range numeric flag of every command ends with status
// 1, one line on stderr naming the flag, nothing on stdout, and no model opened.
func TestBadFlagValues(t *testing.T) {
	cases := []struct {
		args []string
		flag string
	}{
		{[]string{"run", "-n", "-5", "x"}, "--n-predict -5"},
		{[]string{"run", "--ctx", "-5", "x"}, "--ctx-size -5"},
		{[]string{"run", "-c", "-1", "x"}, "--ctx-size -1"},
		{[]string{"run", "--top-p", "2", "x"}, "--top-p 2"},
		{[]string{"run", "--top-p", "nan", "x"}, "--top-p NaN"},
		{[]string{"run", "--temp", "nan", "x"}, "--temp NaN"},
		{[]string{"run", "--temp", "-1", "x"}, "--temp -1"},
		{[]string{"run", "--repeat-penalty", "0", "x"}, "--repeat-penalty 0"},
		{[]string{"run", "--min-p", "1.5", "x"}, "--min-p 1.5: want a number between 0 and 1 (0 = off)"},
		{[]string{"run", "--top-k", "-2", "x"}, "--top-k -2"},
		{[]string{"run", "--repeat-last-n", "-2", "x"}, "--repeat-last-n -2"},
		{[]string{"run", "-s", "-2", "x"}, "--seed -2"},
		{[]string{"run", "-t", "-1", "x"}, "--threads -1"},
		{[]string{"run", "--isa", "sse2", "x"}, "--isa"},
		{[]string{"run", "--load", "nope", "x"}, "--load"},
		{[]string{"serve", "-t", "-1"}, "--threads -1"},
		{[]string{"serve", "--parallel", "0"}, "--parallel 0"},
		{[]string{"serve", "-np", "-3"}, "--parallel -3"},
		{[]string{"serve", "--queue", "-1"}, "--queue -1"},
		{[]string{"serve", "--port", "-1"}, "--port -1"},
		{[]string{"serve", "--port", "65536"}, "--port 65536"},
		{[]string{"serve", "--max-body", "0"}, "--max-body 0"},
		{[]string{"serve", "-c", "-5"}, "--ctx-size -5"},
		{[]string{"perplexity", "-f", "/dev/null", "-c", "-5"}, "--ctx-size -5"},
		{[]string{"perplexity", "-f", "/dev/null", "-c", "1"}, "--ctx-size 1"},
		{[]string{"perplexity", "-f", "/dev/null", "--chunks", "-1"}, "--chunks -1"},
		{[]string{"perplexity", "-f", "/dev/null", "-t", "-2"}, "--threads -2"},
		{[]string{"bench", "-m", "x", "-p", "-1"}, "-p"},
		{[]string{"bench", "-m", "x", "-n", "-1"}, "-n"},
		{[]string{"bench", "-m", "x", "-r", "0"}, "-r 0"},
		{[]string{"bench", "-m", "x", "-t", "-1"}, "-t"},
		{[]string{"bench", "-m", "x", "--expert-bits", "0"}, "--expert-bits"},
		{[]string{"bench", "-m", "x", "--mem-budget", "50%", "--warm", "-1"}, "--warm -1"},
		{[]string{"bench", "-m", "x", "--mem-budget", "50%", "--parallel", "-1"}, "--parallel -1"},
		{[]string{"profile", "-m", "x", "--samples", "0"}, "--samples 0"},
		{[]string{"profile", "-m", "x", "--reps", "0"}, "--reps 0"},
		{[]string{"profile", "-m", "x", "-t", "-1"}, "--threads -1"},
		{[]string{"quantize", "-o", "x.gguf", "--calib-ctx", "1"}, "--calib-ctx 1"},
		{[]string{"quantize", "-o", "x.gguf", "-t", "-1"}, "--threads -1"},
		{[]string{"convert-mole", "-o", "x.gguf", "--rank", "4", "--groups", "0"}, "--groups 0"},
		{[]string{"convert-mole", "-o", "x.gguf", "--energy", "1.5"}, "--energy 1.5"},
		{[]string{"convert-mole", "-o", "x.gguf", "--rank", "-4"}, "--rank -4"},
		{[]string{"convert-mole", "-o", "x.gguf", "--rank", "4", "--calib-ctx", "0"}, "--calib-ctx 0"},
		{[]string{"convert-mole", "-o", "x.gguf", "--rank", "4", "-t", "-1"}, "--threads -1"},
	}
	for _, c := range cases {
		before := modelOpens.Load()
		code, out, errOut := runMole(t, "", c.args...)
		if code != 1 || !strings.HasPrefix(errOut, "mole: ") || !strings.Contains(errOut, c.flag) ||
			strings.Count(strings.TrimSpace(errOut), "\n") != 0 || out != "" {
			t.Errorf("mole %v: exit %d, stdout %q, stderr %q; want 1 and one line naming %q", c.args, code, out, errOut, c.flag)
		}
		if n := modelOpens.Load() - before; n != 0 {
			t.Errorf("mole %v: %d model(s) opened before the flag was rejected", c.args, n)
		}
	}
}

// TestPromptFlags: -p, -f and the PROMPT argument give the same prompt; only one may be
// given; -f drops the newline a file ends with, as llama.cpp does.
func TestPromptFlags(t *testing.T) {
	defaultModel(t)
	const prompt = "In the beginning"
	file := filepath.Join(t.TempDir(), "prompt.txt")
	if err := os.WriteFile(file, []byte(prompt+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gen := func(args ...string) string {
		t.Helper()
		code, out, errOut := runMole(t, "", append([]string{"run", "-n", "8", "--temp", "0"}, args...)...)
		if code != 0 || out == "" {
			t.Fatalf("mole run %v: exit %d, %q: %s", args, code, out, errOut)
		}
		return out
	}
	want := gen(prompt)
	for _, args := range [][]string{
		{"-p", prompt},
		{"--prompt", prompt},
		{"-f", file},
		{"--file", file},
	} {
		if got := gen(args...); got != want {
			t.Errorf("%v gave %q, the PROMPT argument %q", args, got, want)
		}
	}
	for _, args := range [][]string{
		{"run", "-p", prompt, prompt},
		{"run", "-f", file, "-p", prompt},
		{"run", "-f", file, prompt},
	} {
		code, _, errOut := runMole(t, "", args...)
		if code != 1 || !strings.Contains(errOut, "give the prompt once") {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
	code, _, errOut := runMole(t, "", "run", "-f", filepath.Join(t.TempDir(), "missing.txt"))
	if code != 1 || !strings.Contains(errOut, "missing.txt") {
		t.Errorf("-f missing file: exit %d, %q", code, errOut)
	}
	// -s is --seed: the same seed reproduces a sampled run.
	_, a, _ := runMole(t, "", "run", "-n", "8", "-s", "7", prompt)
	_, b, _ := runMole(t, "", "run", "-n", "8", "--seed", "7", prompt)
	if a != b || a == "" {
		t.Errorf("-s 7 gave %q, --seed 7 %q", a, b)
	}
}

// TestInfoModelFlag: info takes -m like every other command, and still MODEL.
func TestInfoModelFlag(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "tiny.gguf")
	if code, _, errs := runMole(t, "", "gen-model", "--preset", "tiny-moe", "-o", model); code != 0 {
		t.Fatalf("gen-model: %s", errs)
	}
	_, pos, _ := runMole(t, "", "info", model)
	code, flag, errOut := runMole(t, "", "info", "-m", model)
	if code != 0 || flag != pos || !strings.Contains(flag, "tiny.gguf") {
		t.Errorf("info -m: exit %d, %q (stderr %q); info MODEL gave %q", code, flag, errOut, pos)
	}
	code, _, errOut = runMole(t, "", "info", "-m", model, filepath.Join(dir, "other.gguf"))
	if code != 1 || !strings.Contains(errOut, "give the model once") {
		t.Errorf("info -m A B: exit %d, %q", code, errOut)
	}
}

// TestRunInterrupted: a run stopped by its context (^C) keeps the text so far, ends it
// with a newline, prints the summary with stop reason "interrupted", and exits 130 with no
// error line.
func TestRunInterrupted(t *testing.T) {
	defaultModel(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOnWrite{cancel: cancel}
	var errb strings.Builder
	code := run(ctx, []string{"run", "-n", "-1", "-c", "512", "--temp", "0", "In the beginning"}, strings.NewReader(""), out, &errb)
	if code != exitInterrupted {
		t.Errorf("exit %d, want %d; stderr %s", code, exitInterrupted, errb.String())
	}
	if s := out.b.String(); s == "" || !strings.HasSuffix(s, "\n") {
		t.Errorf("stdout %q: want the text so far, ending with a newline", s)
	}
	if _, _, _, stop := summary(t, errb.String()); stop != "interrupted" {
		t.Errorf("stop reason %q, want interrupted", stop)
	}
	if strings.Contains(errb.String(), "canceled") {
		t.Errorf("error line printed:\n%s", errb.String())
	}
}

// cancelOnWrite cancels a context on the first write, as ^C during generation would.
type cancelOnWrite struct {
	cancel func()
	b      strings.Builder
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	c.cancel()
	return c.b.Write(p)
}

// TestShortFlagsAgree: a one-letter flag means the same in every command that has it, so
// habits carry from one to another; bench keeps llama-bench's -p (prompt lengths) and -n
// (generation lengths). Every command that loads a model to run it has the same
// model-loading flags, and -t defaults to 0 (GOMAXPROCS) wherever it takes one count.
func TestShortFlagsAgree(t *testing.T) {
	root := newRootCmd(strings.NewReader(""), io.Discard, io.Discard)
	exceptions := map[string]bool{"bench -p": true, "bench -n": true}
	meaning := map[string]string{}
	where := map[string]string{}
	for _, cmd := range root.Commands() {
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Shorthand == "" || exceptions[cmd.Name()+" -"+f.Shorthand] {
				return
			}
			if prev, ok := meaning[f.Shorthand]; ok && prev != f.Name {
				t.Errorf("-%s is --%s in %s but --%s in %s", f.Shorthand, f.Name, cmd.Name(), prev, where[f.Shorthand])
			}
			meaning[f.Shorthand], where[f.Shorthand] = f.Name, cmd.Name()
		})
	}
	loading := []string{"model", "threads", "load", "isa", "expert-bits", "mem-budget"}
	for name, flags := range map[string][]string{
		"run":        append(loading, "ctx-size", "ctx-extend", "prompt", "file", "n-predict", "seed", "temp"),
		"serve":      append(loading, "ctx-size", "ctx-extend", "parallel"),
		"perplexity": append(loading, "ctx-size", "ctx-extend", "file"),
		"bench":      {"model", "threads", "load", "isa", "expert-bits", "mem-budget", "n-prompt", "n-gen"},
		"profile":    {"model", "threads", "load", "isa"},
		"quantize":   {"model", "threads"},
		"info":       {"model"},
	} {
		cmd := findCmd(t, root, name)
		for _, f := range flags {
			if cmd.Flags().Lookup(f) == nil {
				t.Errorf("%s lacks --%s", name, f)
			}
		}
		if f := cmd.Flags().Lookup("threads"); f != nil && name != "bench" && f.DefValue != "0" {
			t.Errorf("%s -t defaults to %s, want 0 (GOMAXPROCS)", name, f.DefValue)
		}
	}
	if f := findCmd(t, root, "bench").Flags().Lookup("threads"); f.DefValue != "0" {
		t.Errorf("bench -t defaults to %s, want 0 (GOMAXPROCS)", f.DefValue)
	}
	if f := findCmd(t, root, "serve").Flags().ShorthandLookup("p"); f != nil {
		t.Errorf("serve still has -p (--%s)", f.Name)
	}
	// serve's old -p points to its new spelling; llama-server's -np works.
	if code, _, errOut := runMole(t, "", "serve", "-p", "4"); code != 1 || !strings.Contains(errOut, "-np N or --parallel N") {
		t.Errorf("serve -p 4: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runMole(t, "", "serve", "-np", "0"); code != 1 || !strings.Contains(errOut, "--parallel 0") {
		t.Errorf("serve -np 0: exit %d, %q", code, errOut)
	}
}

func findCmd(t *testing.T, root *cobra.Command, name string) *cobra.Command {
	t.Helper()
	cmd, _, err := root.Find([]string{name})
	if err != nil || cmd.Name() != name {
		t.Fatalf("no %s command: %v", name, err)
	}
	return cmd
}
