package loader

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// A tensor filled at write time must encode to the same bytes as one given up front,
// and a fill that writes the wrong length must fail rather than corrupt the offsets.
func TestGGUFWriterAddTensorFunc(t *testing.T) {
	data := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	plain := NewGGUFWriter()
	plain.Set("general.architecture", StringValue("llama"))
	if err := plain.AddTensor("a", F32, []int{3}, data); err != nil {
		t.Fatal(err)
	}
	if err := plain.AddTensor("b", I8, []int{2, 2}, data[:4]); err != nil {
		t.Fatal(err)
	}
	want, err := plain.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	lazy := NewGGUFWriter()
	lazy.Set("general.architecture", StringValue("llama"))
	if err := lazy.AddTensorFunc("a", F32, []int{3}, func(w io.Writer) error {
		w.Write(data[:5]) // in pieces, as a generator writes rows
		_, err := w.Write(data[5:])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := lazy.AddTensor("b", I8, []int{2, 2}, data[:4]); err != nil {
		t.Fatal(err)
	}
	got, err := lazy.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("lazy encoding differs: %d bytes vs %d", len(got), len(want))
	}
	if n, err := lazy.Size(); err != nil || n != int64(len(want)) {
		t.Fatalf("Size = %d, %v; want %d", n, err, len(want))
	}
	short := NewGGUFWriter()
	short.AddTensorFunc("a", F32, []int{3}, func(w io.Writer) error { _, err := w.Write(data[:4]); return err })
	if _, err := short.Bytes(); err == nil || !strings.Contains(err.Error(), "wrote 4 bytes, want 12") {
		t.Fatalf("short fill: err = %v", err)
	}
}
