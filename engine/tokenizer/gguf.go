package tokenizer

import (
	"errors"
	"fmt"

	"github.com/mole-llm/mole/loader"
)

// FromGGUF builds the tokenizer stored in a GGUF file's tokenizer.ggml.*
// metadata. tokenizer.ggml.model "llama" is SentencePiece (BPE by scores with
// byte fallback, as llama.cpp's SPM tokenizer), "gpt2" is byte-level BPE with
// tokenizer.ggml.merges and the pre-tokenizer named by tokenizer.ggml.pre.
// Other models (bert/WPM, t5/UGM, rwkv, ...) are reported as unsupported.
func FromGGUF(g *loader.GGUFFile) (*Tokenizer, error) {
	if g == nil {
		return nil, errors.New("tokenizer: nil GGUF file")
	}
	model, ok := g.String("tokenizer.ggml.model")
	if !ok {
		return nil, errors.New("tokenizer: GGUF has no tokenizer.ggml.model")
	}
	tokens, types, scores, err := ggufVocab(g, model)
	if err != nil {
		return nil, err
	}
	k := ggufKeys{g, len(tokens)}
	t := &Tokenizer{tokens: tokens, scores: scores, types: types, eot: -1}
	switch model {
	case "llama":
		t.setSPMFromGGUF(k)
	case "gpt2":
		if err := t.setBPEFromGGUF(k); err != nil {
			return nil, err
		}
	case "bert":
		return nil, errors.New("tokenizer: GGUF tokenizer model \"bert\" (WordPiece) is not supported")
	case "t5":
		return nil, errors.New("tokenizer: GGUF tokenizer model \"t5\" (Unigram/UGM) is not supported")
	default:
		return nil, fmt.Errorf("tokenizer: GGUF tokenizer model %s is not supported (want llama or gpt2)", loader.Quote(model))
	}
	t.pad = k.id("tokenizer.ggml.padding_token_id", -1)
	t.eot = k.id("tokenizer.ggml.eot_token_id", -1)
	t.addEOS = k.flag("tokenizer.ggml.add_eos_token", false)
	t.chatTemplate, _ = g.String("tokenizer.chat_template")
	if err := t.init(); err != nil {
		return nil, err
	}
	if t.kind == kindSPM {
		t.byteFallback = false
		for _, b := range t.byteID {
			t.byteFallback = t.byteFallback || b >= 0
		}
	}
	if eom := k.id("tokenizer.ggml.eom_token_id", -1); eom >= 0 {
		t.eog[eom] = true
	}
	return t, nil
}

// ggufVocab reads the vocabulary of a GGUF tokenizer of the given model: the tokens,
// their types (nil when absent; unknown types read as normal) and their scores (nil
// when absent), each checked to have one entry per token.
func ggufVocab(g *loader.GGUFFile, model string) (tokens []string, types []int32, scores []float32, err error) {
	tv, ok := g.Get("tokenizer.ggml.tokens")
	if !ok {
		return nil, nil, nil, fmt.Errorf("tokenizer: GGUF tokenizer %s has no tokenizer.ggml.tokens", loader.Quote(model))
	}
	tokens, ok = tv.Strings()
	if !ok || len(tokens) == 0 {
		return nil, nil, nil, errors.New("tokenizer: tokenizer.ggml.tokens is not a non-empty string array")
	}
	if v, ok := g.Get("tokenizer.ggml.token_type"); ok {
		if types, ok = v.Int32s(); !ok || len(types) != len(tokens) {
			return nil, nil, nil, fmt.Errorf("tokenizer: tokenizer.ggml.token_type has %d entries for %d tokens", v.Len(), len(tokens))
		}
		types = append([]int32(nil), types...)
		for i, ty := range types {
			if ty < typeNormal || ty > typeByte {
				types[i] = typeNormal // llama.cpp treats unknown types as normal text
			}
		}
	}
	if v, ok := g.Get("tokenizer.ggml.scores"); ok {
		if scores, ok = v.Float32s(); !ok || len(scores) != len(tokens) {
			return nil, nil, nil, fmt.Errorf("tokenizer: tokenizer.ggml.scores has %d entries for %d tokens", v.Len(), len(tokens))
		}
	}
	return tokens, types, scores, nil
}

// ggufKeys reads a GGUF tokenizer's scalar keys, with defaults for absent ones.
type ggufKeys struct {
	g       *loader.GGUFFile
	nTokens int
}

// id reads a token id: def when absent, -1 (none) when it is not a valid id.
func (k ggufKeys) id(key string, def int32) int32 {
	v, ok := k.g.Get(key)
	if !ok {
		return def
	}
	i, ok := v.Int()
	if !ok || i < 0 || i >= int64(k.nTokens) {
		return -1
	}
	return int32(i)
}

// flag reads a bool: def when absent or not a bool.
func (k ggufKeys) flag(key string, def bool) bool {
	if v, ok := k.g.Get(key); ok {
		if b, ok := v.Bool(); ok {
			return b
		}
	}
	return def
}

// setSPMFromGGUF sets up a SentencePiece ("llama") tokenizer from its GGUF keys.
func (t *Tokenizer) setSPMFromGGUF(k ggufKeys) {
	t.kind = kindSPM
	// llama.cpp's defaults for SPM vocabularies without explicit ids.
	t.unk = k.id("tokenizer.ggml.unknown_token_id", 0)
	t.bos = k.id("tokenizer.ggml.bos_token_id", 1)
	t.eos = k.id("tokenizer.ggml.eos_token_id", 2)
	t.addBOS = k.flag("tokenizer.ggml.add_bos_token", true)
	t.addPrefix = k.flag("tokenizer.ggml.add_space_prefix", true)
	t.collapseWS = k.flag("tokenizer.ggml.remove_extra_whitespaces", false)
	t.escapeWS = true
	t.unkSurface = " \u2047 "
	// GGUF has no byte_fallback flag: byte pieces present means it was
	// on (decided after init has found them).
}

// setBPEFromGGUF sets up a byte-level BPE ("gpt2") tokenizer from its GGUF keys: the
// pre-tokenizer and the merges.
func (t *Tokenizer) setBPEFromGGUF(k ggufKeys) error {
	g := k.g
	t.kind = kindBPE
	t.unk = k.id("tokenizer.ggml.unknown_token_id", -1)
	t.bos = k.id("tokenizer.ggml.bos_token_id", -1)
	t.eos = k.id("tokenizer.ggml.eos_token_id", -1)
	t.addBOS = k.flag("tokenizer.ggml.add_bos_token", false)
	// A missing pre (older conversions) means llama.cpp's "default"
	// pre-tokenizer; a named but unknown one is refused rather than
	// silently tokenized with the wrong regex, as llama.cpp does.
	t.pre, _ = g.String("tokenizer.ggml.pre")
	if t.pre == "" {
		t.pre = "default"
	}
	if !knownPretokenizer(t.pre) {
		return fmt.Errorf("tokenizer: GGUF pre-tokenizer %s (tokenizer.ggml.pre) is not supported", loader.Quote(t.pre))
	}
	mv, ok := g.Get("tokenizer.ggml.merges")
	if !ok {
		return errors.New("tokenizer: gpt2 GGUF has no tokenizer.ggml.merges")
	}
	ms, ok := mv.Strings()
	if !ok {
		return errors.New("tokenizer: tokenizer.ggml.merges is not a string array")
	}
	merges, err := mergesFromStrings(ms)
	if err != nil {
		return err
	}
	b, err := newByteBPE(t.tokens, merges)
	if err != nil {
		return err
	}
	b.ignoreMerges = ignoreMergesPre[t.pre]
	b.unk = t.unk
	t.bpe = b
	return nil
}

// ignoreMergesPre lists the pre-tokenizer families whose tokenizer.json sets
// model.ignore_merges: a word that is itself a token is emitted whole.
var ignoreMergesPre = map[string]bool{"llama-bpe": true, "llama3": true}
