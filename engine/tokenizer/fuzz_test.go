package tokenizer

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mole-llm/mole/loader/sharedmodels"

	"github.com/mole-llm/mole/loader"
)

// Fuzz targets. Their seed corpora run as ordinary tests in `go test`; run
// `go test -fuzz=FuzzEncodeDecode ./engine/tokenizer/` to explore further.

var fuzzSeeds = []string{
	"", " ", "   ", "a", "ab c", "Hello world", " leading", "trailing ", "two  spaces",
	"line one\nline two", "Café naïve æ", "中文 😀", "\t\r\n", "[INST] hi [/INST]", "<s></s>",
	"1234567890!", "\u2581already\u2581escaped", "é\u0301", "\x00\x01\x7f", "abcabcabc abc",
}

// fuzzTokenizers returns the in-test toy vocabulary and, when ../shared is
// present, the kjv SentencePiece model and the GPT-2 byte-level vocabulary.
func fuzzTokenizers(f *testing.F) []*Tokenizer {
	toks := []*Tokenizer{toyTokenizer(f)}
	if dir, ok := sharedmodels.Dir(); ok {
		if model, err := os.ReadFile(filepath.Join(dir, "kjv-moe", "tokenizer.model")); err == nil {
			if tok, err := FromSentencePiece(model); err == nil {
				toks = append(toks, tok)
			}
		}
		if data, err := os.ReadFile(filepath.Join(dir, "vocab", "ggml-vocab-gpt-2.gguf")); err == nil {
			if g, err := loader.ParseGGUF("gpt-2", data); err == nil {
				if tok, err := FromGGUF(g); err == nil {
					toks = append(toks, tok)
				}
			}
		}
	}
	return toks
}

func FuzzEncodeDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	toks := fuzzTokenizers(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range toks {
			ids := tok.Encode(s, false, false)
			for _, id := range ids {
				if !tok.valid(id) {
					t.Fatalf("Encode(%q) produced invalid id %d", s, id)
				}
			}
			dec := tok.Decode(ids)
			if !utf8.ValidString(dec) {
				t.Fatalf("Decode produced invalid UTF-8 for %q", s)
			}
			// The streaming decoder yields the same bytes, except that it
			// keeps the dummy-prefix space Decode strips.
			d := tok.NewDecoder()
			var sb strings.Builder
			for _, id := range ids {
				out := d.Next(id)
				if !utf8.ValidString(out) {
					t.Fatalf("Decoder.Next emitted invalid UTF-8 for %q", s)
				}
				sb.WriteString(out)
			}
			sb.WriteString(d.Flush())
			// Byte fallback makes these vocabularies lossless for valid
			// UTF-8, except for a literal U+2581, which SentencePiece
			// itself cannot tell from an escaped space.
			if utf8.ValidString(s) && !strings.Contains(s, spaceMark) {
				if dec != s {
					t.Fatalf("Decode(Encode(%q)) = %q (ids %v)", s, dec, ids)
				}
				want := s
				if s != "" && tok.addPrefix {
					want = " " + s
				}
				if sb.String() != want {
					t.Fatalf("streamed %q, want %q", sb.String(), want)
				}
			}
			// Special parsing and BOS must not panic either.
			ids = tok.Encode(s, true, true)
			if tok.BOS() >= 0 && (len(ids) == 0 || ids[0] != tok.BOS()) {
				t.Fatalf("Encode with BOS: %v", ids)
			}
			_ = tok.Decode(ids)
		}
	})
}

func FuzzParseSentencePiece(f *testing.F) {
	toy := buildSPModel(toyPieces(), testSPOptions{modelType: spmBPE, byteFallback: true, dummyPrefix: true})
	f.Add(toy)
	f.Add(toy[:len(toy)/2])
	f.Add(buildSPModel(toyPieces()[:5], testSPOptions{modelType: spmUnigram, dummyPrefix: true, collapseWS: true}))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0x12, 0x03, 0x18, 0xff, 0x01})
	if dir, ok := sharedmodels.Dir(); ok {
		if model, err := os.ReadFile(filepath.Join(dir, "kjv-moe", "tokenizer.model")); err == nil {
			f.Add(model)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := FromSentencePiece(data)
		if err != nil {
			return
		}
		// Whatever parsed must be usable without panicking.
		for _, s := range []string{"", "hello world", "中文 😀 <s>", "\xff\xfe"} {
			ids := tok.Encode(s, true, true)
			_ = tok.Decode(ids)
			d := tok.NewDecoder()
			for _, id := range ids {
				d.Next(id)
			}
			d.Flush()
		}
	})
}

// TestMutatedSentencePiece is a deterministic stand-in for fuzzing in CI:
// thousands of randomly corrupted or truncated models must parse to an
// error or to a tokenizer that works, never panic or hang.
func TestMutatedSentencePiece(t *testing.T) {
	srcs := [][]byte{buildSPModel(toyPieces(), testSPOptions{modelType: spmBPE, byteFallback: true, dummyPrefix: true})}
	if dir, ok := sharedmodels.Dir(); ok {
		if model, err := os.ReadFile(filepath.Join(dir, "kjv-moe", "tokenizer.model")); err == nil {
			srcs = append(srcs, model)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		b := append([]byte(nil), srcs[i%len(srcs)]...)
		for k := 0; k < 1+r.IntN(8); k++ {
			b[r.IntN(len(b))] = byte(r.IntN(256))
		}
		if r.IntN(3) == 0 {
			b = b[:r.IntN(len(b))]
		}
		tok, err := FromSentencePiece(b)
		if err != nil {
			continue
		}
		for _, s := range []string{"", "hello world", "中文 😀 <s>", "\xff\xfe"} {
			_ = tok.Decode(tok.Encode(s, true, true))
		}
	}
}
