package engine

import (
	"context"
	"errors"
)

// This file holds the parts of generation that need the model and state types; the loop
// itself is in generate_loop.go and is tested with a fake model.

// Generate evaluates prompt from position 0 of s (which is reset first), then samples up to
// o.MaxTokens tokens, streaming their text to emit as it becomes final: UTF-8 sequences
// split across tokens are held until complete, and text that could be the start of a stop
// string is held until it is known not to be one. emit's error ends generation and is
// returned.
//
// The prompt must hold at least one token (usually BOS) and fit in the context.
func (m *Model) Generate(ctx context.Context, s *State, prompt []int32, o GenerateOptions, emit func(text string) error) (Stats, error) {
	if m.Tok == nil {
		return Stats{}, errors.New("generate: the model has no tokenizer")
	}
	s.Reset()
	// The decoder sees the prompt so that a story generated from BOS alone does not start
	// with the space SentencePiece puts in front of every word.
	dec := m.Tok.NewDecoder()
	dec.SetPrompt(prompt)
	g := newGenerator(genModel{
		forward: s.Forward,
		isEOG:   m.Tok.IsEOG,
		dec:     dec,
		vocab:   m.Config.Vocab,
		ctxLen:  s.Cap(),
	}, o, emit)
	return g.run(ctx, prompt)
}

// ChatFormat chooses the chat layout for m from its tokenizer's chat template, else its
// family (see ChatFormatFor).
func (m *Model) ChatFormat() ChatFormat {
	tmpl, inst := "", false
	if m.Tok != nil {
		tmpl = m.Tok.ChatTemplate()
		for id := range m.Tok.VocabSize() {
			if m.Tok.Token(int32(id)) == "[INST]" {
				inst = true
				break
			}
		}
	}
	return ChatFormatFor(tmpl, m.Config.Family, inst)
}
