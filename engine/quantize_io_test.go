package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mole-llm/mole/loader"
)

// onlyFiles fails unless dir holds exactly the names given (no temporary file left).
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("directory holds %v, want %v", got, names)
	}
}

// Cancelling the context stops Quantize promptly at every stage — while matrices are
// encoded, while the file is written, while calibrating — and leaves the destination
// as it was, with no temporary file.
func TestQuantizeCancel(t *testing.T) {
	m := loadDefaultModel(t)
	cases := []struct {
		name, scheme string
		// cancelAt reports whether to cancel at this progress call.
		cancelAt func(stage string, done, total int64) bool
	}{
		{"f16 encoding", "f16", func(_ string, done, total int64) bool { return done > 0 }},
		{"f16 writing", "f16", func(_ string, done, total int64) bool { return done == total }},
		{"q8 calibrating", "q8", func(stage string, _, _ int64) bool { return strings.HasPrefix(stage, "calibrating") }},
		{"q8 writing", "q8", func(stage string, done, total int64) bool { return stage == "writing" && done == total }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, path := oldDestination(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var at time.Time
			o := QuantizeOptions{Scheme: c.scheme, Calib: m.Tok.Encode("In the beginning God created the heaven and the earth.", false, false),
				Progress: func(stage string, done, total int64) {
					if at.IsZero() && c.cancelAt(stage, done, total) {
						at = time.Now()
						cancel()
					}
				}}
			_, err := Quantize(ctx, m, path, o)
			checkCancelled(t, at, err, dir, path)
		})
	}
}

// A destination that cannot be written fails before any work (no progress call), with
// one line naming it and not the temporary file.
func TestQuantizeUnwritableDestination(t *testing.T) {
	m := loadDefaultModel(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	paths := []string{filepath.Join(dir, "missing", "out.gguf"), filepath.Join(file, "out.gguf")}
	if os.Geteuid() != 0 { // root writes into read-only directories
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Join(ro, "out.gguf"))
	}
	for _, scheme := range []string{"f16", "a8w4"} {
		for _, p := range paths {
			worked := false
			o := QuantizeOptions{Scheme: scheme, Calib: []int32{1, 2, 3},
				Progress: func(string, int64, int64) { worked = true }}
			_, err := Quantize(context.Background(), m, p, o)
			if err == nil {
				t.Fatalf("%s to %s: no error", scheme, p)
			}
			msg := err.Error()
			if worked {
				t.Errorf("%s to %s: work was done before the error", scheme, p)
			}
			if !strings.Contains(msg, p) || strings.Contains(msg, "mole-tmp") || strings.Contains(msg, "\n") {
				t.Errorf("%s to %s: error %q should be one line naming the destination", scheme, p, msg)
			}
		}
	}
	if err := WriteGGUF(m, filepath.Join(dir, "missing", "w.gguf"), 0); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("WriteGGUF into a missing directory: %v", err)
	}
}

// The streaming MoLE conversion stops the same way when cancelled mid-way.
func TestQuantizeStreamConvertCancel(t *testing.T) {
	m := openTestModel(t, "kjv-moe-gguf/kjv-moe-F16.gguf")
	dir, path := oldDestination(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var at time.Time
	o := MoLEOptions{Rank: m.Config.NEmbd / 4, Progress: func(stage string, done, total int64) {
		if at.IsZero() && done >= 1 {
			at = time.Now()
			cancel()
		}
	}}
	_, err := ConvertMoLEStream(ctx, m, path, o, loader.F16)
	checkCancelled(t, at, err, dir, path)
}

// oldDestination returns a fresh directory holding out.gguf with the content "old", the
// destination a cancelled write must leave as it was (checkCancelled).
func oldDestination(t *testing.T) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "out.gguf")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

// checkCancelled checks a write cancelled at time at (zero: the cancelling progress call
// never came): it returned context.Canceled within a second, the destination path (which
// held "old") is unchanged and dir holds nothing else.
func checkCancelled(t *testing.T, at time.Time, err error, dir, path string) {
	t.Helper()
	if at.IsZero() {
		t.Fatal("the cancelling progress call never came")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(at); d > time.Second {
		t.Errorf("returned %v after the cancel", d)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("destination changed (%d bytes)", len(b))
	}
	onlyFiles(t, dir, filepath.Base(path))
}

// An architecture name of 700 bytes of binary (a corrupted file) is quoted short: the
// error stays one line naming the file.
func TestQuantizeLoadLongArchitecture(t *testing.T) {
	arch := make([]byte, 700)
	for i := range arch {
		arch[i] = byte(0x80 + i%64)
	}
	w := loader.NewGGUFWriter()
	w.Set("general.architecture", loader.StringValue(string(arch)))
	path := filepath.Join(t.TempDir(), "arch.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	err := loadErr(path)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if len(msg)-len(path) > 150 || strings.Contains(msg, "\n") || !strings.Contains(msg, path) || !strings.Contains(msg, "(700 bytes)") {
		t.Errorf("error %q: want one short line naming the file and the name's length", msg)
	}
}
