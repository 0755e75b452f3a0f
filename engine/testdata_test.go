package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/mole-llm/mole/loader/sharedmodels"

	"github.com/mole-llm/mole/loader"
)

// openTestModel opens and loads a model below the shared models directory.
func openTestModel(t testing.TB, rel string) *Model {
	t.Helper()
	path := filepath.Join(sharedmodels.Find(t), rel)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("../shared/models/%s not found: %v", rel, err)
	}
	lm, err := loader.Open(path)
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
