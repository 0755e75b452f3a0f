package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/mole-llm/mole/engine/defaultmodel"
	"github.com/mole-llm/mole/loader/sharedmodels"

	"github.com/mole-llm/mole/loader"
)

type kjvReference struct {
	Prompts []struct {
		Text       string    `json:"text"`
		IDs        []int32   `json:"ids"`
		LastLogits []float64 `json:"last_logits"`
		Greedy     struct {
			IDs     []int32   `json:"ids"`
			Margins []float64 `json:"top1_top2_logit_margins"`
		} `json:"greedy"`
	} `json:"prompts"`
	RouterFirstPrompt struct {
		IDs    []int32 `json:"ids"`
		Layers []struct {
			Layer       int         `json:"layer"`
			Top2Experts [][]int32   `json:"top2_experts"`
			Top2Weights [][]float64 `json:"top2_weights"`
			Margins     []float64   `json:"prob_margin_2nd_vs_3rd"`
		} `json:"layers"`
	} `json:"router_first_prompt"`
}

func readKJVReference(t testing.TB) *kjvReference {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(sharedmodels.Find(t), "kjv-moe", "reference.json"))
	if err != nil {
		t.Skipf("../shared/models/kjv-moe/reference.json not found: %v", err)
	}
	var r kjvReference
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func argmaxID(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

// greedy runs prompt through a fresh sequence and then n argmax steps with the cache.
func greedy(s *State, prompt []int32, n int) []int32 {
	var logits []float32
	for i, tok := range prompt {
		logits = s.Forward(tok, i)
	}
	var out []int32
	for i := 0; i < n; i++ {
		next := argmaxID(logits)
		out = append(out, next)
		if i+1 < n {
			logits = s.Forward(next, len(prompt)+i)
		}
	}
	return out
}

// openTestModel loads a model below ../shared/models, skipping when it is absent.
func openTestModel(t testing.TB, rel string) *Model {
	t.Helper()
	return loadModelFile(t, sharedmodels.Path(t, rel))
}

// loadModelFile opens and loads the model at path; both are closed when the test ends.
func loadModelFile(t testing.TB, path string) *Model {
	t.Helper()
	lm, err := loader.Open(path)
	return loadOpened(t, lm, err)
}

// loadDefaultModel loads the embedded kjv-moe, which needs nothing outside the repository.
func loadDefaultModel(t testing.TB) *Model {
	t.Helper()
	lm, err := defaultmodel.Open()
	return loadOpened(t, lm, err)
}

func loadOpened(t testing.TB, lm *loader.Model, err error) *Model {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lm.Close() })
	m, err := Load(lm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}
