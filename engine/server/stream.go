package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/mole-llm/mole/engine"
)

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// chunk is one streamed event of either endpoint. Usage is omitted unless the client asked
// for it with stream_options.include_usage; then it is null in every chunk but the extra last
// one, as OpenAI sends it.
type chunk struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	SystemFingerprint string          `json:"system_fingerprint"`
	Choices           any             `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"`
}

var nullJSON = json.RawMessage("null")

// stream writes req's output as server-sent events in OpenAI's format: for chat a first
// delta with the role, one delta per generated token, a last chunk with an empty delta and
// the finish reason, the usage chunk when asked for, and "data: [DONE]". A generation ended
// by shutdown gets an error event instead of the rest.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, req *request, endpoint string, includeUsage bool) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // proxies must not hold the events back
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)

	c := chunk{Created: time.Now().Unix(), Model: s.cfg.ModelName, SystemFingerprint: fingerprint}
	if endpoint == "chat" {
		c.ID, c.Object = newID("chatcmpl-"), "chat.completion.chunk"
	} else {
		c.ID, c.Object = newID("cmpl-"), "text_completion"
	}
	if includeUsage {
		c.Usage = nullJSON
	}
	var buf bytes.Buffer
	send := func(v any) bool {
		buf.Reset()
		buf.WriteString("data: ")
		if err := json.NewEncoder(&buf).Encode(v); err != nil {
			return false
		}
		buf.WriteByte('\n') // Encode ended the line; a blank line ends the event
		if _, err := w.Write(buf.Bytes()); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	piece := func(text string, finish *string) any {
		if endpoint == "chat" {
			d := &chatOut{}
			if finish == nil {
				d.Content = &text
			}
			c.Choices = []chatChoice{{Delta: d, FinishReason: finish}}
		} else {
			c.Choices = []textChoice{{Text: text, FinishReason: finish}}
		}
		return &c
	}

	if endpoint == "chat" {
		empty := ""
		c.Choices = []chatChoice{{Delta: &chatOut{Role: "assistant", Content: &empty}}}
		if !send(&c) {
			return
		}
	}
	var pieces []string
	for {
		select {
		case <-r.Context().Done():
			return // the scheduler frees the slot at its next step
		case <-req.notify:
		}
		var done bool
		var st engine.Stats
		var err error
		pieces, done, st, err = req.take(pieces[:0])
		for _, t := range pieces {
			if !send(piece(t, nil)) {
				return
			}
		}
		if !done {
			continue
		}
		if err != nil {
			send(struct {
				Error *apiError `json:"error"`
			}{genError(err)})
			return
		}
		fr := st.StopReason
		if !send(piece("", &fr)) {
			return
		}
		if includeUsage {
			u, _ := json.Marshal(usageOf(st))
			c.Choices, c.Usage = []struct{}{}, u
			if !send(&c) {
				return
			}
		}
		w.Write([]byte("data: [DONE]\n\n"))
		rc.Flush()
		return
	}
}
