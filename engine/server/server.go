// Package server is mole's OpenAI-compatible HTTP server: /v1/chat/completions and
// /v1/completions (streaming as server-sent events or not), /v1/models, /health and
// Prometheus /metrics, in front of a continuous-batching scheduler that decodes up to
// Config.Parallel sequences in one engine.Batch step, each in its own KV cache.
//
// Requests beyond the free slots wait in a bounded queue; past it they get 503 with
// Retry-After. A client that disconnects frees its slot at the next step. Shutdown ends
// in-flight streams with an error event. A panic in one request's work fails that request
// with a 500 and is logged to Config.ErrorLog; the server keeps serving (recover.go).
package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mole-llm/mole/engine"
)

// Config configures a Server. Zero values take the defaults given.
type Config struct {
	Model     *engine.Model
	ModelName string // the id in /v1/models and in responses; requests naming another model get 400
	Parallel  int    // sequences decoded together (default 4)
	Ctx       int    // KV cache positions per sequence (default: the model's context, at most 4096)
	Queue     int    // requests waiting for a slot before 503 (default 8 per slot)
	APIKey    string // when set, /v1/ requests must carry "Authorization: Bearer APIKey"
	MaxBody   int64  // request body limit in bytes (default 4 MiB)
	// PrefillChunk bounds the prompt tokens evaluated per step beside the decoding tokens
	// (default 64).
	PrefillChunk int
	// NoCachePrompt turns the prompt cache off: by default every slot keeps its KV cache
	// after a request, and a request reuses the longest prompt prefix a free slot holds
	// (a chat's earlier turns), as llama.cpp's cache_prompt does.
	NoCachePrompt bool
	// ErrorLog receives the panics recovered from requests' work, with their stacks
	// (default: the standard logger, on stderr).
	ErrorLog *log.Logger
	// Sampling is what a request gets for the sampling fields it does not set (nil:
	// llama.cpp's defaults, engine.DefaultSamplerOptions), as llama-server's sampling
	// flags set its defaults. Its Seed is used only with FixedSeed.
	Sampling *engine.SamplerOptions
	// FixedSeed gives requests without a seed Sampling.Seed instead of a random one
	// (llama-server's --seed).
	FixedSeed bool
	// NPredict caps the tokens of a request that sets no max_tokens (<= 0: until a stop
	// string, an end-of-generation token or a full context; llama-server's --n-predict).
	NPredict int
}

// Server serves one model. Create it with New, serve Handler, and call Shutdown when done.
type Server struct {
	cfg     Config
	m       *engine.Model
	sched   *scheduler
	met     *metrics
	mux     *http.ServeMux
	handler http.Handler // mux behind the panic recovery
	created int64
	format  engine.ChatFormat

	mu      sync.Mutex
	closing bool
	once    sync.Once
}

// New starts the scheduler of a Server for cfg.Model.
func New(cfg Config) *Server {
	m := cfg.Model
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.Ctx <= 0 {
		cfg.Ctx = min(m.Config.CtxLen, 4096)
	}
	// A Ctx beyond the trained length is used as given: the caller (mole serve) has
	// checked it against the model and allowed it only with an explicit flag.
	if cfg.Queue <= 0 {
		cfg.Queue = 8 * cfg.Parallel
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 4 << 20
	}
	if cfg.PrefillChunk <= 0 {
		cfg.PrefillChunk = 64
	}
	if cfg.ModelName == "" {
		cfg.ModelName = "mole"
	}
	if cfg.ErrorLog == nil {
		cfg.ErrorLog = log.Default()
	}
	s := &Server{cfg: cfg, m: m, created: time.Now().Unix(), format: m.ChatFormat()}
	s.met = newMetrics(m.Config.NLayer, m.Config.NExpert)
	s.met.reg.MustRegister(newCacheCollector(m)) // expert cache under --mem-budget (metrics_sched.go)
	s.sched = newScheduler(m, cfg.Parallel, cfg.Ctx, cfg.Queue, cfg.PrefillChunk, s.met)
	s.sched.log = cfg.ErrorLog
	go s.sched.run()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.auth(s.chat))
	mux.HandleFunc("POST /v1/completions", s.auth(s.completions))
	mux.HandleFunc("GET /v1/models", s.auth(s.models))
	// Health and metrics stay open without the key, as in llama.cpp, for probes and scrapers.
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: http.StatusNotFound, Type: "invalid_request_error",
			Message: "Unknown request URL: " + r.Method + " " + r.URL.Path + "."})
	})
	s.mux = mux
	s.handler = s.recoverHTTP(mux)
	return s
}

// Handler returns the HTTP handler of every endpoint.
func (s *Server) Handler() http.Handler { return s.handler }

// Config returns the configuration in effect, defaults resolved.
func (s *Server) Config() Config { return s.cfg }

// Shutdown stops accepting generations, ends the ones in flight (streams get an error
// event, non-streaming requests a 503) and waits for the scheduler to stop or ctx to end.
// Call it before http.Server.Shutdown, which then finds the handlers returning.
func (s *Server) Shutdown(ctx context.Context) error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		close(s.sched.stop)
	})
	select {
	case <-s.sched.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.APIKey == "" {
		return h
	}
	want := []byte(s.cfg.APIKey)
	return func(w http.ResponseWriter, r *http.Request) {
		// The scheme is case-insensitive (RFC 7235): "bearer KEY" is as good as "Bearer KEY".
		scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		ok := subtle.ConstantTimeCompare([]byte(strings.TrimLeft(key, " ")), want) == 1
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			writeError(w, &apiError{status: http.StatusUnauthorized, Type: "invalid_request_error",
				Message: "Incorrect API key provided.", Code: strPtr("invalid_api_key")})
			return
		}
		h(w, r)
	}
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, modelList{Object: "list", Data: []modelInfo{{ID: s.cfg.ModelName, Object: "model", Created: s.created, OwnedBy: "mole"}}})
}

// params validates what chat and completions share and turns it into GenerateOptions.
func (s *Server) params(p *commonParams, maxTokens *int) (engine.GenerateOptions, *apiError) {
	o := engine.GenerateOptions{MaxTokens: -1, Sampler: engine.DefaultSamplerOptions()}
	if s.cfg.Sampling != nil {
		o.Sampler = *s.cfg.Sampling
	}
	if s.cfg.NPredict > 0 {
		o.MaxTokens = s.cfg.NPredict
	}
	if p.Model != "" && p.Model != s.cfg.ModelName {
		return o, &apiError{status: http.StatusBadRequest, Type: "invalid_request_error", Param: strPtr("model"),
			Code: strPtr("model_not_found"), Message: "The model '" + p.Model + "' does not exist; this server serves '" + s.cfg.ModelName + "'."}
	}
	if maxTokens != nil {
		if *maxTokens <= 0 {
			return o, badParam("max_tokens", "integer_below_min_value", "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got %d instead.", *maxTokens)
		}
		o.MaxTokens = *maxTokens
	}
	if p.N != nil && *p.N != 1 {
		return o, badParam("n", "invalid_value", "Only n = 1 is supported.")
	}
	so := &o.Sampler
	if p.Temperature != nil {
		so.Temperature = *p.Temperature
	}
	if p.TopP != nil {
		so.TopP = *p.TopP
	}
	if p.TopK != nil {
		so.TopK = *p.TopK
	}
	if p.MinP != nil {
		so.MinP = *p.MinP
	}
	if p.RepeatPenalty != nil {
		so.RepeatPenalty = *p.RepeatPenalty
	}
	if p.RepeatLastN != nil {
		so.RepeatLastN = *p.RepeatLastN
	}
	// The CLI checks its flags with the same Validate, so both accept the same values.
	if err := so.Validate(); err != nil {
		var oe *engine.OptionError
		if errors.As(err, &oe) {
			return o, badParam(oe.Field, "invalid_value", "Invalid '%s': expected %s, got %s.", oe.Field, oe.Want, oe.Value)
		}
		return o, badParam("", "invalid_value", "%v", err)
	}
	switch {
	case p.Seed != nil:
		so.Seed = uint64(*p.Seed)
	case s.cfg.FixedSeed:
		// so.Seed is already the configured one.
	default:
		so.Seed = 0
		var b [8]byte
		rand.Read(b[:])
		for _, c := range b {
			so.Seed = so.Seed<<8 | uint64(c)
		}
	}
	if len(p.Stop) > 4 {
		return o, badParam("stop", "invalid_value", "Invalid 'stop': at most 4 stop sequences are allowed.")
	}
	o.Stop = p.Stop
	return o, nil
}

// checkPrompt rejects prompts that do not leave the context room for a token.
func (s *Server) checkPrompt(ids []int32, param string) *apiError {
	if len(ids) == 0 {
		return badParam(param, "invalid_value", "The prompt is empty and the model has no BOS token to start from.")
	}
	if len(ids) > s.cfg.Ctx {
		return badParam(param, "context_length_exceeded",
			"This model's maximum context length is %d tokens. However, your prompt has %d tokens.", s.cfg.Ctx, len(ids))
	}
	return nil
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if e := decodeBody(r, s.cfg.MaxBody, w, &req); e != nil {
		writeError(w, e)
		return
	}
	maxTok := req.MaxTokens
	if req.MaxCompletionTokens != nil {
		maxTok = req.MaxCompletionTokens
	}
	o, e := s.params(&req.commonParams, maxTok)
	if e != nil {
		if e.Param != nil && *e.Param == "max_tokens" && req.MaxCompletionTokens != nil {
			e.Param = strPtr("max_completion_tokens")
		}
		writeError(w, e)
		return
	}
	if len(req.Messages) == 0 {
		writeError(w, badParam("messages", "empty_array", "Invalid 'messages': empty array. Expected an array with minimum length 1."))
		return
	}
	msgs := make([]engine.Message, len(req.Messages))
	for i, m := range req.Messages {
		text, e := m.text(i)
		if e != nil {
			writeError(w, e)
			return
		}
		role := m.Role
		if role == "developer" { // OpenAI's newer name for the system role
			role = "system"
		}
		msgs[i] = engine.Message{Role: role, Content: text}
	}
	text, err := engine.ApplyChatTemplate(s.format, msgs, true)
	if err != nil {
		writeError(w, badParam("messages", "invalid_value", "%v", err))
		return
	}
	// The template's markers are special tokens, so special-token parsing is on.
	ids := s.m.Tok.Encode(text, s.m.Tok.AddBOS(), true)
	if e := s.checkPrompt(ids, "messages"); e != nil {
		writeError(w, e)
		return
	}
	s.generate(w, r, "chat", ids, o, &req.commonParams)
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if e := decodeBody(r, s.cfg.MaxBody, w, &req); e != nil {
		writeError(w, e)
		return
	}
	o, e := s.params(&req.commonParams, req.MaxTokens)
	if e != nil {
		writeError(w, e)
		return
	}
	ids, e := s.promptIDs(req.Prompt)
	if e != nil {
		writeError(w, e)
		return
	}
	if e := s.checkPrompt(ids, "prompt"); e != nil {
		writeError(w, e)
		return
	}
	s.generate(w, r, "completions", ids, o, &req.commonParams)
}

// promptIDs reads a completions prompt: a string, an array of one string, or token ids.
func (s *Server) promptIDs(raw []byte) ([]int32, *apiError) {
	var text string
	if err := jsonUnmarshal(raw, &text); err == nil {
		return s.m.Tok.Encode(text, s.m.Tok.AddBOS(), true), nil
	}
	var texts []string
	if err := jsonUnmarshal(raw, &texts); err == nil {
		if len(texts) != 1 {
			return nil, badParam("prompt", "invalid_value", "Only one prompt per request is supported.")
		}
		return s.m.Tok.Encode(texts[0], s.m.Tok.AddBOS(), true), nil
	}
	var ids []int32
	if err := jsonUnmarshal(raw, &ids); err == nil {
		for _, id := range ids {
			if id < 0 || int(id) >= s.m.Config.Vocab {
				return nil, badParam("prompt", "invalid_value", "Token id %d is outside the vocabulary of %d.", id, s.m.Config.Vocab)
			}
		}
		return ids, nil
	}
	return nil, badParam("prompt", "invalid_type", "Invalid type for 'prompt': expected a string, an array of strings or an array of token ids.")
}

func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// queueFull is the 503 for a full queue: clients retry after Retry-After seconds.
func (s *Server) reject(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "1")
	writeError(w, &apiError{status: http.StatusServiceUnavailable, Type: "server_error",
		Message: msg, Code: strPtr("server_overloaded")})
}

// generate queues the request and writes its response, streamed or whole.
func (s *Server) generate(w http.ResponseWriter, r *http.Request, endpoint string, ids []int32, o engine.GenerateOptions, p *commonParams) {
	req := newRequest(r.Context(), endpoint, ids, o)
	req.cache = !s.cfg.NoCachePrompt && (p.CachePrompt == nil || *p.CachePrompt)
	s.mu.Lock()
	closing := s.closing
	ok := !closing && s.sched.submit(req)
	s.mu.Unlock()
	if !ok {
		if closing {
			s.reject(w, "The server is shutting down.")
			return
		}
		s.met.requests.WithLabelValues(endpoint, "rejected").Inc()
		s.reject(w, "The server is busy: every slot is in use and the queue is full. Retry later.")
		return
	}
	if p.Stream {
		s.stream(w, r, req, endpoint, p.StreamOptions != nil && p.StreamOptions.IncludeUsage)
		return
	}
	var text strings.Builder
	var pieces []string
	for {
		select {
		case <-r.Context().Done():
			return // the scheduler sees the same context and frees the slot
		case <-req.notify:
		}
		var done bool
		var st engine.Stats
		var err error
		pieces, done, st, err = req.take(pieces[:0])
		for _, t := range pieces {
			text.WriteString(t)
		}
		if !done {
			continue
		}
		if err != nil {
			writeError(w, genError(err))
			return
		}
		u := usageOf(st)
		fr := st.StopReason
		out := text.String()
		if endpoint == "chat" {
			writeJSON(w, chatCompletion{ID: newID("chatcmpl-"), Object: "chat.completion", Created: time.Now().Unix(),
				Model: s.cfg.ModelName, SystemFingerprint: fingerprint,
				Choices: []chatChoice{{Message: &chatOut{Role: "assistant", Content: &out}, FinishReason: &fr}}, Usage: u})
		} else {
			writeJSON(w, textCompletion{ID: newID("cmpl-"), Object: "text_completion", Created: time.Now().Unix(),
				Model: s.cfg.ModelName, SystemFingerprint: fingerprint,
				Choices: []textChoice{{Text: out, FinishReason: &fr}}, Usage: u})
		}
		return
	}
}

// fingerprint identifies the serving configuration, as OpenAI's system_fingerprint does.
const fingerprint = "mole"

// genError maps a generation that ended abnormally to an API error.
func genError(err error) *apiError {
	if err == errShutdown {
		return &apiError{status: http.StatusServiceUnavailable, Type: "server_error", Message: "The server is shutting down.", Code: strPtr("server_shutdown")}
	}
	return &apiError{status: http.StatusInternalServerError, Type: "server_error", Message: err.Error()}
}
