package server

import (
	"context"
	"testing"

	"github.com/mole-llm/mole/engine"
)

// TestConfigDefaults: a server's Sampling, FixedSeed and NPredict are what a request that
// sets none of those fields gets (llama-server's sampling flags), and a request's own
// fields still win over them.
func TestConfigDefaults(t *testing.T) {
	so := engine.DefaultSamplerOptions()
	so.Temperature, so.Seed = 1.5, 7
	_, ts := newTestServer(t, Config{Sampling: &so, FixedSeed: true, NPredict: 6})
	_, plain := newTestServer(t, Config{})
	ctx := context.Background()
	ask := func(url string, body map[string]any) result {
		t.Helper()
		r, err := post(ctx, url, "/v1/completions", body, nil)
		if err != nil || r.status != 200 {
			t.Fatalf("%v: %v %+v", body, err, r)
		}
		return r
	}
	const prompt = "And the LORD said unto Moses,"
	got := ask(ts.URL, map[string]any{"prompt": prompt})
	// The same request spelled out in full to a server with llama.cpp's defaults.
	want := ask(plain.URL, map[string]any{"prompt": prompt, "temperature": 1.5, "seed": 7, "max_tokens": 6})
	if got.text != want.text || got.usage.CompletionTokens != 6 || want.usage.CompletionTokens != 6 {
		t.Errorf("defaults: %q (%d tokens), spelled out: %q (%d tokens)", got.text, got.usage.CompletionTokens, want.text, want.usage.CompletionTokens)
	}
	// The fixed seed makes requests without one repeat.
	if again := ask(ts.URL, map[string]any{"prompt": prompt}); again.text != got.text {
		t.Errorf("fixed seed: %q then %q", got.text, again.text)
	}
	// A request's fields override the server's.
	greedy := ask(ts.URL, map[string]any{"prompt": prompt, "temperature": 0, "max_tokens": 3})
	wantGreedy := ask(plain.URL, map[string]any{"prompt": prompt, "temperature": 0, "max_tokens": 3})
	if greedy.text != wantGreedy.text || greedy.usage.CompletionTokens != 3 {
		t.Errorf("override: %q (%d tokens), want %q", greedy.text, greedy.usage.CompletionTokens, wantGreedy.text)
	}
}
