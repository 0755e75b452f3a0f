package server

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// openaiNPM is the official OpenAI client the test installs: a fixed version, so a new
// release cannot change what the test checks. 6.x is the last major line supporting the
// machine's Node 20 (7.x needs Node 22).
const openaiNPM = "openai@6.49.0"

// TestOpenAIClient runs the official openai npm package against the server on the
// embedded model: chat and completions, streamed and whole, greedy and seeded; the streamed
// text equals the whole text for the same seed. It skips, saying why, when node or npm is
// missing or the package cannot be installed (no registry access).
func TestOpenAIClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: the openai npm client test needs Node.js and npm")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm not found: the openai npm client test needs Node.js and npm")
	}
	dir := t.TempDir()
	script, err := os.ReadFile(filepath.Join("testdata", "client.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "client.mjs"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", dir, openaiNPM)
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Skipf("npm install %s failed (is the npm registry reachable?): %v\n%s", openaiNPM, err, out)
	}

	_, ts := newTestServer(t, Config{Parallel: 2, APIKey: "test-key"})
	cmd := exec.CommandContext(ctx, node, "client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MOLE_BASE_URL="+ts.URL, "MOLE_API_KEY=test-key", "MOLE_MODEL=kjv-moe")
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("client script: %v\n%s", err, raw)
	}
	type seen struct {
		Text, Finish, Object, Role string
		Chunks                     int
		Usage                      *usage
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("client output %s: %v", raw, err)
	}
	get := func(k string) seen {
		var s seen
		if err := json.Unmarshal(out[k], &s); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return s
	}
	for _, mode := range []string{"greedy", "seeded"} {
		for _, ep := range []struct{ name, object, streamObject string }{
			{"chat", "chat.completion", "chat.completion.chunk"},
			{"completion", "text_completion", "text_completion"},
		} {
			whole, streamed := get(ep.name+"_"+mode), get(ep.name+"_stream_"+mode)
			t.Logf("%s %s: %q (%s)", ep.name, mode, whole.Text, whole.Finish)
			if whole.Text == "" || whole.Text != streamed.Text || whole.Finish != streamed.Finish {
				t.Errorf("%s %s: whole %q (%s), streamed %q (%s)", ep.name, mode, whole.Text, whole.Finish, streamed.Text, streamed.Finish)
			}
			if whole.Object != ep.object || streamed.Object != ep.streamObject {
				t.Errorf("%s %s: objects %q and %q", ep.name, mode, whole.Object, streamed.Object)
			}
			if whole.Usage == nil || streamed.Usage == nil || !sameUsage(*whole.Usage, *streamed.Usage) || streamed.Usage.CompletionTokens != streamed.Chunks {
				t.Errorf("%s %s: usage whole %+v, streamed %+v over %d chunks", ep.name, mode, whole.Usage, streamed.Usage, streamed.Chunks)
			}
			if ep.name == "chat" && (whole.Role != "assistant" || streamed.Role != "assistant") {
				t.Errorf("%s %s: roles %q, %q", ep.name, mode, whole.Role, streamed.Role)
			}
		}
	}
	var models []string
	json.Unmarshal(out["models"], &models)
	if len(models) != 1 || models[0] != "kjv-moe" {
		t.Errorf("models.list: %v", models)
	}
	var e struct {
		Status            int
		Code, Param, Type string
	}
	json.Unmarshal(out["error"], &e)
	if e.Status != 400 || e.Code != "model_not_found" || e.Param != "model" || e.Type != "invalid_request_error" {
		t.Errorf("client's view of an error: %+v", e)
	}
}

// sameUsage compares token counts but for the cached ones: the streamed request repeats the
// whole one's prompt, which the prompt cache then reuses.
func sameUsage(a, b usage) bool {
	a.PromptTokensDetails, b.PromptTokensDetails = promptTokensDetails{}, promptTokensDetails{}
	return a == b
}
