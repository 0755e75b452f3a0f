//go:build ignore

// gen rebuilds the embedded default model from the float32 original: matrices become
// float16, 1-D tensors (norm weights) stay float32, and the tokenizer and config files are
// copied unchanged. Run by `go generate ./engine/defaultmodel`.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unsafe"

	"github.com/mole-llm/mole/loader"
)

func main() {
	src := flag.String("src", "", "float32 Hugging Face folder")
	dst := flag.String("dst", "", "output folder")
	flag.Parse()
	if err := run(*src, *dst); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(src, dst string) error {
	m, err := loader.Open(src)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	var out []*loader.Tensor
	for _, t := range m.Tensors {
		if t.DType != loader.F32 {
			return fmt.Errorf("%s: expected F32, got %s", t.Name, t.DType)
		}
		nt := &loader.Tensor{Name: t.Name, Shape: t.Shape, DType: loader.F32, Data: t.Data}
		if len(t.Shape) >= 2 {
			f := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(t.Data))), len(t.Data)/4)
			nt.DType, nt.Data = loader.F16, loader.F32ToF16Bytes(f)
		}
		out = append(out, nt)
	}
	meta := map[string]string{"format": "pt", "source": "kjv-moe float32, converted to float16 by mole"}
	if err := loader.WriteSafetensors(filepath.Join(dst, "model.safetensors"), out, meta); err != nil {
		return err
	}
	for _, name := range []string{"config.json", "generation_config.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "README.md"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return err
		}
		if err := loader.WriteFileAtomic(filepath.Join(dst, name), func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
			return err
		}
	}
	return nil
}
