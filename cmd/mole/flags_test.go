package main

import (
	"strings"
	"testing"

	"github.com/mole-llm/mole/engine"
)

// greedy runs 16 greedy tokens of the embedded model with extra flags and returns the
// text and stderr.
func greedy(t *testing.T, flags ...string) (string, string) {
	t.Helper()
	args := append([]string{"run", "-n", "16", "--temp", "0"}, flags...)
	code, out, errOut := runMole(t, "", append(args, "In the beginning")...)
	if code != 0 {
		t.Fatalf("mole %v: exit %d: %s", flags, code, errOut)
	}
	if strings.TrimSpace(out) == "" {
		t.Fatalf("mole %v: no text", flags)
	}
	return out, errOut
}

// TestThreadsFlag: rows are split differently across workers, but every output row is
// computed by one worker in the same order, so -t 1 and -t 2 give identical text.
func TestThreadsFlag(t *testing.T) {
	defaultModel(t)
	one, e1 := greedy(t, "-t", "1")
	two, e2 := greedy(t, "--threads", "2")
	if one != two {
		t.Errorf("-t 1 gave %q, -t 2 gave %q", one, two)
	}
	if !strings.Contains(e1, " 1 threads") || !strings.Contains(e2, " 2 threads") {
		t.Errorf("thread counts not reported:\n%s\n%s", e1, e2)
	}
}

// TestLoadCopyFlag: the copy holds the same bytes, so the text is identical.
func TestLoadCopyFlag(t *testing.T) {
	defaultModel(t)
	mm, e1 := greedy(t)
	cp, e2 := greedy(t, "--load", "copy")
	if mm != cp {
		t.Errorf("--load mmap gave %q, --load copy gave %q", mm, cp)
	}
	if !strings.Contains(e1, "weights mmap") || !strings.Contains(e2, "weights copy") {
		t.Errorf("load modes not reported:\n%s\n%s", e1, e2)
	}
}

// TestISAFlag: the generic twins and the path chosen for this CPU give the same greedy
// text for 16 tokens, and the command leaves the process's kernel path as it found it.
func TestISAFlag(t *testing.T) {
	defaultModel(t)
	before := engine.ActiveISA()
	def, e1 := greedy(t)
	gen, e2 := greedy(t, "--isa", "generic")
	if def != gen {
		t.Errorf("default path (%s) gave %q, --isa generic gave %q", before, def, gen)
	}
	if !strings.Contains(e1, "kernels "+before.String()) || !strings.Contains(e2, "kernels generic") {
		t.Errorf("kernel paths not reported:\n%s\n%s", e1, e2)
	}
	if engine.ActiveISA() != before {
		t.Errorf("--isa generic leaked: active path %s after the command, was %s", engine.ActiveISA(), before)
	}
}

// TestISAFallback: asking for a path this CPU lacks warns and runs on the chosen one.
func TestISAFallback(t *testing.T) {
	defaultModel(t)
	missing := ""
	for _, name := range []string{"neon", "avx512", "avxvnni", "avx2"} {
		if i, _ := engine.ParseISA(name); !engine.ISASupported(i) {
			missing = name
			break
		}
	}
	if missing == "" {
		t.Skip("this CPU supports every path")
	}
	code, _, errOut := runMole(t, "", "run", "-n", "1", "--temp", "0", "--isa", missing, "In")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "warning: --isa " + missing + ": this CPU or build lacks it; using " + engine.ActiveISA().String()
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr lacks %q:\n%s", want, errOut)
	}
}

func TestModelFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--load", "hugetlb", "x"}, "--load: unknown load mode \"hugetlb\" (want mmap or copy)"},
		{[]string{"run", "--isa", "sse2", "x"}, "--isa: unknown ISA \"sse2\""},
		{[]string{"run", "-t", "-1", "x"}, "--threads -1"},
		{[]string{"perplexity", "-f", "/dev/null", "--load", "nope"}, "--load: unknown load mode"},
	} {
		code, _, errOut := runMole(t, "", c.args...)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("mole %v: exit %d, stderr %q; want 1 and %q", c.args, code, errOut, c.want)
		}
	}
}

func TestInfoCPU(t *testing.T) {
	code, out, errOut := runMole(t, "", "info", "--cpu")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"cpu: ", "features: ", "chosen: " + engine.ActiveISA().String(), "threads: ", "--load mmap"} {
		if !strings.Contains(out, want) {
			t.Errorf("info --cpu lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "tensors:") {
		t.Error("info --cpu also described a model")
	}
}
