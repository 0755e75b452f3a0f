package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mole-llm/mole/engine/tokenizer"
	"github.com/mole-llm/mole/loader/sharedmodels"
)

// TestMistralTokensMatchMistralCommon encodes the no_tools conversation with the Mixtral
// (v1) tokenizer and compares with mistral-common's own ids: this pins the template's
// whitespace, which the text alone cannot (SentencePiece's dummy prefix is involved).
func TestMistralTokensMatchMistralCommon(t *testing.T) {
	dir := filepath.Join(sharedmodels.Find(t), "tokenizers", "mistral-common")
	model, err := os.ReadFile(filepath.Join(dir, "tokenizer.model.v1"))
	if err != nil {
		t.Skipf("mistral-common v1 tokenizer not found: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "samples", "no_tools", "tokens_v1.json"))
	if err != nil {
		t.Skipf("mistral-common sample not found: %v", err)
	}
	var want struct{ Tokens []int32 }
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromSentencePiece(model)
	if err != nil {
		t.Fatal(err)
	}
	text, err := ApplyChatTemplate(Mistral, noToolsSample, true)
	if err != nil {
		t.Fatal(err)
	}
	got := tok.Encode(text, true, true)
	if !slices.Equal(got, want.Tokens) {
		t.Fatalf("ids differ from mistral-common\n got %v\nwant %v", got, want.Tokens)
	}
}
