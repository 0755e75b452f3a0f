package loader

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"unsafe"

	"github.com/mole-llm/mole/loader/sharedmodels"
)

func requireFile(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not found; skipping", p)
	}
}

func TestRealStories260K(t *testing.T) {
	p := filepath.Join(sharedmodels.Find(t), "stories260K", "stories260K.gguf")
	requireFile(t, p)
	m, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	g := m.GGUF
	if m.Format != "gguf" || g == nil || g.Version != 3 {
		t.Fatalf("format %q version %v", m.Format, g)
	}
	if a := g.Architecture(); a != "llama" {
		t.Errorf("architecture %q, want llama", a)
	}
	if s, _ := g.String("tokenizer.ggml.model"); s != "llama" {
		t.Errorf("tokenizer.ggml.model %q", s)
	}
	if n, ok := g.Uint("llama.context_length"); !ok || n != 2048 {
		t.Errorf("llama.context_length %d %v", n, ok)
	}
	v, _ := g.Get("tokenizer.ggml.tokens")
	if toks, ok := v.Strings(); !ok || len(toks) != 512 {
		t.Errorf("tokenizer.ggml.tokens: %d strings (ok=%v), want 512", len(toks), ok)
	}
	sc, _ := g.Get("tokenizer.ggml.scores")
	if f, ok := sc.Float32s(); !ok || len(f) != 512 {
		t.Errorf("tokenizer.ggml.scores: %d (ok=%v)", len(f), ok)
	}
	emb, ok := m.Tensor("token_embd.weight")
	if !ok {
		t.Fatal("token_embd.weight missing")
	}
	if emb.DType != F32 || len(emb.Shape) != 2 || emb.Shape[0] != 512 || emb.Shape[1] != 64 || len(emb.Data) != 512*64*4 {
		t.Errorf("token_embd.weight: %v", emb)
	}
	if _, ok := m.Tensor("output.weight"); !ok {
		t.Error("output.weight missing")
	}
	// Views must be slices of the mapping, not copies.
	if !within(m.mappings[0].Data, emb.Data) {
		t.Error("tensor data is not a view into the mapping")
	}
	// stories260K: 5 layers x 9 tensors + token_embd, output_norm, output.
	if len(m.Tensors) != 48 {
		t.Errorf("%d tensors, want 48", len(m.Tensors))
	}
}

// within reports whether sub is a sub-slice of b (same memory, not a copy).
func within(b, sub []byte) bool {
	if len(sub) == 0 || len(b) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(&b[0]))
	p := uintptr(unsafe.Pointer(&sub[0]))
	return p >= lo && p+uintptr(len(sub)) <= lo+uintptr(len(b))
}

func TestRealKJVMoEGGUF(t *testing.T) {
	dir := filepath.Join(sharedmodels.Find(t), "kjv-moe-gguf")
	for _, c := range []struct {
		file   string
		matrix DType
	}{
		{"kjv-moe-F16.gguf", F16},
		{"kjv-moe-Q8_0.gguf", Q8_0},
		{"kjv-moe-Q4_0-pure.gguf", Q4_0},
	} {
		t.Run(c.file, func(t *testing.T) {
			p := filepath.Join(dir, c.file)
			requireFile(t, p)
			m, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			g := m.GGUF
			if g.Architecture() != "llama" {
				t.Errorf("architecture %q", g.Architecture())
			}
			if n, ok := g.Uint("llama.expert_count"); !ok || n != 8 {
				t.Errorf("llama.expert_count %d %v, want 8", n, ok)
			}
			if n, ok := g.Uint("llama.expert_used_count"); !ok || n != 2 {
				t.Errorf("llama.expert_used_count %d %v, want 2", n, ok)
			}
			v, _ := g.Get("tokenizer.ggml.tokens")
			if toks, ok := v.Strings(); !ok || len(toks) != 1024 {
				t.Errorf("tokenizer.ggml.tokens: %d (ok=%v), want 1024", len(toks), ok)
			}
			counts := map[DType]int{}
			for _, tn := range m.Tensors {
				counts[tn.DType]++
			}
			// 4 layers x (attn norm, q, k, v, o, ffn norm, router, 3 stacked expert
			// tensors) + token_embd + output_norm + output = 43.
			if len(m.Tensors) != 43 {
				t.Errorf("%d tensors, want 43 (%v)", len(m.Tensors), counts)
			}
			q, ok := m.Tensor("blk.0.attn_q.weight")
			if !ok || q.DType != c.matrix || q.Shape[0] != 256 || q.Shape[1] != 256 {
				t.Errorf("blk.0.attn_q.weight: %v", q)
			}
			up, ok := m.Tensor("blk.0.ffn_up_exps.weight")
			if !ok || len(up.Shape) != 3 || up.Shape[0] != 8 || up.Shape[1] != 512 || up.Shape[2] != 256 {
				t.Errorf("blk.0.ffn_up_exps.weight: %v (want [8 512 256])", up)
			}
			if n, ok := m.Tensor("output_norm.weight"); !ok || n.DType != F32 {
				t.Errorf("output_norm.weight: %v", n)
			}
			for _, tn := range m.Tensors {
				want, err := tn.DType.RowBytes(tn.Elems())
				if err != nil || want != len(tn.Data) {
					t.Errorf("%v: %d bytes, want %d (%v)", tn, len(tn.Data), want, err)
				}
			}
		})
	}
}

func TestRealKJVMoESafetensors(t *testing.T) {
	dir := filepath.Join(sharedmodels.Find(t), "kjv-moe")
	requireFile(t, filepath.Join(dir, "model.safetensors"))
	check := func(t *testing.T, m *Model) {
		if m.Format != "safetensors" || m.HF == nil {
			t.Fatalf("format %q", m.Format)
		}
		if len(m.Tensors) != 127 {
			t.Errorf("%d tensors, want 127", len(m.Tensors))
		}
		for _, tn := range m.Tensors {
			if tn.DType != F32 || len(tn.Data) != 4*tn.Elems() {
				t.Errorf("%v", tn)
			}
		}
		if m.HF.ConfigJSON == nil || m.HF.TokenizerModel == nil || m.HF.GenerationConfigJSON == nil ||
			m.HF.TokenizerConfigJSON == nil || m.HF.SpecialTokensMapJSON == nil {
			t.Error("missing folder files")
		}
		if m.HF.TokenizerJSON != nil {
			t.Error("tokenizer.json should be absent")
		}
		e, ok := m.Tensor("model.embed_tokens.weight")
		if !ok || e.Shape[0] != 1024 || e.Shape[1] != 256 {
			t.Errorf("model.embed_tokens.weight: %v", e)
		}
	}
	t.Run("dir", func(t *testing.T) {
		m, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		check(t, m)
	})
	t.Run("file", func(t *testing.T) {
		m, err := Open(filepath.Join(dir, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		check(t, m)
	})
	t.Run("memory", func(t *testing.T) {
		files := map[string][]byte{}
		for _, n := range []string{"model.safetensors", "config.json", "generation_config.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"} {
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				t.Fatal(err)
			}
			files[n] = b
		}
		m, err := OpenHFFiles("kjv-moe (memory)", files)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		check(t, m)
	})
}

// TestRealAllGGUF parses every GGUF file under ../shared/models (llama.cpp's vocab-only
// test files included): written by other tools, they check the reader against the format
// as used in practice.
func TestRealAllGGUF(t *testing.T) {
	root := sharedmodels.Find(t)
	var files []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".gguf" {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		t.Skip("no .gguf files under ../shared/models")
	}
	for _, p := range files {
		m, err := Open(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		g := m.GGUF
		tok, _ := g.Get("tokenizer.ggml.tokens")
		// Files that declare a tokenizer must carry its tokens; test-vector files
		// (qtype-vectors) are not models and declare none.
		if _, ok := g.Get("tokenizer.ggml.model"); ok {
			if tok.Len() == 0 {
				t.Errorf("%s: no tokenizer.ggml.tokens", p)
			}
			if s, ok := tok.Strings(); !ok || len(s) != tok.Len() {
				t.Errorf("%s: tokens not strings", p)
			}
		}
		for _, kv := range g.KV {
			_ = kv.Value.String()
		}
		t.Logf("%s: v%d, %d KV, %d tensors, %d tokens, arch %s", filepath.Base(p), g.Version, len(g.KV), len(g.Tensors), tok.Len(), g.Architecture())
		m.Close()
	}
}

// TestRealBlockSizes checks the block sizes of ggml's types against files ggml wrote:
// in qtype-vectors.gguf (tensors T.w of 13 types) and the kjv-moe i-quant and MXFP4
// files, each tensor's data must end within one alignment of where the next begins. A
// wrong size in dtypeInfos would be off by a multiple of the tensor's block count.
func TestRealBlockSizes(t *testing.T) {
	root := sharedmodels.Find(t)
	for _, rel := range []string{"qtype-vectors/qtype-vectors.gguf", "kjv-moe-gguf/kjv-moe-IQ4_XS.gguf", "kjv-moe-gguf/kjv-moe-MXFP4_MOE.gguf"} {
		p := filepath.Join(root, rel)
		if _, err := os.Stat(p); err != nil {
			t.Logf("%s absent: skipped", rel)
			continue
		}
		m, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		type span struct {
			name     string
			off, len uintptr
		}
		var spans []span
		seen := map[DType]bool{}
		for _, tn := range m.GGUF.Tensors {
			if len(tn.Data) > 0 {
				spans = append(spans, span{tn.Name, uintptr(unsafe.Pointer(unsafe.SliceData(tn.Data))), uintptr(len(tn.Data))})
				seen[tn.DType] = true
			}
		}
		sort.Slice(spans, func(i, j int) bool { return spans[i].off < spans[j].off })
		for i := 0; i+1 < len(spans); i++ {
			gap := spans[i+1].off - spans[i].off
			if spans[i].len > gap || gap-spans[i].len >= 32 {
				t.Errorf("%s: tensor %s holds %d bytes but the next starts %d bytes later", rel, spans[i].name, spans[i].len, gap)
			}
		}
		t.Logf("%s: %d tensors of types %v", rel, len(spans), seen)
		m.Close()
	}
}
