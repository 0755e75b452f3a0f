package engine

import (
	"github.com/mole-llm/mole/engine/tokenizer"
	"github.com/mole-llm/mole/loader"
)

// loadTokenizer builds the tokenizer carried by the model files, or returns nil when
// they carry none (random test models, bare weight folders). A tokenizer that is
// present but unusable is an error: running without it would only fail later.
func loadTokenizer(lm *loader.Model) (*tokenizer.Tokenizer, error) {
	switch {
	case lm.GGUF != nil:
		if _, ok := lm.GGUF.String("tokenizer.ggml.model"); !ok {
			return nil, nil
		}
		return tokenizer.FromGGUF(lm.GGUF)
	case lm.HF != nil:
		if lm.HF.TokenizerJSON == nil && lm.HF.TokenizerModel == nil {
			return nil, nil
		}
		return tokenizer.FromHF(lm.HF)
	}
	return nil, nil
}
