package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets a test run this binary as the mole command (MOLE_TEST_AS_MOLE=1), so
// that a real SIGINT reaches main's signal handling.
func TestMain(m *testing.M) {
	if os.Getenv("MOLE_TEST_AS_MOLE") == "1" {
		os.Args = append([]string{"mole"}, os.Args[1:]...)
		main()
	}
	code := m.Run()
	if benchMoE.path != "" {
		os.RemoveAll(filepath.Dir(benchMoE.path))
	}
	os.Exit(code)
}

// benchMoE is a bench-moe model (Q4_0, 350 MB), written once for the tests that need
// it and removed by TestMain: its f16 quantization takes tens of seconds here, so that
// an interruption lands in the middle of it.
var benchMoE struct {
	once sync.Once
	path string
	err  string
}

func benchMoEModel(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("writes a 350 MB model")
	}
	benchMoE.once.Do(func() {
		dir, err := os.MkdirTemp("", "mole-quantize-io-")
		if err != nil {
			benchMoE.err = err.Error()
			return
		}
		p := filepath.Join(dir, "bench-moe.gguf")
		if code, _, errs := runMole(t, "", "gen-model", "--preset", "bench-moe", "--type", "q4_0", "-o", p); code != 0 {
			benchMoE.err = errs
			return
		}
		benchMoE.path = p
	})
	if benchMoE.err != "" {
		t.Fatal(benchMoE.err)
	}
	return benchMoE.path
}

// signalWriter is a goroutine-safe stderr that closes started when a line starting
// with prefix has been written.
type signalWriter struct {
	mu      sync.Mutex
	b       bytes.Buffer
	prefix  string
	started chan struct{}
	once    sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if strings.Contains(w.b.String(), w.prefix) {
		w.once.Do(func() { close(w.started) })
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// promptly bounds the time from an interrupt to the end of the command: unloaded it
// measures 0.15-0.3 s (the check is per matrix, expert and MiB written); the bound
// leaves room for a machine shared with other builds and tests.
const promptly = 2 * time.Second

// names lists the entries of dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, e := range ents {
		n = append(n, e.Name())
	}
	return n
}

// An interrupted f16 quantization (the context main cancels on SIGINT) returns promptly, with the destination unchanged and no temporary file.
func TestQuantizeInterrupt(t *testing.T) {
	model := benchMoEModel(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.gguf")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &signalWriter{prefix: "quantizing", started: make(chan struct{})}
	done := make(chan int)
	t0 := time.Now()
	go func() {
		done <- run(ctx, []string{"quantize", "-m", model, "--type", "f16", "-o", out}, strings.NewReader(""), io.Discard, stderr)
	}()
	select {
	case <-stderr.started:
	case code := <-done:
		t.Fatalf("quantize ended (%d) before it started quantizing: %s", code, stderr)
	}
	time.Sleep(500 * time.Millisecond) // into the work
	cancel()
	tc := time.Now()
	code := <-done
	if d := time.Since(tc); d > promptly {
		t.Errorf("quantize returned %v after the interrupt (started %v before it)", d, tc.Sub(t0))
	} else {
		t.Logf("returned %v after the interrupt", d)
	}
	// Interrupted as a shell reports it (130), with no error line: the bar says it stopped.
	if code != exitInterrupted || strings.Contains(stderr.String(), "mole:") || !strings.Contains(stderr.String(), "stopped") {
		t.Errorf("status %d, stderr %q", code, stderr)
	}
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Errorf("destination changed (%d bytes)", len(b))
	}
	if n := names(t, dir); len(n) != 1 {
		t.Errorf("directory holds %v, want only out.gguf", n)
	}
}

// The same with a real SIGINT to a mole process: it exits promptly with status 130, and
// a new destination does not appear.
func TestQuantizeSIGINT(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT to send")
	}
	model := benchMoEModel(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.gguf")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "quantize", "-m", model, "--type", "f16", "-o", out)
	cmd.Env = append(os.Environ(), "MOLE_TEST_AS_MOLE=1")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(pipe)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "quantizing") {
			break
		}
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "quantizing") {
		cmd.Wait()
		t.Fatalf("mole never started quantizing: %q", lines)
	}
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	tc := time.Now()
	rest, _ := io.ReadAll(pipe)
	err = cmd.Wait()
	if d := time.Since(tc); d > promptly {
		t.Errorf("mole exited %v after SIGINT", d)
	} else {
		t.Logf("exited %v after SIGINT", d)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitInterrupted {
		t.Errorf("exit: %v; stderr %q %s", err, lines, rest)
	}
	if n := names(t, dir); len(n) != 0 {
		t.Errorf("directory holds %v, want nothing", n)
	}
}

// Every command that writes a file checks its destination before the work: a missing
// directory, a path under a regular file or (unless root, who writes anywhere) a
// read-only directory fails at once with one line naming the destination, not the
// temporary file.
func TestQuantizeUnwritableOutputs(t *testing.T) {
	dir := t.TempDir()
	tiny := filepath.Join(dir, "tiny.gguf")
	if code, _, errs := runMole(t, "", "gen-model", "--preset", "tiny-moe", "--type", "f16", "-o", tiny); code != 0 {
		t.Fatalf("gen-model: %s", errs)
	}
	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dests := []string{filepath.Join(dir, "missing", "out.gguf"), filepath.Join(file, "out.gguf")}
	if os.Geteuid() != 0 && runtime.GOOS != "windows" {
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		dests = append(dests, filepath.Join(ro, "out.gguf"))
	}
	cmds := map[string]func(dst string) []string{
		"quantize f16":  func(dst string) []string { return []string{"quantize", "-m", tiny, "--type", "f16", "-o", dst} },
		"quantize a8w4": func(dst string) []string { return []string{"quantize", "-m", tiny, "--type", "a8w4", "-o", dst} },
		"convert-mole":  func(dst string) []string { return []string{"convert-mole", "-m", tiny, "--rank", "8", "-o", dst} },
		"convert-mole -s": func(dst string) []string {
			return []string{"convert-mole", "-m", tiny, "--rank", "8", "--stream", "-o", dst}
		},
		"gen-model": func(dst string) []string { return []string{"gen-model", "--preset", "tiny-moe", "-o", dst} },
		"bench --svg": func(dst string) []string {
			return []string{"bench", "-m", tiny, "-p", "0", "-n", "1", "-r", "1", "-t", "1", "--svg", dst}
		},
	}
	for name, args := range cmds {
		for _, dst := range dests {
			code, stdout, errs := runMole(t, "", args(dst)...)
			if code != 1 || stdout != "" {
				t.Errorf("%s -o %s: status %d, stdout %q", name, dst, code, stdout)
			}
			// One line, from main, naming the destination: no progress before it.
			if !strings.HasPrefix(errs, "mole: ") || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, dst) || strings.Contains(errs, "mole-tmp") {
				t.Errorf("%s -o %s: stderr %q", name, dst, errs)
			}
		}
	}

}

// Progress written to a log (not a terminal) is plain lines, never \r redraws.
func TestQuantizeProgressPlain(t *testing.T) {
	dir := t.TempDir()
	tiny := filepath.Join(dir, "tiny.gguf")
	if code, _, errs := runMole(t, "", "gen-model", "--preset", "tiny-moe", "--type", "f16", "-o", tiny); code != 0 {
		t.Fatalf("gen-model: %s", errs)
	}
	for _, typ := range []string{"f16", "q8"} {
		code, _, errs := runMole(t, "", "quantize", "-m", tiny, "--type", typ, "-o", filepath.Join(dir, typ+".gguf"))
		if code != 0 {
			t.Fatalf("quantize %s: %s", typ, errs)
		}
		if strings.Contains(errs, "\r") || !strings.Contains(errs, " ...\n... done in ") || strings.Count(errs, "\n") != 2 {
			t.Errorf("quantize %s: stderr %q, want a start and an end line", typ, errs)
		}
	}
	var b bytes.Buffer
	bar := newBar(&b)
	bar.update("writing", 1, 2)
	bar.update("writing", 2, 2)
	bar.done(nil)
	if s := b.String(); strings.Contains(s, "\r") || !strings.HasPrefix(s, "writing ...\n... done in ") {
		t.Errorf("bar on a buffer: %q", s)
	}
	b.Reset()
	bar = newBar(&b)
	bar.update("writing", 1, 2)
	bar.done(context.Canceled)
	if s := b.String(); !strings.Contains(s, "stopped after") {
		t.Errorf("bar of failed work: %q", s)
	}
}
