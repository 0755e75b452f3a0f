package engine

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/mole-llm/mole/engine/tokenizer"
	"github.com/mole-llm/mole/loader"
)

// Scores llama.cpp's converter gives tokens that are not SentencePiece pieces: added
// (control or user-defined) tokens and the [PADn] fillers of a vocabulary smaller than
// the embedding (-10000 in current convert_hf_to_gguf.py; older versions used -1000;
// both are far below any piece, which is all llama.cpp's tokenizer needs).
const (
	ggufAddedScore = -1000
	ggufPadScore   = -10000
)

// setGGUFVocab writes a Hugging Face vocabulary as tokenizer.* metadata the way
// llama.cpp's convert_hf_to_gguf.py does, so that llama.cpp sees the same tokens, types
// and ids in mole's file as in its own conversion:
//
//   - one token per embedding row: a shorter vocabulary is padded with "[PADn]" unused
//     tokens, a longer one cut (llama.cpp refuses a token count that differs from the
//     embedding's rows);
//   - SentencePiece ("llama"): the pieces, scores and types of tokenizer.model, then each
//     entry of tokenizer_config.json's added_tokens_decoder overrides its id with the
//     given text, score -1000 and type control (special, or looks special) or
//     user-defined; pre-tokenizer "default";
//   - byte-level BPE ("gpt2"): tokens in the GPT-2 byte alphabet, types, the merges and
//     the pre-tokenizer family mole detected from tokenizer.json; added tokens that look
//     special become control, as llama.cpp marks them;
//   - BOS/EOS/UNK/PAD ids, add_bos/add_eos, the chat template, and add_space_prefix when
//     tokenizer_config.json sets add_prefix_space (llama.cpp's Llama converter) or the
//     SentencePiece model has no dummy prefix.
//
// Known gaps, where llama.cpp runs Hugging Face code mole does not have: added_tokens.json
// is not read, the text of a non-normalized added token is not round-tripped through the
// HF tokenizer, and a byte-level BPE merge that can never apply is not listed (see
// tokenizer.Vocab). None changes how llama.cpp tokenizes.
func setGGUFVocab(w *loader.GGUFWriter, v tokenizer.Vocab, nVocab int, tokenizerConfig []byte) error {
	spm := v.Model == "llama"
	if !spm && v.Model != "gpt2" {
		return fmt.Errorf("tokenizer model %q cannot be written to GGUF", v.Model)
	}
	if nVocab <= 0 {
		nVocab = len(v.Tokens)
	}
	if len(v.Tokens) > nVocab {
		v.Tokens, v.Types = v.Tokens[:nVocab], v.Types[:nVocab]
		if v.Scores != nil {
			v.Scores = v.Scores[:nVocab]
		}
	}
	for i := len(v.Tokens); i < nVocab; i++ {
		v.Tokens = append(v.Tokens, "[PAD"+strconv.Itoa(i)+"]")
		v.Types = append(v.Types, tokenizer.TypeUnused)
		if v.Scores != nil {
			v.Scores = append(v.Scores, ggufPadScore)
		}
	}
	var cfg struct {
		AddedTokensDecoder map[string]struct {
			Content string `json:"content"`
			Special bool   `json:"special"`
		} `json:"added_tokens_decoder"`
		AddPrefixSpace *bool `json:"add_prefix_space"`
	}
	if tokenizerConfig != nil {
		if err := json.Unmarshal(tokenizerConfig, &cfg); err != nil {
			return fmt.Errorf("tokenizer_config.json: %v", err)
		}
	}
	if spm {
		for key, a := range cfg.AddedTokensDecoder {
			id, err := strconv.Atoi(key)
			if err != nil || id < 0 || id >= nVocab {
				continue // llama.cpp skips ids outside the vocabulary too
			}
			v.Tokens[id], v.Types[id] = addedToken(a.Content, a.Special)
			v.Scores[id] = ggufAddedScore
		}
	} else {
		// mole's byte-level tokenizer types tokenizer.json's added tokens as control
		// (special) or user-defined; llama.cpp additionally promotes names like
		// <|im_start|> to control.
		for id, typ := range v.Types {
			if typ == tokenizer.TypeUserDefined {
				v.Tokens[id], v.Types[id] = addedToken(v.Tokens[id], false)
			}
		}
	}

	w.Set("tokenizer.ggml.model", loader.StringValue(v.Model))
	pre := v.Pre
	if spm {
		pre = "default" // llama.cpp writes it for SentencePiece vocabularies too
	}
	w.Set("tokenizer.ggml.pre", loader.StringValue(pre))
	w.Set("tokenizer.ggml.tokens", loader.StringsValue(v.Tokens))
	if spm {
		w.Set("tokenizer.ggml.scores", loader.Float32sValue(v.Scores))
	}
	w.Set("tokenizer.ggml.token_type", loader.Int32sValue(v.Types))
	if !spm {
		w.Set("tokenizer.ggml.merges", loader.StringsValue(v.Merges))
	}
	for _, s := range []struct {
		key string
		id  int32
	}{{"bos", v.BOS}, {"eos", v.EOS}, {"unknown", v.UNK}, {"padding", v.PAD}} {
		if s.id >= 0 && int(s.id) < nVocab {
			w.Set("tokenizer.ggml."+s.key+"_token_id", loader.Uint32Value(uint32(s.id)))
		}
	}
	w.Set("tokenizer.ggml.add_bos_token", loader.BoolValue(v.AddBOS))
	w.Set("tokenizer.ggml.add_eos_token", loader.BoolValue(v.AddEOS))
	switch {
	case cfg.AddPrefixSpace != nil && spm:
		w.Set("tokenizer.ggml.add_space_prefix", loader.BoolValue(*cfg.AddPrefixSpace))
	case spm && !v.AddSpacePrefix:
		// llama.cpp's SentencePiece tokenizer adds the prefix unless told not to; its
		// converter would not say so here, mole keeps the model's own setting.
		w.Set("tokenizer.ggml.add_space_prefix", loader.BoolValue(false))
	}
	if v.ChatTemplate != "" {
		w.Set("tokenizer.chat_template", loader.StringValue(v.ChatTemplate))
	}
	return nil
}

// addedToken returns the GGUF text and type of an added token, by llama.cpp's
// converter's rule: special tokens and tokens named like special ones are control
// tokens; the others are user-defined, with SentencePiece's U+2581 turned back into the
// space llama.cpp matches them against.
func addedToken(text string, special bool) (string, int32) {
	if special || looksSpecial(text) {
		return text, tokenizer.TypeControl
	}
	return strings.ReplaceAll(text, "\u2581", " "), tokenizer.TypeUserDefined
}

// looksSpecial reports the added-token names llama.cpp's converter treats as control
// tokens even when tokenizer files do not mark them special: <|...|>, DeepSeek's
// full-width <｜...｜>, Gemma's <unusedN>, and a few fixed names.
func looksSpecial(s string) bool {
	switch s {
	case "<pad>", "<mask>", "<2mass>", "[@BOS@]":
		return true
	}
	return strings.HasPrefix(s, "<|") && strings.HasSuffix(s, "|>") ||
		strings.HasPrefix(s, "<｜") && strings.HasSuffix(s, "｜>") ||
		strings.HasPrefix(s, "<unused") && strings.HasSuffix(s, ">")
}
