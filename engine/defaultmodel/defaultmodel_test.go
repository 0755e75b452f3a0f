package defaultmodel

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/mole-llm/mole/loader/sharedmodels"

	"github.com/mole-llm/mole/loader"
)

func TestOpenEmbedded(t *testing.T) {
	m, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var cfg struct {
		Hidden  int `json:"hidden_size"`
		Layers  int `json:"num_hidden_layers"`
		Experts int `json:"num_local_experts"`
		Vocab   int `json:"vocab_size"`
	}
	if err := json.Unmarshal(m.HF.ConfigJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	// embed + lm_head + final norm, and per layer 2 norms, 4 attention matrices, a router
	// and 3 matrices per expert.
	want := 3 + cfg.Layers*(2+4+1+3*cfg.Experts)
	if len(m.Tensors) != want {
		t.Fatalf("embedded model has %d tensors, want %d", len(m.Tensors), want)
	}
	emb, ok := m.Tensor("model.embed_tokens.weight")
	if !ok || emb.DType != loader.F16 || len(emb.Shape) != 2 || emb.Shape[0] != cfg.Vocab || emb.Shape[1] != cfg.Hidden {
		t.Fatalf("embedding tensor wrong: %v", emb)
	}
	if m.HF.TokenizerModel == nil {
		t.Fatal("embedded model lacks tokenizer.model")
	}
}

// TestEmbeddedMatchesSource checks that the committed float16 weights are the float16
// rounding of ../shared/models/kjv-moe, so a stale or hand-edited copy cannot pass.
func TestEmbeddedMatchesSource(t *testing.T) {
	src := sharedmodels.Path(t, "kjv-moe")
	orig, err := loader.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	emb, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	if len(orig.Tensors) != len(emb.Tensors) {
		t.Fatalf("tensor count: source %d, embedded %d", len(orig.Tensors), len(emb.Tensors))
	}
	for _, o := range orig.Tensors {
		e, ok := emb.Tensor(o.Name)
		if !ok {
			t.Fatalf("embedded model lacks %s", o.Name)
		}
		f := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(o.Data))), len(o.Data)/4)
		want := o.Data
		if len(o.Shape) >= 2 {
			want = loader.F32ToF16Bytes(f)
		}
		if !bytes.Equal(want, e.Data) {
			t.Fatalf("%s: embedded bytes differ from the float16 conversion of the source", o.Name)
		}
	}
	for _, name := range []string{"config.json", "tokenizer.model", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, Files()[name]) {
			t.Errorf("%s differs from the source", name)
		}
	}
}
