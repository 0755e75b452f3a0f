// Package tokenizer turns text into token ids and back for mole's models.
//
// It owns every tokenizer format mole reads:
//   - SentencePiece models (tokenizer.model protobuf, or GGUF
//     tokenizer.ggml.model = "llama"), BPE and Unigram, with byte fallback;
//   - byte-level BPE (GGUF tokenizer.ggml.model = "gpt2", or Hugging Face
//     tokenizer.json with a ByteLevel pre-tokenizer), whose merge loop and
//     per-family pre-tokenizer regexes live in bpe.go / pretokenize*.go;
//   - the metadata around them: BOS/EOS/end-of-generation ids, special and
//     control tokens, add_bos/add_eos flags and the chat template text.
//
// Decoding is available both for whole sequences (Tokenizer.Decode) and as a
// streaming Decoder that only ever emits complete UTF-8.
package tokenizer

import (
	"sort"
	"strings"
	"unicode/utf8"
)

const (
	kindSPM = iota + 1 // SentencePiece (BPE or Unigram)
	kindBPE            // GPT-2 style byte-level BPE
)

// wordEncoder is the byte-level BPE merge loop (byteBPE in bpe.go): it
// encodes one pre-tokenized word.
type wordEncoder interface {
	encodeWord(word string, dst []int32) []int32
}

// Tokenizer encodes and decodes text for one vocabulary. It is immutable
// after construction and safe for concurrent use.
type Tokenizer struct {
	kind   int
	tokens []string
	scores []float32
	types  []int32

	// SentencePiece state.
	pieceID      map[string]int32 // pieces eligible for the model (NORMAL, USER_DEFINED, UNUSED)
	byteID       [256]int32       // <0xNN> tokens, -1 when absent
	unigram      bool
	byteFallback bool
	addPrefix    bool // add_dummy_prefix / add_space_prefix
	collapseWS   bool // remove_extra_whitespaces
	escapeWS     bool // spaces -> U+2581
	unkSurface   string
	minScore     float32
	maxPieceLen  int
	splitWS      bool // merges never cross a word start (see encodeSPMBPE)

	// Byte-level BPE state.
	bpe wordEncoder
	pre string // GGUF tokenizer.ggml.pre family name

	bos, eos, unk, pad, eot int32
	eog                     map[int32]bool
	addBOS, addEOS          bool
	chatTemplate            string

	// specials are matched in the raw text before the model runs, bucketed
	// by first byte and sorted longest first so that at each position the
	// longest special token wins.
	specials [256][]special

	// userDefined holds SentencePiece USER_DEFINED piece ids by first byte,
	// longest first; they are atomic symbols of the normalised text.
	userDefined [256][]int32

	// pieceStr[id] is what token id decodes to ("" for control tokens; may
	// be a single byte of a UTF-8 sequence for byte tokens);
	// lstrip[id] marks pieces whose leading space is the SentencePiece
	// dummy prefix candidate (NORMAL pieces starting with U+2581).
	pieceStr []string
	lstrip   []bool
}

type special struct {
	text   string
	id     int32
	always bool // USER_DEFINED tokens are split out even without parseSpecial (llama.cpp semantics)
}

// init builds the derived tables shared by all constructors. It expects
// tokens/types (types may be nil = all NORMAL) and the kind-specific fields.
func (t *Tokenizer) init() error {
	n := len(t.tokens)
	if t.types == nil || len(t.types) != n {
		types := make([]int32, n)
		for i := range types {
			types[i] = typeNormal
			if i < len(t.types) {
				types[i] = t.types[i]
			}
		}
		t.types = types
	}
	if t.scores != nil && len(t.scores) != n {
		scores := make([]float32, n)
		copy(scores, t.scores)
		t.scores = scores
	}
	for i := range t.byteID {
		t.byteID[i] = -1
	}
	t.pieceID = make(map[string]int32, n)
	t.minScore = 0
	for i, tok := range t.tokens {
		typ := t.types[i]
		switch typ {
		case typeNormal, typeUserDefined, typeUnused:
			if _, dup := t.pieceID[tok]; !dup {
				t.pieceID[tok] = int32(i)
			}
			if len(tok) > t.maxPieceLen {
				t.maxPieceLen = len(tok)
			}
			if t.scores != nil && typ == typeNormal && t.scores[i] < t.minScore {
				t.minScore = t.scores[i]
			}
		case typeByte:
			if b, ok := parseByteToken(tok); ok && t.byteID[b] < 0 {
				t.byteID[b] = int32(i)
			}
		}
	}
	t.splitWS = t.kind == kindSPM && t.canSplitWords()
	t.buildSpecials()
	t.buildEOG()
	t.buildPieceBytes()
	return nil
}

// parseByteToken recognises SentencePiece byte pieces "<0xNN>".
func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexVal(s[3])
	lo, ok2 := hexVal(s[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func (t *Tokenizer) buildSpecials() {
	for i := range t.specials {
		t.specials[i] = nil
		t.userDefined[i] = nil
	}
	for i, tok := range t.tokens {
		typ := t.types[i]
		if tok == "" || (typ != typeControl && typ != typeUserDefined && typ != typeUnknown) {
			continue
		}
		if typ == typeUserDefined && t.kind == kindSPM {
			// SentencePiece matches user-defined pieces inside the
			// normalised text (see encodeSPMBPE), so they neither need
			// parseSpecial nor restart the dummy prefix.
			t.userDefined[tok[0]] = append(t.userDefined[tok[0]], int32(i))
			continue
		}
		// Byte-level vocabularies may spell user-defined tokens in the
		// GPT-2 byte alphabet; they are matched as written (llama.cpp does
		// the same).
		t.specials[tok[0]] = append(t.specials[tok[0]], special{text: tok, id: int32(i), always: typ == typeUserDefined})
	}
	for i := range t.specials {
		s := t.specials[i]
		sort.SliceStable(s, func(a, b int) bool { return len(s[a].text) > len(s[b].text) })
		u := t.userDefined[i]
		sort.SliceStable(u, func(a, b int) bool { return len(t.tokens[u[a]]) > len(t.tokens[u[b]]) })
	}
}

// eogNames are token texts that end a turn in common chat formats; they count
// as end-of-generation when present as control/user-defined tokens, as
// llama.cpp does for GGUF files that do not list them explicitly.
var eogNames = []string{
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
	"<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>", "<|return|>", "<|call|>",
	"<｜end▁of▁sentence｜>",
}

func (t *Tokenizer) buildEOG() {
	t.eog = map[int32]bool{}
	for _, id := range []int32{t.eos, t.eot} {
		if t.valid(id) {
			t.eog[id] = true
		}
	}
	for _, name := range eogNames {
		for _, sp := range t.specials[name[0]] {
			if sp.text == name {
				t.eog[sp.id] = true
			}
		}
	}
}

func (t *Tokenizer) valid(id int32) bool { return id >= 0 && int(id) < len(t.tokens) }

// BOS returns the beginning-of-sequence id, or -1.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-sequence id, or -1.
func (t *Tokenizer) EOS() int32 { return t.eos }

// IsEOG reports whether id ends generation (EOS, EOT, <|im_end|>, ...).
func (t *Tokenizer) IsEOG(id int32) bool { return t.eog[id] }

// AddBOS reports whether the model expects a BOS token before the prompt
// (GGUF tokenizer.ggml.add_bos_token, HF add_bos_token).
func (t *Tokenizer) AddBOS() bool { return t.addBOS && t.bos >= 0 }

// AddEOS reports the add_eos_token flag (callers append EOS themselves).
func (t *Tokenizer) AddEOS() bool { return t.addEOS && t.eos >= 0 }

// VocabSize returns the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// Token returns the raw vocabulary string of id ("" when out of range).
func (t *Tokenizer) Token(id int32) string {
	if !t.valid(id) {
		return ""
	}
	return t.tokens[id]
}

// ChatTemplate returns the raw chat template from the metadata, "" if none.
func (t *Tokenizer) ChatTemplate() string { return t.chatTemplate }

// Encode tokenizes text. addBOS prepends the BOS token (when the vocabulary
// has one; pass t.AddBOS() to follow the model's metadata). With parseSpecial,
// occurrences of control/special token strings in text map to their ids
// (at each position the longest one wins); without it they are tokenized as
// ordinary text. User-defined tokens are always matched, as llama.cpp and
// Hugging Face do (for SentencePiece, inside the normalised text, as
// SentencePiece does). EOS is never appended; see AddEOS.
func (t *Tokenizer) Encode(text string, addBOS bool, parseSpecial bool) []int32 {
	out := make([]int32, 0, len(text)/3+2)
	if addBOS && t.bos >= 0 {
		out = append(out, t.bos)
	}
	// The SentencePiece dummy prefix goes in front of the first text
	// fragment and of every fragment that follows a control token: that is
	// llama.cpp's rule, and what mistral-common produces by encoding each
	// text segment of a chat separately.
	prevSpecial := true
	var words []string
	raw := func(frag string) {
		if frag == "" {
			return
		}
		switch t.kind {
		case kindSPM:
			out = t.encodeSPM(frag, prevSpecial, out)
		case kindBPE:
			words = pretokenize(t.pre, frag, words[:0])
			for _, w := range words {
				out = t.bpe.encodeWord(w, out)
			}
		}
		prevSpecial = false
	}
	start := 0
	for i := 0; i < len(text); {
		matched := false
		for _, sp := range t.specials[text[i]] {
			if (parseSpecial || sp.always) && strings.HasPrefix(text[i:], sp.text) {
				raw(text[start:i])
				out = append(out, sp.id)
				prevSpecial = true
				i += len(sp.text)
				start = i
				matched = true
				break
			}
		}
		if !matched {
			i++
		}
	}
	raw(text[start:])
	return out
}

// Decode turns ids into text. Control tokens decode to nothing, byte tokens
// to their byte; for SentencePiece models with a dummy prefix, the leading
// space of the first piece is removed (SentencePiece's decode). Invalid UTF-8
// (e.g. a truncated byte sequence) becomes U+FFFD, one per bad byte.
func (t *Tokenizer) Decode(ids []int32) string {
	var b []byte
	first := true // no text piece seen yet (control tokens do not count)
	for _, id := range ids {
		if !t.valid(id) {
			continue
		}
		p := t.pieceStr[id]
		if len(p) == 0 {
			continue
		}
		if first && t.addPrefix && t.lstrip[id] && p[0] == ' ' {
			p = p[1:]
		}
		first = false
		b = append(b, p...)
	}
	return validUTF8(b)
}

// validUTF8 replaces every byte that is not part of a valid UTF-8 sequence by
// U+FFFD.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.Write(b[:size])
		}
		b = b[size:]
	}
	return sb.String()
}

// Decoder turns a stream of ids into text, emitting only complete UTF-8
// characters. A character split across byte tokens is held back until its
// last byte arrives; bytes that cannot start or continue a valid sequence are
// emitted as U+FFFD as soon as that is certain, so nothing is held forever.
// Unlike Decode it does not strip a leading space by default: it is meant
// for generated continuations, where " word" really starts with a space.
// SetPrompt tells it what came before, so that a continuation of a prompt
// without text (only BOS) loses its dummy-prefix space as Decode would.
type Decoder struct {
	t        *Tokenizer
	pending  []byte
	stripNew bool // the next text piece starts the text: drop its dummy-prefix space
}

// SetPrompt declares the ids that precede the streamed ones. When they hold
// no text (e.g. just BOS), the first streamed SentencePiece piece loses its
// leading dummy-prefix space, so the stream equals Decode(prompt+generated)
// minus Decode(prompt).
func (d *Decoder) SetPrompt(ids []int32) {
	d.stripNew = d.t.addPrefix
	for _, id := range ids {
		if d.t.valid(id) && d.t.pieceStr[id] != "" {
			d.stripNew = false
			return
		}
	}
}

// NewDecoder returns a streaming decoder.
func (t *Tokenizer) NewDecoder() *Decoder { return &Decoder{t: t} }

// Next adds one token and returns the text that is now complete.
func (d *Decoder) Next(id int32) string {
	if !d.t.valid(id) {
		return d.emit(false)
	}
	p := d.t.pieceStr[id]
	if d.stripNew && p != "" {
		if d.t.lstrip[id] {
			p = p[1:]
		}
		d.stripNew = false
	}
	if len(d.pending) == 0 && utf8.ValidString(p) {
		// The common case returns the precomputed string: no allocation
		// per generated token.
		return p
	}
	d.pending = append(d.pending, p...)
	return d.emit(false)
}

// Flush returns whatever is still held (incomplete sequences as U+FFFD) and
// resets the decoder.
func (d *Decoder) Flush() string { return d.emit(true) }

func (d *Decoder) emit(flush bool) string {
	b := d.pending
	n := 0 // bytes of b that are complete
	var sb strings.Builder
	for n < len(b) {
		c := b[n]
		if c < utf8.RuneSelf {
			sb.WriteByte(c)
			n++
			continue
		}
		if !flush && !utf8.FullRune(b[n:]) {
			break // a valid prefix of a longer character: wait for more bytes
		}
		r, size := utf8.DecodeRune(b[n:])
		if r == utf8.RuneError && size == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.Write(b[n : n+size])
		}
		n += size
	}
	d.pending = append(d.pending[:0], b[n:]...)
	return sb.String()
}
