package loader

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileAtomicWrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "new" {
		t.Fatalf("read %q, %v", b, err)
	}
	if st, _ := os.Stat(path); runtime.GOOS != "windows" && st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v, want only out.bin", names)
	}
}

// A missing or unwritable directory fails before any work, naming the destination and
// not the temporary file.
func TestCreateAtomicPreflight(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, path, want string }{
		{"missing directory", filepath.Join(dir, "nope", "out.gguf"), "does not exist"},
		{"under a regular file", filepath.Join(file, "out.gguf"), "not a directory"},
		{"a directory", dir, "is a directory"},
	}
	if os.Geteuid() != 0 && runtime.GOOS != "windows" { // root writes anywhere
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ name, path, want string }{"read-only directory", filepath.Join(ro, "out.gguf"), "not writable"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			called := false
			err := WriteFileAtomic(c.path, func(io.Writer) error { called = true; return nil })
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if called {
				t.Error("the write ran before the directory was checked")
			}
			if !strings.Contains(msg, c.path) || !strings.Contains(msg, c.want) || strings.Contains(msg, "mole-tmp") || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %s and saying %q", msg, c.path, c.want)
			}
		})
	}
}

// A cancelled context stops the write at the next buffer flush: the destination keeps
// its old content and no temporary file stays.
func TestWriteFileAtomicCancel(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	chunk := make([]byte, 1<<20)
	n := 0
	err := WriteFileAtomicContext(ctx, path, func(w io.Writer) error {
		for ; n < 1000; n++ {
			if n == 3 {
				cancel()
			}
			if _, err := w.Write(chunk); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n > 5 {
		t.Errorf("%d MiB written after the cancel", n-3)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("destination changed to %d bytes", len(b))
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v, want only out.bin", names)
	}
}

// Cancelled after the last byte but before Commit: still nothing is published.
func TestAtomicCommitCancelled(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	ctx, cancel := context.WithCancel(context.Background())
	a, err := CreateAtomic(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("data"))
	cancel()
	if err := a.Commit(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit = %v, want context.Canceled", err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("directory holds %v, want nothing", names)
	}
}

// On Linux the temporary file has no name while it is written (O_TMPFILE), so a killed
// writer leaves nothing.
func TestAtomicUnnamedOnLinux(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("O_TMPFILE is Linux's")
	}
	dir := t.TempDir()
	a, err := CreateAtomic(context.Background(), filepath.Join(dir, "out.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Abort()
	a.Write(make([]byte, 3<<20))
	if a.tmp != "" {
		t.Skipf("the file system of %s has no O_TMPFILE: a named temporary file is used", dir)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("directory holds %v while writing, want nothing", names)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "out.bin" {
		t.Errorf("directory holds %v, want out.bin", names)
	}
}

// deadPID is the id of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// A temporary file left by a killed writer is removed by the next write to the same
// destination; one of a live process is not.
func TestStaleTempRemoved(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("liveness of a process id is not checked on windows")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "out.gguf")
	dead := filepath.Join(dir, tempPrefix("out.gguf")+strconv.Itoa(deadPID(t)))
	live := filepath.Join(dir, tempPrefix("out.gguf")+strconv.Itoa(os.Getppid()))
	liveN := filepath.Join(dir, tempPrefix("out.gguf")+strconv.Itoa(os.Getppid())+"-2")
	other := filepath.Join(dir, tempPrefix("other.gguf")+strconv.Itoa(deadPID(t)))
	for _, p := range []string{dead, live, liveN, other} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write([]byte("x")); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("stale %s not removed (%v)", filepath.Base(dead), err)
	}
	for _, p := range []string{live, liveN, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", filepath.Base(p), err)
		}
	}
}

func TestTempPID(t *testing.T) {
	for name, want := range map[string]int{
		".m.gguf.mole-tmp-123":   123,
		".m.gguf.mole-tmp-123-4": 123,
		".m.gguf.mole-tmp-x":     0,
		".m.gguf.tmp-123":        0,
		".n.gguf.mole-tmp-123":   0,
		".m.gguf.mole-tmp--1":    0,
	} {
		if got := tempPID(name, "m.gguf"); got != want {
			t.Errorf("tempPID(%q) = %d, want %d", name, got, want)
		}
	}
}
