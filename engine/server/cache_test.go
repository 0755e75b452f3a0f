package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mole-llm/mole/engine"
)

// greedyEval is an oracle independent of the server: it generates greedily from prompt with
// State.Forward and argmax (temperature 0 picks the top logit, ties to the lower id, and
// the server's default repeat penalty is 1), as a request of at most maxTok tokens does, and
// returns the tokens such a generation evaluates into a KV cache (the prompt and every
// generated token but one that ends at the token limit, which nothing samples after), the
// text, and how many tokens it generated.
func greedyEval(m *engine.Model, prompt []int32, maxTok, ctx int) (evaluated []int32, text string, gen int) {
	s := m.NewState(ctx)
	var logits []float32
	for i, id := range prompt {
		logits = s.Forward(id, i)
	}
	toks := slices.Clone(prompt)
	dec := m.Tok.NewDecoder()
	var sb strings.Builder
	for gen < maxTok {
		id := int32(0)
		for k, v := range logits {
			if v > logits[id] {
				id = int32(k)
			}
		}
		if m.Tok.IsEOG(id) {
			break
		}
		gen++
		sb.WriteString(dec.Next(id))
		if gen == maxTok || len(toks) == ctx {
			break
		}
		logits = s.Forward(id, len(toks))
		toks = append(toks, id)
	}
	sb.WriteString(dec.Flush())
	return toks, sb.String(), gen
}

func commonPrefix(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// TestPromptCacheConversation: two chat conversations take turns on a server with two
// slots. From its second turn on, each request reuses from the slot that served its previous
// turn exactly the common prefix of its prompt and the tokens that turn evaluated (from an
// independent oracle): a new conversation does not evict the other one's slot for the
// template's shared markers, and a conversation returns to its slot even when that is not
// the least recently used one. Every response (text, usage) equals a server's with the
// cache off. /metrics counts the reused tokens apart, and the layer-0 expert activations
// show only the other prompt tokens were evaluated. A request with "cache_prompt": false
// reuses nothing.
func TestPromptCacheConversation(t *testing.T) {
	m := testModel(t)
	warmSrv, warm := newTestServer(t, Config{Parallel: 2})
	_, cold := newTestServer(t, Config{Parallel: 2, NoCachePrompt: true})
	ctxLen := warmSrv.Config().Ctx
	ctx := context.Background()
	const maxTok = 16
	users := [][]string{
		{"Who made the heaven and the earth in the beginning?", "And what did he make on the second day?", "Tell me of the waters."},
		{"Blessed are the meek, for they shall inherit what?", "And who shall see God?", "What of the peacemakers?"},
	}
	hist := make([][]map[string]string, len(users))
	prev := make([][]int32, len(users)) // the tokens the conversation's previous turn evaluated
	prevPrompt := make([]int, len(users))
	// Conversation 1 starts while 0 holds a slot; 0 takes two turns in a row, the second
	// while its own slot is the more recently used one.
	schedule := [][2]int{{0, 0}, {1, 0}, {0, 1}, {0, 2}, {1, 1}, {1, 2}}
	var promptSum, cachedSum, evals, withCache int
	for _, ct := range schedule {
		c, turn := ct[0], ct[1]
		{
			hist[c] = append(hist[c], map[string]string{"role": "user", "content": users[c][turn]})
			body := map[string]any{"messages": hist[c], "max_tokens": maxTok, "temperature": 0}
			if c == 1 { // the usage of a stream carries the cached tokens too
				body["stream"], body["stream_options"] = true, map[string]bool{"include_usage": true}
			}
			w, err := post(ctx, warm.URL, "/v1/chat/completions", body, nil)
			if err != nil || w.status != 200 {
				t.Fatalf("conversation %d turn %d: %v %+v", c, turn, err, w)
			}
			k, err := post(ctx, cold.URL, "/v1/chat/completions", body, nil)
			if err != nil || k.status != 200 {
				t.Fatalf("conversation %d turn %d, cache off: %v %+v", c, turn, err, k)
			}

			msgs := make([]engine.Message, len(hist[c]))
			for i, h := range hist[c] {
				msgs[i] = engine.Message{Role: h["role"], Content: h["content"]}
			}
			text, err := engine.ApplyChatTemplate(m.ChatFormat(), msgs, true)
			if err != nil {
				t.Fatal(err)
			}
			ids := m.Tok.Encode(text, m.Tok.AddBOS(), true)
			want := min(commonPrefix(ids, prev[c]), len(ids)-1) // nothing held before the first turn
			evaluated, oracle, gen := greedyEval(m, ids, maxTok, ctxLen)

			wc, kc := w.usage.PromptTokensDetails.CachedTokens, k.usage.PromptTokensDetails.CachedTokens
			if wc != want || kc != 0 {
				t.Errorf("conversation %d turn %d: %d of %d prompt tokens cached (cache off: %d), want %d", c, turn, wc, len(ids), kc, want)
			}
			if turn > 0 && want < prevPrompt[c] {
				t.Errorf("conversation %d turn %d: reused %d tokens, not even the %d of the previous prompt", c, turn, want, prevPrompt[c])
			}
			if w.text != k.text || w.finish != k.finish || w.text != oracle || w.usage.CompletionTokens != gen ||
				w.usage.PromptTokens != len(ids) || k.usage.PromptTokens != len(ids) || w.usage.CompletionTokens != k.usage.CompletionTokens {
				t.Errorf("conversation %d turn %d: with the cache %q %+v\nwithout %q %+v\noracle %q (%d tokens)", c, turn, w.text, w.usage, k.text, k.usage, oracle, gen)
			}
			promptSum += len(ids)
			cachedSum += want
			evals += len(evaluated) - want
			if want > 0 {
				withCache++
			}
			prev[c], prevPrompt[c] = evaluated, len(ids)
			hist[c] = append(hist[c], map[string]string{"role": "assistant", "content": w.text})
		}
	}
	if withCache < 4 {
		t.Errorf("only %d requests reused their conversation's cache", withCache)
	}

	for _, srv := range []struct {
		name                   string
		url                    string
		prompt, cached, evals  int
		checkEvaluatedByRouter bool
	}{
		{"cache on", warm.URL, promptSum - cachedSum, cachedSum, evals, true},
		{"cache off", cold.URL, promptSum, 0, 0, false},
	} {
		got := scrape(t, srv.url)
		if got["llamacpp:prompt_tokens_total"] != float64(srv.prompt) || got["mole_prompt_tokens_cached_total"] != float64(srv.cached) {
			t.Errorf("%s: prompt_tokens_total %v, prompt_tokens_cached_total %v; want %d, %d", srv.name,
				got["llamacpp:prompt_tokens_total"], got["mole_prompt_tokens_cached_total"], srv.prompt, srv.cached)
		}
		if !srv.checkEvaluatedByRouter {
			continue
		}
		var act float64
		for k, v := range got {
			if strings.HasPrefix(k, `mole_expert_activations_total{expert=`) && strings.Contains(k, `layer="0"`) {
				act += v
			}
		}
		if want := float64(srv.evals * m.Config.NExpertUsed); act != want {
			t.Errorf("%s: layer 0 expert activations %v, want %v (%d tokens evaluated)", srv.name, act, want, srv.evals)
		}
	}

	// The last request again, opting out: the slot holds its whole prompt, but nothing is
	// reused, and the text is the same.
	last := map[string]any{"messages": hist[1][:len(hist[1])-1], "max_tokens": maxTok, "temperature": 0, "cache_prompt": false}
	r, err := post(ctx, warm.URL, "/v1/chat/completions", last, nil)
	if err != nil || r.status != 200 {
		t.Fatal(err, r)
	}
	if r.usage.PromptTokensDetails.CachedTokens != 0 || r.text != hist[1][len(hist[1])-1]["content"] {
		t.Errorf(`"cache_prompt": false: %d tokens cached, text %q, want none and %q`, r.usage.PromptTokensDetails.CachedTokens, r.text, hist[1][len(hist[1])-1]["content"])
	}
}

// TestPromptCacheCancelledPrefill drives the scheduler by hand: a request cancelled after
// three prefill steps of four tokens leaves its slot holding exactly what it evaluated
// (those twelve tokens after the prefix it shared with the slot's previous request), so the
// same prompt sent again reuses that much (not the whole prompt, whose keys and values were
// never computed) and generates the text of a cold run.
func TestPromptCacheCancelledPrefill(t *testing.T) {
	m := testModel(t)
	const chunk, steps, ctxLen = 4, 3, 256
	met := newMetrics(m.Config.NLayer, m.Config.NExpert)
	s := newScheduler(m, 1, ctxLen, 4, chunk, met)
	ids := m.Tok.Encode(strings.Repeat("And God said, Let there be light: and there was light. ", 4), true, false)
	if len(ids) <= chunk*steps+1 {
		t.Fatalf("prompt of %d tokens is too short for the test", len(ids))
	}
	o := engine.GenerateOptions{MaxTokens: 12}

	// A first request fills the slot with other tokens, so that positions the cancelled one
	// never wrote hold stale keys and values rather than zeros.
	other := m.Tok.Encode(strings.Repeat("Blessed are the poor in spirit: for theirs is the kingdom of heaven. ", 3), true, false)

	collect := func(r *request) (string, engine.Stats) {
		t.Helper()
		var sb strings.Builder
		for range 10000 {
			s.admit()
			s.step()
			pieces, done, st, err := r.take(nil)
			for _, p := range pieces {
				sb.WriteString(p)
			}
			if done {
				if err != nil {
					t.Fatal(err)
				}
				return sb.String(), st
			}
		}
		t.Fatal("the request did not finish")
		return "", engine.Stats{}
	}
	start := func(ctx context.Context, prompt []int32) *request {
		r := newRequest(ctx, "completions", prompt, o)
		r.cache = true
		if !s.submit(r) {
			t.Fatal("queue full")
		}
		return r
	}

	collect(start(context.Background(), other))

	cctx, cancel := context.WithCancel(context.Background())
	r := start(cctx, ids)
	s.admit()
	for range steps {
		s.step()
	}
	cancel()
	s.step() // sees the cancellation and frees the slot
	if _, done, _, _ := r.take(nil); !done {
		t.Fatal("the cancelled request still holds its slot")
	}

	// The cancelled request kept what it shared with the first one (BOS), then evaluated
	// its chunks after that.
	shared := commonPrefix(other, ids)
	text, st := collect(start(context.Background(), ids))
	if want := shared + chunk*steps; st.CachedTokens != want || st.PromptTokens != len(ids) {
		t.Errorf("after a prefill cancelled at %d of %d tokens: %d cached, want %d", want, len(ids), st.CachedTokens, want)
	}
	var want strings.Builder
	if _, err := m.Generate(context.Background(), m.NewState(ctxLen), ids, o, func(x string) error { want.WriteString(x); return nil }); err != nil {
		t.Fatal(err)
	}
	if text != want.String() || text == "" {
		t.Errorf("after the cancelled prefill %q, cold %q", text, want.String())
	}
}

// firstTokenTime sends a streamed chat request and returns how long its first content chunk
// took to arrive, the whole text and the usage.
func firstTokenTime(tb testing.TB, url string, body map[string]any) (time.Duration, string, usage) {
	tb.Helper()
	body["stream"], body["stream_options"] = true, map[string]bool{"include_usage": true}
	raw, _ := json.Marshal(body)
	t0 := time.Now()
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		tb.Fatalf("status %d", resp.StatusCode)
	}
	var ttft time.Duration
	var text strings.Builder
	var u usage
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct{ Delta struct{ Content *string } }
			Usage   *usage
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			tb.Fatal(err)
		}
		if c.Usage != nil {
			u = *c.Usage
		}
		for _, ch := range c.Choices {
			if t := ch.Delta.Content; t != nil && *t != "" {
				if ttft == 0 {
					ttft = time.Since(t0)
				}
				text.WriteString(*t)
			}
		}
	}
	if ttft == 0 {
		tb.Fatal("no content in the stream")
	}
	return ttft, text.String(), u
}

// BenchmarkPromptCacheTTFT measures the time to first token of the 5th turn of a chat
// (about 400 prompt tokens, greedy) on one slot with the prompt cache and without it, and
// reports ttft-ratio, the time without over the time with: how many times sooner the first
// token comes. The two servers take turns within every iteration, so the ratio compares
// runs under the same machine load. Turns 1 to 4 are sent in full first, as a client would.
func BenchmarkPromptCacheTTFT(b *testing.B) {
	users := []string{
		"In the beginning God created the heaven and the earth. And the earth was without form, and void. What came next?",
		"And God said, Let there be light: and there was light. And God saw the light, that it was good. What did he divide?",
		"And God called the firmament Heaven. And the evening and the morning were the second day. What of the waters?",
		"And God made two great lights; the greater light to rule the day, and the lesser light to rule the night. Why?",
		"And God blessed them, saying, Be fruitful, and multiply, and fill the waters in the seas. What did he say of man?",
	}
	_, warm := newTestServer(b, Config{Parallel: 1})
	_, cold := newTestServer(b, Config{Parallel: 1, NoCachePrompt: true})
	urls := []string{warm.URL, cold.URL}
	var total [2]time.Duration
	var prompt, cached int
	b.ResetTimer()
	for range b.N {
		for i, url := range urls {
			var hist []map[string]string
			for turn, msg := range users {
				hist = append(hist, map[string]string{"role": "user", "content": msg})
				d, text, u := firstTokenTime(b, url, map[string]any{"messages": hist, "max_tokens": 32, "temperature": 0})
				hist = append(hist, map[string]string{"role": "assistant", "content": text})
				if turn == len(users)-1 {
					total[i] += d
					if i == 0 {
						prompt, cached = u.PromptTokens, u.PromptTokensDetails.CachedTokens
					}
				}
			}
		}
	}
	if cached == 0 {
		b.Fatal("the 5th turn reused nothing from the prompt cache")
	}
	b.ReportMetric(float64(prompt), "prompt-tokens")
	b.ReportMetric(float64(cached), "cached-tokens")
	b.ReportMetric(total[0].Seconds()*1e3/float64(b.N), "ttft-ms-cached")
	b.ReportMetric(total[1].Seconds()*1e3/float64(b.N), "ttft-ms-cold")
	b.ReportMetric(total[1].Seconds()/total[0].Seconds(), "ttft-ratio")
}
