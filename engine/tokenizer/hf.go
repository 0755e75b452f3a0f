package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/mole-llm/mole/loader"
)

// Hugging Face tokenizer files: tokenizer.json (byte-level BPE is handed to
// byteBPE + pretokenize), tokenizer.model (SentencePiece), and the metadata in
// tokenizer_config.json / special_tokens_map.json / generation_config.json.

type hfAddedToken struct {
	ID      int32  `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"`
}

type hfTokenizerJSON struct {
	AddedTokens   []hfAddedToken  `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         struct {
		Type         string          `json:"type"`
		Vocab        json.RawMessage `json:"vocab"`
		Merges       json.RawMessage `json:"merges"`
		ByteFallback bool            `json:"byte_fallback"`
		IgnoreMerges bool            `json:"ignore_merges"`
		UnkToken     *string         `json:"unk_token"`
	} `json:"model"`
}

// hfComponent is the generic shape of normalizers/pre-tokenizers/decoders:
// a type plus, for Sequence, children.
type hfComponent struct {
	Type          string          `json:"type"`
	Pretokenizers []hfComponent   `json:"pretokenizers"`
	Normalizers   []hfComponent   `json:"normalizers"`
	Decoders      []hfComponent   `json:"decoders"`
	Processors    []hfComponent   `json:"processors"`
	UseRegex      *bool           `json:"use_regex"`
	Pattern       json.RawMessage `json:"pattern"`
	Single        []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
	} `json:"single"`
}

func (c hfComponent) walk(f func(hfComponent)) {
	f(c)
	for _, list := range [][]hfComponent{c.Pretokenizers, c.Normalizers, c.Decoders, c.Processors} {
		for _, s := range list {
			s.walk(f)
		}
	}
}

func parseComponent(raw json.RawMessage) hfComponent {
	var c hfComponent
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &c) // null or an unexpected shape: treated as absent
	}
	return c
}

// hfConfig is the part of tokenizer_config.json mole uses.
type hfConfig struct {
	AddBOS       *bool           `json:"add_bos_token"`
	AddEOS       *bool           `json:"add_eos_token"`
	BOS          json.RawMessage `json:"bos_token"`
	EOS          json.RawMessage `json:"eos_token"`
	PAD          json.RawMessage `json:"pad_token"`
	ChatTemplate json.RawMessage `json:"chat_template"`
}

// tokenText reads a token given either as "text" or as {"content": "text"}.
func tokenText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.Content
	}
	return ""
}

// chatTemplateText reads chat_template given as a string or as a list of
// {"name", "template"} (the "default" one wins, else the first).
func chatTemplateText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
		return ""
	}
	for _, e := range list {
		if e.Name == "default" {
			return e.Template
		}
	}
	return list[0].Template
}

// FromHF builds the tokenizer of a Hugging Face model folder: a byte-level
// BPE tokenizer.json when there is one, else tokenizer.model
// (SentencePiece); tokenizer_config.json supplies add_bos/add_eos, BOS/EOS
// and the chat template, generation_config.json extra end-of-generation ids.
func FromHF(h *loader.HFFiles) (*Tokenizer, error) {
	if h == nil {
		return nil, errors.New("tokenizer: nil HF files")
	}
	var t *Tokenizer
	var err error
	switch {
	case h.TokenizerJSON != nil && (h.TokenizerModel == nil || isByteLevelJSON(h.TokenizerJSON)):
		t, err = FromTokenizerJSON(h.TokenizerJSON, h.TokenizerConfigJSON)
	case h.TokenizerModel != nil:
		t, err = FromSentencePiece(h.TokenizerModel)
		if err == nil {
			err = t.applyHFConfig(h.TokenizerConfigJSON)
		}
	default:
		return nil, fmt.Errorf("tokenizer: %s has neither tokenizer.json nor tokenizer.model", h.Dir)
	}
	if err != nil {
		return nil, err
	}
	if h.SpecialTokensMapJSON != nil {
		var m hfConfig
		if json.Unmarshal(h.SpecialTokensMapJSON, &m) == nil {
			t.setSpecialByName(tokenText(m.BOS), tokenText(m.EOS), false)
		}
	}
	if h.GenerationConfigJSON != nil {
		var g struct {
			EOS json.RawMessage `json:"eos_token_id"`
		}
		if json.Unmarshal(h.GenerationConfigJSON, &g) == nil && len(g.EOS) > 0 {
			var one int32
			var many []int32
			if json.Unmarshal(g.EOS, &one) == nil {
				many = []int32{one}
			} else {
				_ = json.Unmarshal(g.EOS, &many)
			}
			for _, id := range many {
				if t.valid(id) {
					t.eog[id] = true
				}
			}
		}
	}
	return t, nil
}

func isByteLevelJSON(data []byte) bool {
	var j hfTokenizerJSON
	if json.Unmarshal(data, &j) != nil {
		return false
	}
	return j.Model.Type == "BPE" && hasType(parseComponent(j.PreTokenizer), "ByteLevel")
}

func hasType(c hfComponent, typ string) bool {
	found := false
	c.walk(func(x hfComponent) { found = found || x.Type == typ })
	return found
}

// FromTokenizerJSON builds a byte-level BPE tokenizer from a Hugging Face
// tokenizer.json (and optionally tokenizer_config.json). Other model types
// (WordPiece, Unigram, SentencePiece-style BPE without ByteLevel) are
// reported as unsupported: for those, use tokenizer.model.
func FromTokenizerJSON(tokenizerJSON, tokenizerConfigJSON []byte) (*Tokenizer, error) {
	var j hfTokenizerJSON
	if err := json.Unmarshal(tokenizerJSON, &j); err != nil {
		return nil, fmt.Errorf("tokenizer: tokenizer.json: %w", err)
	}
	pre := parseComponent(j.PreTokenizer)
	if j.Model.Type != "BPE" || !hasType(pre, "ByteLevel") {
		return nil, fmt.Errorf("tokenizer: tokenizer.json model %s with pre_tokenizer %s is not supported (only byte-level BPE; use tokenizer.model for SentencePiece)", loader.Quote(j.Model.Type), loader.Quote(pre.Type))
	}
	var vocab map[string]int32
	if err := json.Unmarshal(j.Model.Vocab, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer: tokenizer.json model.vocab: %w", err)
	}
	merges, err := parseHFMerges(j.Model.Merges)
	if err != nil {
		return nil, err
	}
	n := int32(0)
	for _, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("tokenizer: tokenizer.json: negative token id %d", id)
		}
		n = max(n, id+1)
	}
	for _, a := range j.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("tokenizer: tokenizer.json: negative added token id %d", a.ID)
		}
		n = max(n, a.ID+1)
	}
	if n > 1<<24 {
		return nil, fmt.Errorf("tokenizer: tokenizer.json: token id %d too large", n-1)
	}
	tokens := make([]string, n)
	types := make([]int32, n)
	for tok, id := range vocab {
		tokens[id] = tok
		types[id] = typeNormal
	}
	for _, a := range j.AddedTokens {
		tokens[a.ID] = a.Content
		types[a.ID] = typeUserDefined
		if a.Special {
			types[a.ID] = typeControl
		}
	}
	for i := range types {
		if types[i] == 0 {
			types[i] = typeUnused // a hole in the id space
		}
	}
	b, err := newByteBPE(tokens, merges)
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{kind: kindBPE, tokens: tokens, types: types, bpe: b,
		bos: -1, eos: -1, unk: -1, pad: -1, eot: -1}
	b.ignoreMerges = j.Model.IgnoreMerges
	if j.Model.UnkToken != nil {
		if id, ok := vocab[*j.Model.UnkToken]; ok {
			t.unk, b.unk = id, id
		}
	}
	if t.pre = hfPreFamily(pre); t.pre == "" {
		return nil, fmt.Errorf("tokenizer: tokenizer.json pre_tokenizer %s is not a recognised byte-level family", abbrevJSON(j.PreTokenizer))
	}
	if err := t.init(); err != nil {
		return nil, err
	}
	// A TemplateProcessing post-processor that starts with a special token
	// is how tokenizer.json says "add BOS".
	parseComponent(j.PostProcessor).walk(func(c hfComponent) {
		if c.Type == "TemplateProcessing" && len(c.Single) > 0 && c.Single[0].SpecialToken != nil {
			if id, ok := t.specialID(c.Single[0].SpecialToken.ID); ok {
				t.bos, t.addBOS = id, true
			}
		}
	})
	if err := t.applyHFConfig(tokenizerConfigJSON); err != nil {
		return nil, err
	}
	return t, nil
}

// parseHFMerges accepts both merge spellings: ["a b", ...] and [["a","b"], ...].
func parseHFMerges(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	// Peek at the first element to pick the spelling: decoding a large list
	// twice (try one form, fall back to the other) costs ~0.3 s for Qwen.
	const ws = " \t\r\n"
	first := strings.TrimLeft(string(raw[:min(len(raw), 64)]), ws)
	first = strings.TrimLeft(strings.TrimPrefix(first, "["), ws)
	if !strings.HasPrefix(first, "[") {
		var strs []string
		if err := json.Unmarshal(raw, &strs); err != nil {
			return nil, fmt.Errorf("tokenizer: tokenizer.json model.merges: %w", err)
		}
		return mergesFromStrings(strs)
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("tokenizer: tokenizer.json model.merges: %w", err)
	}
	out := make([][2]string, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("tokenizer: tokenizer.json merge %d has %d parts", i, len(p))
		}
		out[i] = [2]string{p[0], p[1]}
	}
	return out, nil
}

// hfPreFamily maps a tokenizer.json pre_tokenizer onto a GGUF
// tokenizer.ggml.pre family name understood by pretokenize: the Split
// regexes, in order, must be exactly those of a known family (preFromHF).
func hfPreFamily(pre hfComponent) string {
	var regexes []string
	useRegex := false
	pre.walk(func(c hfComponent) {
		switch c.Type {
		case "Split":
			var p struct {
				Regex string `json:"Regex"`
			}
			if json.Unmarshal(c.Pattern, &p) == nil && p.Regex != "" {
				regexes = append(regexes, p.Regex)
			}
		case "ByteLevel":
			useRegex = c.UseRegex == nil || *c.UseRegex
		}
	})
	if pre, ok := preFromHF(regexes, useRegex); ok {
		return pre
	}
	return ""
}

func abbrevJSON(raw json.RawMessage) string {
	s := string(raw)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// specialID finds a control/user-defined token by text.
func (t *Tokenizer) specialID(text string) (int32, bool) {
	if text == "" {
		return -1, false
	}
	for _, sp := range t.specials[text[0]] {
		if sp.text == text {
			return sp.id, true
		}
	}
	if id, ok := t.pieceID[text]; ok {
		return id, true
	}
	return -1, false
}

// setSpecialByName sets BOS/EOS from token texts; override=false only fills
// ids that are still unknown.
func (t *Tokenizer) setSpecialByName(bos, eos string, override bool) {
	if id, ok := t.specialID(bos); ok && (override || t.bos < 0) {
		t.bos = id
	}
	if id, ok := t.specialID(eos); ok && (override || t.eos < 0) {
		t.eos = id
		t.eog[id] = true
	}
}

func (t *Tokenizer) applyHFConfig(data []byte) error {
	if data == nil {
		return nil
	}
	var c hfConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("tokenizer: tokenizer_config.json: %w", err)
	}
	t.setSpecialByName(tokenText(c.BOS), tokenText(c.EOS), true)
	// The padding id only matters to a GGUF written from this vocabulary (Vocab); a
	// SentencePiece pad_id already set wins.
	if id, ok := t.specialID(tokenText(c.PAD)); ok && t.pad < 0 {
		t.pad = id
	}
	if c.AddBOS != nil {
		t.addBOS = *c.AddBOS
	}
	if c.AddEOS != nil {
		t.addEOS = *c.AddEOS
	}
	if len(c.ChatTemplate) > 0 {
		t.chatTemplate = chatTemplateText(c.ChatTemplate)
	}
	return nil
}

// eogIDs returns the end-of-generation ids in order (tests, diagnostics).
func (t *Tokenizer) eogIDs() []int32 {
	ids := make([]int32, 0, len(t.eog))
	for id := range t.eog {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	return ids
}
