package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mole-llm/mole/engine"
	"github.com/mole-llm/mole/engine/defaultmodel"
)

var (
	modelOnce sync.Once
	model     *engine.Model
	modelErr  error
)

// testModel is the embedded kjv-moe, loaded once for the package.
func testModel(t testing.TB) *engine.Model {
	t.Helper()
	modelOnce.Do(func() {
		lm, err := defaultmodel.Open()
		if err != nil {
			modelErr = err
			return
		}
		model, modelErr = engine.Load(lm)
	})
	if modelErr != nil {
		t.Fatal(modelErr)
	}
	return model
}

// newTestServer serves cfg (on the test model) on loopback.
func newTestServer(t testing.TB, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	cfg.Model = testModel(t)
	if cfg.ModelName == "" {
		cfg.ModelName = "kjv-moe"
	}
	srv := New(cfg)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		ts.Close()
	})
	return srv, ts
}

type result struct {
	status  int
	text    string
	chunks  int // content chunks of a stream
	finish  string
	usage   usage
	errBody map[string]any
	header  http.Header
}

// post sends body to path and reads the whole response, streamed or not.
func post(ctx context.Context, url, path string, body any, hdr map[string]string) (result, error) {
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		b, _ = json.Marshal(v)
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	r := result{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode != 200 {
		json.NewDecoder(resp.Body).Decode(&r.errBody)
		return r, nil
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var out struct {
			Choices []struct {
				Text         string `json:"text"`
				Message      struct{ Content string }
				FinishReason string `json:"finish_reason"`
			}
			Usage usage
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return r, err
		}
		r.text = out.Choices[0].Text + out.Choices[0].Message.Content
		r.finish, r.usage = out.Choices[0].FinishReason, out.Usage
		return r, nil
	}
	return readStream(resp.Body, r)
}

// readStream parses OpenAI server-sent events strictly: "data: " lines separated by blank
// lines, ending with [DONE].
func readStream(body io.Reader, r result) (result, error) {
	sc := bufio.NewScanner(body)
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if done {
			return r, fmt.Errorf("data after [DONE]: %q", line)
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			return r, fmt.Errorf("not an SSE data line: %q", line)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var c struct {
			Object  string
			Choices []struct {
				Text  *string
				Delta *struct {
					Role    string
					Content *string
				}
				FinishReason *string `json:"finish_reason"`
			}
			Usage *usage
			Error map[string]any
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			return r, err
		}
		if c.Error != nil {
			r.errBody = map[string]any{"error": c.Error}
			return r, nil
		}
		if c.Usage != nil {
			r.usage = *c.Usage
		}
		for _, ch := range c.Choices {
			if ch.FinishReason != nil {
				r.finish = *ch.FinishReason
				continue
			}
			var t *string
			if ch.Delta != nil {
				t = ch.Delta.Content
				if ch.Delta.Role != "" {
					continue // the opening chunk
				}
			} else {
				t = ch.Text
			}
			if t != nil {
				r.text += *t
				r.chunks++
			}
		}
	}
	if !done {
		return r, fmt.Errorf("stream ended without [DONE] (%v)", sc.Err())
	}
	return r, nil
}

var prompts = []string{
	"In the beginning", "And the LORD said unto Moses", "Blessed are", "For God so loved",
	"And it came to pass", "The LORD is my shepherd", "Now the serpent was", "Thus saith the LORD",
}

// TestBatchingExact: 8 concurrent greedy requests (decoding together in one batch, joining at
// different steps) return exactly the text of the same requests run one at a time.
func TestBatchingExact(t *testing.T) {
	_, ts := newTestServer(t, Config{Parallel: 8})
	ctx := context.Background()
	body := func(i int) map[string]any {
		return map[string]any{"model": "kjv-moe", "prompt": prompts[i], "max_tokens": 24 + i, "temperature": 0}
	}
	var alone []result
	for i := range prompts {
		r, err := post(ctx, ts.URL, "/v1/completions", body(i), nil)
		if err != nil || r.status != 200 {
			t.Fatalf("request %d: %v %+v", i, err, r)
		}
		alone = append(alone, r)
	}
	together := make([]result, len(prompts))
	var wg sync.WaitGroup
	for i := range prompts {
		wg.Go(func() {
			b := body(i)
			b["stream"] = i%2 == 0 // streamed and whole responses in the same batch
			r, err := post(ctx, ts.URL, "/v1/completions", b, nil)
			if err != nil {
				t.Error(err)
			}
			together[i] = r
		})
	}
	wg.Wait()
	for i := range prompts {
		if together[i].text != alone[i].text || together[i].finish != alone[i].finish {
			t.Errorf("prompt %d: concurrent %q (%s), alone %q (%s)", i, together[i].text, together[i].finish, alone[i].text, alone[i].finish)
		}
		if alone[i].text == "" {
			t.Errorf("prompt %d: empty text", i)
		}
	}
}

// scrape returns the value of every sample in /metrics, keyed by name and labels.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestLoad: 32 concurrent streaming clients send 64 requests in all to a server with 4 slots
// and a queue of 8: each completes or gets 503 with Retry-After, none hangs, the usage of each
// stream matches its chunks, and the /metrics counters add up to what the clients saw.
func TestLoad(t *testing.T) {
	_, ts := newTestServer(t, Config{Parallel: 4, Queue: 8})
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var (
		mu                   sync.Mutex
		ok, rejected         int
		promptSum, genSum    int
		cachedSum            int // prompt tokens the prompt cache reused
		chatOK, completionOK int
		started, gaps, evals int // requests with a first token, inter-token gaps, tokens evaluated
	)
	var wg sync.WaitGroup
	for c := 0; c < 32; c++ {
		wg.Go(func() {
			for k := 0; k < 2; k++ {
				i := (c*2 + k) % len(prompts)
				path, body := "/v1/completions", map[string]any{"prompt": prompts[i]}
				if (c+k)%2 == 1 {
					path, body = "/v1/chat/completions", map[string]any{"messages": []map[string]string{{"role": "user", "content": prompts[i]}}}
				}
				body["stream"], body["stream_options"] = true, map[string]bool{"include_usage": true}
				body["max_tokens"], body["seed"], body["temperature"] = 8+c%8, c, 0.8
				r, err := post(ctx, ts.URL, path, body, nil)
				if err != nil {
					t.Errorf("client %d request %d: %v", c, k, err)
					return
				}
				mu.Lock()
				switch r.status {
				case 200:
					ok++
					if path == "/v1/completions" {
						completionOK++
					} else {
						chatOK++
					}
					promptSum += r.usage.PromptTokens
					cachedSum += r.usage.PromptTokensDetails.CachedTokens
					genSum += r.usage.CompletionTokens
					if r.usage.CompletionTokens > 0 {
						started++
						gaps += r.usage.CompletionTokens - 1
					}
					// Every prompt token and every generated one is evaluated, except the
					// last of a request cut at max_tokens (nothing samples after it) and
					// the prompt tokens reused from a slot's cache (prompts repeat here).
					evals += r.usage.PromptTokens - r.usage.PromptTokensDetails.CachedTokens + r.usage.CompletionTokens
					if r.finish == "length" {
						evals--
					}
					if r.usage.CompletionTokens != r.chunks || r.usage.TotalTokens != r.usage.PromptTokens+r.usage.CompletionTokens {
						t.Errorf("client %d: usage %+v but %d content chunks", c, r.usage, r.chunks)
					}
					if r.finish != "length" && r.finish != "stop" {
						t.Errorf("client %d: finish_reason %q", c, r.finish)
					}
				case 503:
					rejected++
					if r.header.Get("Retry-After") == "" {
						t.Errorf("503 without Retry-After")
					}
				default:
					t.Errorf("client %d: status %d %v", c, r.status, r.errBody)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok+rejected != 64 {
		t.Fatalf("%d completed + %d rejected, want 64 in all", ok, rejected)
	}
	if ok < 12 { // at least the slots and the queue's worth are served
		t.Errorf("only %d requests completed", ok)
	}
	t.Logf("%d completed (%d chat, %d completions), %d rejected with 503; %d prompt and %d generated tokens", ok, chatOK, completionOK, rejected, promptSum, genSum)
	m := scrape(t, ts.URL)
	finished := m[`mole_requests_total{endpoint="chat",outcome="length"}`] + m[`mole_requests_total{endpoint="chat",outcome="stop"}`] +
		m[`mole_requests_total{endpoint="completions",outcome="length"}`] + m[`mole_requests_total{endpoint="completions",outcome="stop"}`]
	rej := m[`mole_requests_total{endpoint="chat",outcome="rejected"}`] + m[`mole_requests_total{endpoint="completions",outcome="rejected"}`]
	checks := []struct {
		name      string
		got, want float64
	}{
		{"llamacpp:prompt_tokens_total", m["llamacpp:prompt_tokens_total"], float64(promptSum - cachedSum)},
		{"mole_prompt_tokens_cached_total", m["mole_prompt_tokens_cached_total"], float64(cachedSum)},
		{"llamacpp:tokens_predicted_total", m["llamacpp:tokens_predicted_total"], float64(genSum)},
		{"finished requests", finished, float64(ok)},
		{"rejected requests", rej, float64(rejected)},
		{"time-to-first-token observations", m["mole_time_to_first_token_seconds_count"], float64(started)},
		{"per-token latency observations", m["mole_time_per_output_token_seconds_count"], float64(gaps)},
		{"llamacpp:requests_processing", m["llamacpp:requests_processing"], 0},
		{"llamacpp:requests_deferred", m["llamacpp:requests_deferred"], 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// Every evaluated token routes to NExpertUsed experts in every layer.
	var act float64
	for k, v := range m {
		if strings.HasPrefix(k, `mole_expert_activations_total{expert=`) && strings.Contains(k, `layer="0"`) {
			act += v
		}
	}
	cfg := testModel(t).Config
	if want := float64(evals * cfg.NExpertUsed); act != want {
		t.Errorf("layer 0 expert activations %v, want %v", act, want)
	}
}

// TestBadRequests: each malformed request gets its status and OpenAI's error body, while a
// stream in flight beside them is undisturbed.
func TestBadRequests(t *testing.T) {
	_, ts := newTestServer(t, Config{Parallel: 2, APIKey: "sekrit", MaxBody: 64 << 10, Ctx: 64})
	auth := map[string]string{"Authorization": "Bearer sekrit"}
	ctx := context.Background()
	good := map[string]any{"prompt": "In the beginning", "max_tokens": 40, "temperature": 0, "stream": true}
	want, err := post(ctx, ts.URL, "/v1/completions", good, auth)
	if err != nil || want.status != 200 {
		t.Fatal(err, want)
	}
	inflight := make(chan result)
	go func() {
		r, err := post(ctx, ts.URL, "/v1/completions", good, auth)
		if err != nil {
			t.Error(err)
		}
		inflight <- r
	}()

	long := strings.Repeat("And the LORD spake unto Moses, saying, ", 20)
	cases := []struct {
		name, path string
		body       any
		hdr        map[string]string
		status     int
		param      string
		code       string
	}{
		{"malformed JSON", "/v1/chat/completions", `{"messages": [`, auth, 400, "", ""},
		{"not an object", "/v1/completions", `[1,2]`, auth, 400, "", ""},
		{"trailing garbage", "/v1/completions", `{"prompt":"a"} x`, auth, 400, "", ""},
		{"wrong type", "/v1/completions", `{"prompt":"a","max_tokens":"ten"}`, auth, 400, "max_tokens", "invalid_type"},
		{"wrong type chat", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"temperature":"hot"}`, auth, 400, "temperature", "invalid_type"},
		{"wrong stop type", "/v1/completions", `{"prompt":"a","stop":5}`, auth, 400, "stop", "invalid_type"},
		{"prompt too long", "/v1/completions", map[string]any{"prompt": long}, auth, 400, "prompt", "context_length_exceeded"},
		{"chat too long", "/v1/chat/completions", map[string]any{"messages": []map[string]string{{"role": "user", "content": long}}}, auth, 400, "messages", "context_length_exceeded"},
		{"max_tokens 0", "/v1/completions", map[string]any{"prompt": "a", "max_tokens": 0}, auth, 400, "max_tokens", "integer_below_min_value"},
		{"max_tokens negative", "/v1/chat/completions", map[string]any{"messages": []map[string]string{{"role": "user", "content": "a"}}, "max_tokens": -3}, auth, 400, "max_tokens", "integer_below_min_value"},
		{"min_p above 1", "/v1/chat/completions", map[string]any{"messages": []map[string]string{{"role": "user", "content": "hi"}}, "max_tokens": 4, "min_p": 2}, auth, 400, "min_p", "invalid_value"},
		{"top_k below -1", "/v1/completions", map[string]any{"prompt": "a", "top_k": -5}, auth, 400, "top_k", "invalid_value"},
		{"top_p above 1", "/v1/completions", map[string]any{"prompt": "a", "top_p": 2}, auth, 400, "top_p", "invalid_value"},
		{"repeat_penalty 0", "/v1/completions", map[string]any{"prompt": "a", "repeat_penalty": 0}, auth, 400, "repeat_penalty", "invalid_value"},
		{"repeat_last_n below -1", "/v1/completions", map[string]any{"prompt": "a", "repeat_penalty": 1.1, "repeat_last_n": -7}, auth, 400, "repeat_last_n", "invalid_value"},
		{"temperature negative", "/v1/completions", map[string]any{"prompt": "a", "temperature": -1}, auth, 400, "temperature", "invalid_value"},
		{"unknown model", "/v1/completions", map[string]any{"prompt": "a", "model": "gpt-4o"}, auth, 400, "model", "model_not_found"},
		{"bad role", "/v1/chat/completions", map[string]any{"messages": []map[string]string{{"role": "wizard", "content": "a"}}}, auth, 400, "messages", "invalid_value"},
		{"no messages", "/v1/chat/completions", map[string]any{"messages": []any{}}, auth, 400, "messages", "empty_array"},
		{"wrong key", "/v1/completions", map[string]any{"prompt": "a"}, map[string]string{"Authorization": "Bearer nope"}, 401, "", "invalid_api_key"},
		{"no key", "/v1/chat/completions", map[string]any{"prompt": "a"}, nil, 401, "", "invalid_api_key"},
		{"too large", "/v1/completions", `{"prompt":"` + strings.Repeat("a", 80<<10) + `"}`, auth, 413, "", "request_too_large"},
	}
	for _, c := range cases {
		r, err := post(ctx, ts.URL, c.path, c.body, c.hdr)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		e, _ := r.errBody["error"].(map[string]any)
		if r.status != c.status || e == nil {
			t.Errorf("%s: status %d body %v, want %d with an error object", c.name, r.status, r.errBody, c.status)
			continue
		}
		for _, k := range []string{"message", "type", "param", "code"} {
			if _, ok := e[k]; !ok {
				t.Errorf("%s: error object lacks %q: %v", c.name, k, e)
			}
		}
		if m, _ := e["message"].(string); m == "" || e["type"] == "" {
			t.Errorf("%s: error without message or type: %v", c.name, e)
		}
		if p, _ := e["param"].(string); p != c.param {
			t.Errorf("%s: param %q, want %q", c.name, p, c.param)
		}
		if code, _ := e["code"].(string); c.code != "" && code != c.code {
			t.Errorf("%s: code %q, want %q", c.name, code, c.code)
		}
	}
	for _, p := range []string{"/health", "/metrics"} { // open without the key
		resp, err := http.Get(ts.URL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v %v", p, err, resp.Status)
		}
		resp.Body.Close()
	}
	got := <-inflight
	if got.status != 200 || got.text != want.text || got.chunks != want.chunks {
		t.Errorf("stream beside the bad requests: %q (%d chunks), want %q (%d)", got.text, got.chunks, want.text, want.chunks)
	}
}

// TestDisconnectFreesSlot: with one slot, a client that goes away mid-stream frees it, so the
// next request is served and the cancellation is counted.
func TestDisconnectFreesSlot(t *testing.T) {
	_, ts := newTestServer(t, Config{Parallel: 1, Queue: 1})
	ctx, cancel := context.WithCancel(context.Background())
	b, _ := json.Marshal(map[string]any{"prompt": "In the beginning", "max_tokens": 400, "temperature": 0, "stream": true})
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/completions", bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	for range 3 { // the first content chunks arrive: the request holds the slot
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := scrape(t, ts.URL)
		if m[`mole_requests_total{endpoint="completions",outcome="cancelled"}`] == 1 && m["llamacpp:requests_processing"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed after the disconnect: %v", m)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r, err := post(context.Background(), ts.URL, "/v1/completions", map[string]any{"prompt": "Blessed", "max_tokens": 5}, nil)
	if err != nil || r.status != 200 || r.usage.CompletionTokens == 0 {
		t.Fatalf("request after the disconnect: %v %+v", err, r)
	}
}

// TestShutdownEndsStreams: Shutdown ends a stream in flight with an error event, answers a
// queued non-streaming request with 503, and refuses new requests.
func TestShutdownEndsStreams(t *testing.T) {
	srv, ts := newTestServer(t, Config{Parallel: 1, Queue: 2})
	ctx := context.Background()
	res := make(chan result, 2)
	go func() {
		r, _ := post(ctx, ts.URL, "/v1/chat/completions", map[string]any{"messages": []map[string]string{{"role": "user", "content": "Tell"}},
			"max_tokens": 500, "stream": true}, nil)
		res <- r
	}()
	for scrape(t, ts.URL)["llamacpp:requests_processing"] != 1 {
		time.Sleep(2 * time.Millisecond)
	}
	go func() {
		r, _ := post(ctx, ts.URL, "/v1/completions", map[string]any{"prompt": "a", "max_tokens": 500}, nil)
		res <- r
	}()
	for scrape(t, ts.URL)["llamacpp:requests_deferred"] != 1 {
		time.Sleep(2 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case r := <-res:
			e, _ := r.errBody["error"].(map[string]any)
			if e == nil || e["code"] != "server_shutdown" {
				t.Errorf("after shutdown: status %d, %v", r.status, r.errBody)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a request hangs after shutdown")
		}
	}
	r, err := post(ctx, ts.URL, "/v1/completions", map[string]any{"prompt": "a"}, nil)
	if err != nil || r.status != 503 {
		t.Errorf("request after shutdown: %v status %d", err, r.status)
	}
}

// TestEndpointsShape checks /v1/models, /health and a whole chat completion's fields.
func TestEndpointsShape(t *testing.T) {
	_, ts := newTestServer(t, Config{Parallel: 1})
	resp, err := http.Get(ts.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var ml modelList
	json.NewDecoder(resp.Body).Decode(&ml)
	resp.Body.Close()
	if ml.Object != "list" || len(ml.Data) != 1 || ml.Data[0].ID != "kjv-moe" || ml.Data[0].Object != "model" {
		t.Errorf("models: %+v", ml)
	}
	b, _ := json.Marshal(map[string]any{"model": "kjv-moe", "messages": []map[string]any{
		{"role": "system", "content": "You are helpful."},
		{"role": "user", "content": []map[string]string{{"type": "text", "text": "Who made heaven?"}}}},
		"max_completion_tokens": 6, "stop": "\n"})
	resp, err = http.Post(ts.URL+"/v1/chat/completions", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, re := range []string{`"object":"chat.completion"`, `"id":"chatcmpl-`, `"created":\d+`, `"model":"kjv-moe"`,
		`"choices":\[\{"index":0,"message":\{"role":"assistant","content":"`, `"logprobs":null`,
		`"finish_reason":"(stop|length)"`, `"usage":\{"prompt_tokens":\d+,"completion_tokens":\d+,"total_tokens":\d+,"prompt_tokens_details":\{"cached_tokens":\d+\}\}`} {
		if !regexp.MustCompile(re).Match(raw) {
			t.Errorf("chat completion lacks %s: %s", re, raw)
		}
	}
}

// BenchmarkServeParallel measures aggregate generated tokens/s of 8 concurrent greedy clients
// (48 tokens each, non-streaming completions) against servers with --parallel 1, 4 and 8,
// and reports each as a ratio to parallel 1. The three servers take turns within every
// iteration, so the ratios compare runs under the same machine load.
func BenchmarkServeParallel(b *testing.B) {
	par := []int{1, 4, 8}
	urls := make([]string, len(par))
	for i, p := range par {
		_, ts := newTestServer(b, Config{Parallel: p, Queue: 16})
		urls[i] = ts.URL
	}
	elapsed := make([]time.Duration, len(par))
	tokens := make([]int, len(par))
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i := range par {
			t0 := time.Now()
			var wg sync.WaitGroup
			var mu sync.Mutex
			for c := 0; c < 8; c++ {
				wg.Go(func() {
					r, err := post(context.Background(), urls[i], "/v1/completions",
						map[string]any{"prompt": prompts[c], "max_tokens": 48, "temperature": 0}, nil)
					if err != nil || r.status != 200 {
						b.Error(err, r.status)
						return
					}
					mu.Lock()
					tokens[i] += r.usage.CompletionTokens
					mu.Unlock()
				})
			}
			wg.Wait()
			elapsed[i] += time.Since(t0)
		}
	}
	base := float64(tokens[0]) / elapsed[0].Seconds()
	for i, p := range par {
		tps := float64(tokens[i]) / elapsed[i].Seconds()
		b.ReportMetric(tps, fmt.Sprintf("tok/s@p%d", p))
		if p != 1 {
			b.ReportMetric(tps/base, fmt.Sprintf("ratio@p%d", p))
		}
	}
}
