package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mole-llm/mole/engine"
	"github.com/mole-llm/mole/engine/defaultmodel"
	"github.com/mole-llm/mole/engine/tokenizer"
	"github.com/mole-llm/mole/loader"
)

// openFiles opens path, or the embedded default model when path is "". Errors name the path.
func openFiles(path string) (*loader.Model, string, error) {
	if path == "" {
		lm, err := defaultmodel.Open()
		if err != nil {
			return nil, "", fmt.Errorf("embedded model %s: %w", defaultmodel.Name, err)
		}
		return lm, defaultmodel.Name, nil
	}
	lm, err := loader.Open(path)
	if err != nil {
		if !strings.Contains(err.Error(), path) {
			err = fmt.Errorf("%s: %w", path, err)
		}
		return nil, "", err
	}
	return lm, path, nil
}

// loadedModel is an opened and bound model with how long that took.
type loadedModel struct {
	files    *loader.Model
	model    *engine.Model
	name     string
	loadTime time.Duration
}

func loadModel(path string, threads int) (*loadedModel, error) {
	t0 := time.Now()
	lm, name, err := openFiles(path)
	if err != nil {
		return nil, err
	}
	m, err := engine.Load(lm)
	if err != nil {
		lm.Close()
		if !strings.Contains(err.Error(), name) {
			err = fmt.Errorf("%s: %w", name, err)
		}
		return nil, err
	}
	if m.Tok == nil {
		m.Close()
		lm.Close()
		return nil, fmt.Errorf("%s: the model files carry no tokenizer", name)
	}
	if threads > 0 {
		m.SetThreads(threads)
	}
	return &loadedModel{files: lm, model: m, name: name, loadTime: time.Since(t0)}, nil
}

func (l *loadedModel) Close() {
	l.model.Close()
	l.files.Close()
}

// loadTokenizer builds only the tokenizer of path, which is all `mole tokenize` needs and
// which works even for architectures the engine cannot run.
func loadTokenizer(path string) (*tokenizer.Tokenizer, func(), error) {
	lm, name, err := openFiles(path)
	if err != nil {
		return nil, nil, err
	}
	var tok *tokenizer.Tokenizer
	switch {
	case lm.GGUF != nil:
		tok, err = tokenizer.FromGGUF(lm.GGUF)
	case lm.HF != nil:
		tok, err = tokenizer.FromHF(lm.HF)
	default:
		err = errors.New("no tokenizer")
	}
	if err != nil {
		lm.Close()
		return nil, nil, fmt.Errorf("%s: tokenizer: %w", name, err)
	}
	return tok, func() { lm.Close() }, nil
}
