package tokenizer

import (
	"slices"
	"sort"
)

// Token types of Vocab.Types: GGUF's tokenizer.ggml.token_type numbering, which is also
// SentencePiece's piece type numbering.
const (
	TypeNormal      = typeNormal
	TypeUnknown     = typeUnknown
	TypeControl     = typeControl
	TypeUserDefined = typeUserDefined
	TypeUnused      = typeUnused
	TypeByte        = typeByte
)

// Vocab is a copy of the data that defines a vocabulary, in GGUF's terms, so that a
// converter can write it to a GGUF file without parsing the tokenizer files again.
type Vocab struct {
	Model  string    // tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" (byte-level BPE)
	Pre    string    // tokenizer.ggml.pre family of a byte-level BPE; "" for SentencePiece
	Tokens []string  // piece text; byte-level BPE pieces are in the GPT-2 byte alphabet
	Scores []float32 // SentencePiece scores; nil for byte-level BPE
	Types  []int32   // TypeNormal ... TypeByte, one per token
	// Merges are the byte-level BPE merges "left right" in rank order. They are rebuilt
	// from the merge table, so a merge that can never apply (a part or the result is not
	// a token, or a repeat of an earlier pair) is not listed; tokenization is the same.
	Merges []string

	BOS, EOS, UNK, PAD int32 // -1 when the vocabulary has none
	AddBOS, AddEOS     bool
	// AddSpacePrefix is SentencePiece's add_dummy_prefix (false for byte-level BPE).
	AddSpacePrefix bool
	ChatTemplate   string
}

// Vocab returns the vocabulary's defining data. The slices are copies.
func (t *Tokenizer) Vocab() Vocab {
	v := Vocab{
		Tokens: slices.Clone(t.tokens),
		Types:  slices.Clone(t.types),
		BOS:    t.bos, EOS: t.eos, UNK: t.unk, PAD: t.pad,
		AddBOS: t.addBOS, AddEOS: t.addEOS,
		ChatTemplate: t.chatTemplate,
	}
	switch t.kind {
	case kindSPM:
		v.Model = "llama"
		v.AddSpacePrefix = t.addPrefix
		v.Scores = make([]float32, len(t.tokens))
		copy(v.Scores, t.scores) // a vocabulary without scores has all zero
	case kindBPE:
		v.Model, v.Pre = "gpt2", t.pre
		if b, ok := t.bpe.(*byteBPE); ok {
			v.Merges = b.mergeList(t.tokens)
		}
	}
	return v
}

// mergeList lists the merge table as "left right" strings in rank order.
func (b *byteBPE) mergeList(tokens []string) []string {
	type entry struct {
		rank int32
		l, r int32
	}
	es := make([]entry, 0, len(b.merges))
	for k, m := range b.merges {
		es = append(es, entry{m.rank, int32(uint32(k >> 32)), int32(uint32(k))})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].rank < es[j].rank })
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = tokens[e.l] + " " + tokens[e.r]
	}
	return out
}
