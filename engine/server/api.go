package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/mole-llm/mole/engine"
)

// The request and response shapes of OpenAI's chat completions and (legacy) completions
// APIs, limited to what mole implements. Optional request fields are pointers so that
// "absent" can be told from zero; unknown fields are ignored, as OpenAI clients send
// fields mole has no use for.

type chatRequest struct {
	commonParams
	Messages []chatMessage `json:"messages"`
	// max_completion_tokens is the newer name of max_tokens in the chat API.
	MaxCompletionTokens *int `json:"max_completion_tokens"`
}

type completionRequest struct {
	commonParams
	Prompt json.RawMessage `json:"prompt"`
}

type commonParams struct {
	Model         string         `json:"model"`
	MaxTokens     *int           `json:"max_tokens"`
	Temperature   *float32       `json:"temperature"`
	TopP          *float32       `json:"top_p"`
	Seed          *int64         `json:"seed"`
	Stop          stopList       `json:"stop"`
	Stream        bool           `json:"stream"`
	StreamOptions *streamOptions `json:"stream_options"`
	N             *int           `json:"n"`
	// Extensions, named as llama.cpp's server names them.
	TopK          *int     `json:"top_k"`
	MinP          *float32 `json:"min_p"`
	RepeatPenalty *float32 `json:"repeat_penalty"`
	RepeatLastN   *int     `json:"repeat_last_n"`
	// CachePrompt (default true) lets the request keep the prompt prefix a slot's KV cache
	// already holds from an earlier request instead of evaluating it again.
	CachePrompt *bool `json:"cache_prompt"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// stopList is OpenAI's stop: a string or an array of strings.
type stopList []string

func (s *stopList) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = nil
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stopList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		// The decoder adds the field's path to the error.
		return &json.UnmarshalTypeError{Value: "non-string", Type: stopType}
	}
	*s = many
	return nil
}

var stopType = reflect.TypeOf(stopList(nil))

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// text returns the message content: a string, or the concatenated text of an array of
// content parts (only "text" parts are supported).
func (m chatMessage) text(i int) (string, *apiError) {
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(m.Content, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return "", badParam(fmt.Sprintf("messages[%d].content", i), "invalid_type",
			"Invalid type for 'messages[%d].content': expected a string or an array of content parts.", i)
	}
	var b strings.Builder
	for j, p := range parts {
		if p.Type != "text" {
			return "", badParam(fmt.Sprintf("messages[%d].content[%d].type", i, j), "invalid_value",
				"Content parts of type %q are not supported by this model; only \"text\" is.", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

type usage struct {
	PromptTokens        int                 `json:"prompt_tokens"`
	CompletionTokens    int                 `json:"completion_tokens"`
	TotalTokens         int                 `json:"total_tokens"`
	PromptTokensDetails promptTokensDetails `json:"prompt_tokens_details"`
}

// promptTokensDetails is OpenAI's breakdown of prompt_tokens; cached_tokens are the ones
// the prompt cache reused rather than evaluated.
type promptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

func usageOf(st engine.Stats) *usage {
	return &usage{PromptTokens: st.PromptTokens, CompletionTokens: st.GenTokens, TotalTokens: st.PromptTokens + st.GenTokens,
		PromptTokensDetails: promptTokensDetails{CachedTokens: st.CachedTokens}}
}

type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Choices           []chatChoice `json:"choices"`
	Usage             *usage       `json:"usage"`
}

type chatChoice struct {
	Index        int       `json:"index"`
	Message      *chatOut  `json:"message,omitempty"`
	Delta        *chatOut  `json:"delta,omitempty"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

// chatOut is a message (non-streaming) or a delta (streaming). Role and Content are omitted
// from deltas that do not carry them, as OpenAI does ("delta": {} in the last chunk).
type chatOut struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
	Refusal *string `json:"refusal,omitempty"`
}

type textCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Choices           []textChoice `json:"choices"`
	Usage             *usage       `json:"usage,omitempty"`
}

type textChoice struct {
	Text         string    `json:"text"`
	Index        int       `json:"index"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type modelList struct {
	Object string      `json:"object"`
	Data   []modelInfo `json:"data"`
}

type modelInfo struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// apiError is OpenAI's error object, sent as {"error": {...}} with an HTTP status.
type apiError struct {
	status  int
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// badParam is a 400 invalid_request_error naming the parameter at fault.
func badParam(param, code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...),
		Type: "invalid_request_error", Param: strPtr(param), Code: strPtr(code)}
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(struct {
		Error *apiError `json:"error"`
	}{e})
}

// decodeBody turns JSON decoding failures into OpenAI's errors: 413 past the body limit,
// 400 for malformed JSON or a field of the wrong type.
func decodeBody(r *http.Request, limit int64, w http.ResponseWriter, v any) *apiError {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(v)
	if err == nil {
		// Trailing garbage after the object is malformed too.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	if err == nil {
		return nil
	}
	var tooBig *http.MaxBytesError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return &apiError{status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
			Message: fmt.Sprintf("The request body is larger than the limit of %d bytes.", tooBig.Limit),
			Code:    strPtr("request_too_large")}
	case errors.As(err, &typ):
		// Fields of the embedded parameter struct are reported with its name in front.
		field := strings.TrimPrefix(typ.Field, "commonParams.")
		if field == "" {
			return &apiError{status: http.StatusBadRequest, Type: "invalid_request_error",
				Message: "The request body must be a JSON object."}
		}
		return badParam(field, "invalid_type", "Invalid type for '%s': got a JSON %s, expected %s.", field, typ.Value, jsonKind(typ))
	}
	return &apiError{status: http.StatusBadRequest, Type: "invalid_request_error",
		Message: fmt.Sprintf("We could not parse the JSON body of your request (%v).", err)}
}

func jsonKind(e *json.UnmarshalTypeError) string {
	if e.Type == nil {
		return "another type"
	}
	switch e.Type.Kind().String() {
	case "int", "int64", "int32":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return e.Type.String()
}
