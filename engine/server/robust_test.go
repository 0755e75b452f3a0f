package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mole-llm/mole/engine"
)

// syncBuffer is a log destination tests can read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// setHook installs testHook for the rest of the test. Call it before newTestServer: the
// cleanups run in reverse, so the hook is cleared after the server has shut down.
func setHook(t *testing.T, h func(point string, r *request)) {
	testHook = h
	t.Cleanup(func() { testHook = nil })
}

// waitMetric polls /metrics until cond holds for the samples, or fails after 10 s.
func waitMetric(t *testing.T, url, what string, cond func(m map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := scrape(t, url)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in 10 s: %v", what, m)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// isServerError reports whether an error body is OpenAI's shape for a 500.
func isServerError(body map[string]any) bool {
	e, _ := body["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return e != nil && e["type"] == "server_error" && msg != ""
}

const panicSeed = 666 // the seed that marks the request whose work panics

// TestPanicRecovery: a panic in one request's work (starting its sequence, sampling and
// emitting, or the shared forward step) fails that request with a 500 in OpenAI's shape
// (a stream gets an error event), is logged with its stack, and the server goes on: a
// request decoding beside a per-slot failure completes with exactly its serial output,
// the slots are free again, and later requests are served as before.
func TestPanicRecovery(t *testing.T) {
	var mu sync.Mutex
	point, calls, onWorker := "", 0, false
	pool := engine.NewPool(2)
	defer pool.Close()
	setHook(t, func(p string, r *request) {
		if r == nil || r.opts.Sampler.Seed != panicSeed {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if p != point {
			return
		}
		calls++
		if onWorker {
			panicOnWorker(pool, "test: a panic in "+p)
		}
		// At the third advance the request has streamed tokens already.
		if p != "advance" || calls == 3 {
			panic("test: a panic in " + p)
		}
	})
	var logBuf syncBuffer
	_, ts := newTestServer(t, Config{Parallel: 2, ErrorLog: log.New(&logBuf, "", 0)})
	ctx := context.Background()
	good := map[string]any{"prompt": "In the beginning", "max_tokens": 48, "temperature": 0, "stream": true}
	ref, err := post(ctx, ts.URL, "/v1/completions", good, nil)
	if err != nil || ref.status != 200 || ref.chunks < 10 {
		t.Fatalf("serial run: %v %+v", err, ref)
	}
	bad := func(stream bool) map[string]any {
		return map[string]any{"messages": []map[string]string{{"role": "user", "content": "Tell"}},
			"max_tokens": 30, "seed": panicSeed, "stream": stream}
	}
	errors := 0.0
	for _, c := range []struct {
		point  string
		stream bool
		// whether the good request beside it fails too: only when it shares the
		// failed forward step, whose KV cache writes cannot be trusted
		shared bool
		// whether the panic is raised on an engine.Pool worker goroutine, which the
		// pool re-raises in the scheduler's goroutine
		worker bool
	}{
		{"admit", true, false, false},
		{"start", false, false, false},
		{"advance", true, false, false},
		{"advance", false, false, false},
		{"forward", false, true, false},
		{"forward", true, true, true},
	} {
		mu.Lock()
		point, calls, onWorker = c.point, 0, c.worker
		mu.Unlock()
		logBefore := len(logBuf.String())

		// The good request is in a slot, decoding, when the bad one arrives.
		long := map[string]any{"prompt": "In the beginning", "max_tokens": 48, "temperature": 0, "stream": true}
		if c.shared {
			long["max_tokens"] = 2000 // still decoding when the bad request's step comes
		}
		beside := make(chan result, 1)
		go func() {
			r, err := post(ctx, ts.URL, "/v1/completions", long, nil)
			if err != nil {
				t.Error(err)
			}
			beside <- r
		}()
		waitMetric(t, ts.URL, "the good request holds a slot", func(m map[string]float64) bool {
			return m["llamacpp:requests_processing"] == 1 && m["llamacpp:n_decode_total"] > 0
		})
		r, err := post(ctx, ts.URL, "/v1/chat/completions", bad(c.stream), nil)
		if err != nil {
			t.Fatalf("%s: %v", c.point, err)
		}
		if c.stream {
			if r.status != 200 || !isServerError(r.errBody) || (c.point == "advance" && r.chunks == 0) {
				t.Errorf("%s, streamed: status %d, %d chunks, error %v; want a server_error event (after tokens)", c.point, r.status, r.chunks, r.errBody)
			}
		} else if r.status != 500 || !isServerError(r.errBody) {
			t.Errorf("%s: status %d %v, want 500 with a server_error", c.point, r.status, r.errBody)
		}
		errors++
		g := <-beside
		if c.shared {
			if !isServerError(g.errBody) {
				t.Errorf("%s: the request sharing the failed step got %+v, want an error event", c.point, g)
			}
			errors++
		} else if g.status != 200 || g.text != ref.text || g.chunks != ref.chunks || g.finish != ref.finish {
			t.Errorf("%s: the request beside the panic got %q (%d chunks, %s), want %q (%d, %s)",
				c.point, g.text, g.chunks, g.finish, ref.text, ref.chunks, ref.finish)
		}
		logged := logBuf.String()[logBefore:]
		if !strings.Contains(logged, "test: a panic in "+c.point) || !strings.Contains(logged, "goroutine ") {
			t.Errorf("%s: the panic was not logged with its stack:\n%s", c.point, logged)
		}
		if c.worker && !strings.Contains(logged, "recovered on a pool worker") {
			t.Errorf("%s: the log lacks the pool worker's stack:\n%s", c.point, logged)
		}

		// The server goes on: the slots are free, and a request in the slot the failed
		// one used (its KV cache forgotten) gives the serial output.
		waitMetric(t, ts.URL, "slots freed", func(m map[string]float64) bool {
			return m["llamacpp:requests_processing"] == 0 && m["llamacpp:kv_cache_tokens"] == 0
		})
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				r, err := post(ctx, ts.URL, "/v1/completions", good, nil)
				if err != nil || r.status != 200 || r.text != ref.text {
					t.Errorf("%s: request after the panic: %v %q, want %q", c.point, err, r.text, ref.text)
				}
			})
		}
		wg.Wait()
	}
	m := scrape(t, ts.URL)
	if got := m[`mole_requests_total{endpoint="chat",outcome="error"}`] + m[`mole_requests_total{endpoint="completions",outcome="error"}`]; got != errors {
		t.Errorf("%v requests counted as errors, want %v", got, errors)
	}
}

// panicOnWorker makes a run on pool panic with msg on a worker goroutine (not the
// caller's), as a kernel's bad index would; the pool re-raises it as an
// *engine.WorkerPanic. Chunk 0 waits until another chunk has panicked, so whichever
// goroutine takes it, another one panics; the run is repeated until the panic came from
// a worker rather than the caller.
func panicOnWorker(pool *engine.Pool, msg string) {
	for {
		panicked := make(chan struct{})
		var once sync.Once
		v := catchPanic(func() {
			pool.RunChunk(2, 1, func(lo, hi int) {
				if lo == 0 {
					select {
					case <-panicked:
					case <-time.After(time.Second):
					}
					return
				}
				once.Do(func() { close(panicked) })
				panic(msg)
			})
		})
		if wp, ok := v.(*engine.WorkerPanic); ok {
			panic(wp)
		}
	}
}

func catchPanic(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// TestHandlerPanic: a panic in an HTTP handler answers 500 in OpenAI's shape when nothing
// was written yet, and aborts the response when it was.
func TestHandlerPanic(t *testing.T) {
	var logBuf syncBuffer
	srv, _ := newTestServer(t, Config{Parallel: 1, ErrorLog: log.New(&logBuf, "", 0)})
	h := srv.recoverHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/late" {
			w.WriteHeader(200)
			w.Write([]byte("data: {}\n\n"))
			http.NewResponseController(w).Flush()
		}
		panic("test: handler panic")
	}))
	ts := httptest.NewServer(h)
	defer ts.Close()
	r, err := post(context.Background(), ts.URL, "/early", "{}", nil)
	if err != nil || r.status != 500 || !isServerError(r.errBody) {
		t.Errorf("panic before writing: %v status %d %v, want 500 with a server_error", err, r.status, r.errBody)
	}
	if !strings.Contains(logBuf.String(), "test: handler panic") {
		t.Errorf("handler panic not logged: %q", logBuf.String())
	}
	resp, err := http.Post(ts.URL+"/late", "application/json", strings.NewReader("{}"))
	if err == nil {
		_, err = bytes.NewBuffer(nil).ReadFrom(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Errorf("panic after writing: the response ended normally, want it aborted")
	}
}

// TestAdmission: free slots count as capacity. A burst that arrives while the scheduler
// is inside a decode step waits for the slots that are free (they are filled at the next
// step) as well as for the queue, so with --parallel 4 requests are refused only beyond
// 4 + --queue in flight: 16 at once get no 503 with a queue of 12, and exactly 4 with a
// queue of 8. (Counting only the queue refused 7 of them, slots free or not.)
func TestAdmission(t *testing.T) {
	for _, c := range []struct{ queue, refused int }{{8, 4}, {12, 0}} {
		t.Run("queue"+strconv.Itoa(c.queue), func(t *testing.T) {
			blocked, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			setHook(t, func(p string, r *request) {
				if p == "step" {
					once.Do(func() { // hold the scheduler inside the first step
						close(blocked)
						<-release
					})
				}
			})
			_, ts := newTestServer(t, Config{Parallel: 4, Queue: c.queue})
			ctx := context.Background()
			body := map[string]any{"prompt": "In the beginning", "max_tokens": 8, "temperature": 0}
			results := make(chan result, 16)
			send := func() {
				r, err := post(ctx, ts.URL, "/v1/completions", body, nil)
				if err != nil {
					t.Error(err)
				}
				results <- r
			}
			go send() // the first takes a slot, and its step holds the scheduler
			<-blocked
			for range 15 {
				go send()
			}
			// Every request is refused or waiting before the scheduler moves on.
			waitMetric(t, ts.URL, "the burst is refused or waiting", func(m map[string]float64) bool {
				return m[`mole_requests_total{endpoint="completions",outcome="rejected"}`]+m["llamacpp:requests_deferred"] == 15
			})
			close(release)
			codes := map[int]int{}
			for range 16 {
				codes[(<-results).status]++
			}
			if codes[503] != c.refused || codes[200] != 16-c.refused {
				t.Errorf("parallel 4, queue %d, 16 at once: %v, want %d refused and the rest served", c.queue, codes, c.refused)
			}
		})
	}
}

// TestMetricsAfterDisconnect: the tokens streamed to a client that then disconnects count
// in llamacpp:tokens_predicted_total (they were generated and sent), and the KV cache
// gauges drop the cancelled request's tokens as soon as its slot is freed.
func TestMetricsAfterDisconnect(t *testing.T) {
	_, ts := newTestServer(t, Config{Parallel: 1})
	before := scrape(t, ts.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, _ := json.Marshal(map[string]any{"prompt": "In the beginning", "max_tokens": 1000, "temperature": 0, "stream": true})
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/completions", bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	br := bufio.NewReader(resp.Body)
	for events := 0; events < n; {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: {") {
			events++
		}
	}
	if m := scrape(t, ts.URL); m["llamacpp:kv_cache_tokens"] == 0 {
		t.Errorf("kv_cache_tokens is 0 while a request decodes")
	}
	cancel()
	resp.Body.Close()
	m := waitMetric(t, ts.URL, "the slot is freed", func(m map[string]float64) bool {
		return m[`mole_requests_total{endpoint="completions",outcome="cancelled"}`] == 1 && m["llamacpp:requests_processing"] == 0
	})
	pred := m["llamacpp:tokens_predicted_total"] - before["llamacpp:tokens_predicted_total"]
	decodes := m["llamacpp:n_decode_total"] - before["llamacpp:n_decode_total"]
	if pred < n || pred > decodes {
		t.Errorf("tokens_predicted_total +%v after %d tokens streamed in %v decode steps, want between", pred, n, decodes)
	}
	if m["llamacpp:tokens_predicted_seconds_total"] <= before["llamacpp:tokens_predicted_seconds_total"] {
		t.Errorf("tokens_predicted_seconds_total did not grow with the cancelled request's tokens")
	}
	if m["llamacpp:kv_cache_tokens"] != 0 || m["llamacpp:kv_cache_usage_ratio"] != 0 {
		t.Errorf("KV cache gauges keep the cancelled request: %v tokens, ratio %v", m["llamacpp:kv_cache_tokens"], m["llamacpp:kv_cache_usage_ratio"])
	}
}

// TestAuthScheme: the Authorization scheme is case-insensitive (RFC 7235), the key is not.
func TestAuthScheme(t *testing.T) {
	_, ts := newTestServer(t, Config{Parallel: 1, APIKey: "sekrit"})
	for _, c := range []struct {
		header string
		status int
	}{
		{"Bearer sekrit", 200},
		{"bearer sekrit", 200},
		{"BEARER sekrit", 200},
		{"bEaReR  sekrit", 200},
		{"Bearer Sekrit", 401},
		{"Bearer sekrit2", 401},
		{"Bearer", 401},
		{"Basic sekrit", 401},
		{"sekrit", 401},
		{"Bearersekrit", 401},
		{"", 401},
	} {
		r, err := post(context.Background(), ts.URL, "/v1/completions", map[string]any{"prompt": "a", "max_tokens": 1},
			map[string]string{"Authorization": c.header})
		if err != nil {
			t.Fatal(err)
		}
		if r.status != c.status {
			t.Errorf("Authorization %q: status %d, want %d", c.header, r.status, c.status)
		}
	}
}
