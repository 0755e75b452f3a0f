package loader

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// The named fallback (file systems without O_TMPFILE) publishes and cleans up the same.
func TestAtomicNamedFallback(t *testing.T) {
	namedTempsOnly = true
	defer func() { namedTempsOnly = false }()
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	a, err := CreateAtomic(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); len(names) != 1 || tempPID(names[0], "out.bin") != os.Getpid() {
		t.Errorf("while writing the directory holds %v, want .out.bin.mole-tmp-%d", names, os.Getpid())
	}
	a.Write([]byte("new"))
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "out.bin" {
		t.Errorf("directory holds %v, want out.bin", names)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = WriteFileAtomicContext(ctx, path, func(w io.Writer) error {
		_, err := w.Write(make([]byte, 2<<20))
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("destination changed to %q", b)
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v, want out.bin", names)
	}
}
