package tty

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestNotTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for name, x := range map[string]any{"buffer": &bytes.Buffer{}, "file": f, "pipe": w} {
		if IsTerminal(x.(interface{ Write([]byte) (int, error) })) {
			t.Errorf("%s reported as a terminal", name)
		}
	}
}
