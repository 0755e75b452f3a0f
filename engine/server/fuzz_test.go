package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fuzz target posts request bodies built from the fuzzer's bytes to a running server
// (the embedded model, a small context so that any generation is short) and checks that
// the server survives and answers every body with a 200 (a well-formed completion or SSE
// stream) or a 4xx in OpenAI's error shape. A panic recovered in the scheduler shows as
// a 500 and in the error log, so it fails the target too.

// fuzzGen turns the fuzzer's bytes into JSON text; when the bytes run out it reads zeros,
// so choices put the plain case at 0 and the odd ones elsewhere.
type fuzzGen struct {
	b []byte
	i int
}

func (g *fuzzGen) byte() byte {
	if g.i >= len(g.b) {
		return 0
	}
	c := g.b[g.i]
	g.i++
	return c
}

func (g *fuzzGen) intn(n int) int { return int(g.byte()) % n }

func (g *fuzzGen) u64() uint64 {
	var v uint64
	for range 8 {
		v = v<<8 | uint64(g.byte())
	}
	return v
}

// Strings with a meaning somewhere: number spellings JSON lacks, chat roles and template
// markers, stop strings, bytes that are not UTF-8, escapes.
var fuzzStrings = []string{
	"", " ", "NaN", "Infinity", "-Infinity", "inf", "1e308", "-0", "null", "true", "0x10",
	"user", "system", "assistant", "developer", "tool", "function", "text", "image_url",
	"In the beginning", "\n", "\n\n", "<|im_start|>", "<|im_end|>", "</s>", "<s>", "<|endoftext|>",
	"\x00", "\xff\xfe", "\u00e9", "\U0001F600", "\\", "\"", "kjv-moe", "gpt-4o", "And",
	strings.Repeat("a", 300), strings.Repeat("LORD ", 80),
}

// Numbers at the edges: of float32 and float64, of int32/int64/uint64, exponents that
// overflow or underflow, negative zero and fractions where integers are expected.
var fuzzNumbers = []string{
	"0", "-0", "1", "-1", "2", "0.5", "1.1", "-2", "40", "64", "1000", "1e17", "-1e17", "1e308", "-1e308",
	"1e309", "1e-320", "3.4028235e38", "3.5e38", "-3.5e38", "1e39", "2147483647", "2147483648", "-2147483649",
	"9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551615",
	"1000000000000", "-1000000000000", "100000000000000000000000000000", "0.0000001", "1E2", "1e0", "4.9e-324",
}

// number is a JSON number: an edge case, a small integer or fraction (in range for most
// parameters), or random bits as an integer or a float.
func (g *fuzzGen) number() string {
	switch g.intn(5) {
	case 0:
		return fuzzNumbers[g.intn(len(fuzzNumbers))]
	case 1:
		return strconv.Itoa(g.intn(256) - 64)
	case 2:
		return strconv.FormatFloat(float64(g.byte())/128, 'g', -1, 64)
	case 3:
		return strconv.FormatInt(int64(g.u64()), 10)
	default:
		f := math.Float64frombits(g.u64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "1e308"
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
}

// str is a JSON string: a meaningful one or random bytes (escaped as JSON escapes them,
// so invalid UTF-8 arrives as U+FFFD) or a raw literal with escapes.
func (g *fuzzGen) str() string {
	var s string
	switch g.intn(3) {
	case 0:
		s = fuzzStrings[g.intn(len(fuzzStrings))]
	case 1:
		n := g.intn(24)
		b := make([]byte, n)
		for i := range b {
			b[i] = g.byte()
		}
		s = string(b)
	default:
		return `"\u0000\ud800\n\t` + strconv.Itoa(g.intn(100)) + `"`
	}
	q, _ := json.Marshal(s)
	return string(q)
}

// value is any JSON value, nested up to depth.
func (g *fuzzGen) value(depth int) string {
	k := g.intn(8)
	if depth <= 0 && k >= 5 {
		k = g.intn(5)
	}
	switch k {
	case 0:
		return "null"
	case 1:
		return [...]string{"true", "false"}[g.intn(2)]
	case 2, 3:
		return g.number()
	case 4:
		return g.str()
	case 5:
		return g.array(depth-1, func() string { return g.value(depth - 1) })
	default:
		n := g.intn(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = g.str() + ":" + g.value(depth-1)
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
}

// array is a JSON array of up to most elements (one when the bytes have run out).
func (g *fuzzGen) array(most int, elem func() string) string {
	n := (g.intn(most+1) + 1) % (most + 1)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = elem()
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// Integers and floats a field of that type accepts, at the edges of what a parameter
// means and of the Go types behind it.
var (
	fuzzInts   = []string{"1", "-1", "0", "2", "4", "64", "127", "128", "1000", "2147483647", "-2147483648", "1000000000000", "9223372036854775807", "-9223372036854775808"}
	fuzzFloats = []string{"0", "1", "0.5", "0.95", "1.1", "2", "1e-7", "1e-38", "1e-45", "-0", "3.4028234e38", "100", "0.05", "0.999999"}
)

// field is a value for a field of type want ("int", "float", "bool", "str"). Tame
// values have the type Go decodes the field into (any value of it); wild ones are
// anything at all one time in five.
func (g *fuzzGen) field(want string, wild bool) string {
	if wild && g.intn(5) == 4 {
		return g.value(2)
	}
	switch want {
	case "int":
		switch g.intn(3) {
		case 0:
			return fuzzInts[g.intn(len(fuzzInts))]
		case 1:
			return strconv.Itoa(g.intn(256) - 64)
		default:
			return strconv.FormatInt(int64(g.u64()), 10)
		}
	case "float":
		switch g.intn(3) {
		case 0:
			return fuzzFloats[g.intn(len(fuzzFloats))]
		case 1:
			return strconv.FormatFloat(float64(g.byte())/128, 'g', -1, 64)
		default:
			f := math.Float32frombits(uint32(g.u64()))
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				return "1"
			}
			return strconv.FormatFloat(float64(f), 'g', -1, 32)
		}
	case "bool":
		return [...]string{"false", "true"}[g.intn(2)]
	}
	if wild {
		return g.number()
	}
	return g.str()
}

func (g *fuzzGen) message(wild bool) string {
	if wild && g.intn(8) == 7 {
		return g.value(2)
	}
	roles := []string{"user", "system", "assistant", "developer", "tool", "wizard", ""}
	var parts []string
	if g.intn(8) != 7 {
		parts = append(parts, `"role":`+strconv.Quote(roles[g.intn(len(roles))]))
	}
	switch g.intn(4) {
	case 0, 1:
		parts = append(parts, `"content":`+g.str())
	case 2:
		parts = append(parts, `"content":`+g.array(3, func() string {
			typ := [...]string{`"text"`, `"image_url"`, g.str()}[g.intn(3)]
			return `{"type":` + typ + `,"text":` + g.field("str", wild) + `}`
		}))
	default:
		if wild {
			parts = append(parts, `"content":`+g.value(2))
		}
	}
	if g.intn(4) == 3 {
		parts = append(parts, g.str()+":"+g.value(1))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func (g *fuzzGen) prompt(wild bool) string {
	k := g.intn(5)
	if !wild && k == 4 {
		k = 3
	}
	switch k {
	case 0:
		return g.str()
	case 1:
		return g.array(2, g.str)
	case 2: // token ids, in and out of the vocabulary and of int32
		return g.array(12, func() string {
			if g.intn(4) == 3 {
				if wild {
					return g.number()
				}
				return g.field("int", false)
			}
			return strconv.Itoa(g.intn(256) * (1 + g.intn(16)))
		})
	case 3:
		return `"In the beginning"`
	default:
		return g.value(2)
	}
}

// body builds a chat (or completions) request body with a random subset of the fields:
// tame (every field of the type it is decoded into, so that validation and generation
// are reached) or wild (any field may be any JSON).
func (g *fuzzGen) body(chat bool) string {
	wild := g.intn(2) == 1
	var f []string
	add := func(name, v string) { f = append(f, strconv.Quote(name)+":"+v) }
	if chat {
		if g.intn(8) != 7 {
			add("messages", g.array(3, func() string { return g.message(wild) }))
		}
	} else if g.intn(8) != 7 {
		add("prompt", g.prompt(wild))
	}
	fields := []struct{ name, want string }{
		{"model", "str"}, {"max_tokens", "int"}, {"max_completion_tokens", "int"},
		{"temperature", "float"}, {"top_p", "float"}, {"top_k", "int"}, {"min_p", "float"},
		{"repeat_penalty", "float"}, {"repeat_last_n", "int"}, {"seed", "int"},
		{"n", "int"}, {"stream", "bool"}, {"cache_prompt", "bool"},
	}
	for _, fd := range fields {
		if g.intn(3) == 1 {
			v := g.field(fd.want, wild)
			switch { // the values that pass, most of the time
			case fd.name == "model" && g.intn(4) != 3:
				v = `"kjv-moe"`
			case fd.name == "n" && g.intn(4) != 3:
				v = "1"
			}
			add(fd.name, v)
		}
	}
	if g.intn(3) == 1 {
		switch g.intn(3) {
		case 0:
			add("stop", g.str())
		case 1:
			add("stop", g.array(5, g.str))
		default:
			if wild {
				add("stop", g.value(2))
			}
		}
	}
	if g.intn(4) == 1 {
		if wild && g.intn(3) == 0 {
			add("stream_options", g.value(2))
		} else {
			add("stream_options", `{"include_usage":`+g.field("bool", wild)+`}`)
		}
	}
	for range g.intn(3) { // unknown fields, or a known one twice
		i := g.intn(6)
		if wild || i < 4 {
			add([...]string{"user", "logprobs", "tools", "x", "max_tokens", "messages"}[i], g.value(2))
		}
	}
	out := "{" + strings.Join(f, ",") + "}"
	if wild && g.intn(16) == 15 { // truncated or trailing garbage
		if g.intn(2) == 0 {
			out = out[:g.intn(len(out)+1)]
		} else {
			out += g.value(1)
		}
	}
	return out
}

// checkAnswer checks one response: 200 with a completion or a well-formed stream, or a
// 4xx with OpenAI's error object.
func checkAnswer(t *testing.T, resp *http.Response, raw []byte) {
	t.Helper()
	if resp.StatusCode == 200 {
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			r, err := readStream(bytes.NewReader(raw), result{})
			if err != nil || r.errBody != nil || (r.finish != "stop" && r.finish != "length") {
				t.Fatalf("malformed stream (%v, error event %v, finish %q):\n%s", err, r.errBody, r.finish, raw)
			}
			return
		}
		var out struct {
			Object  string
			Choices []struct {
				FinishReason string `json:"finish_reason"`
			}
			Usage *usage
		}
		if err := json.Unmarshal(raw, &out); err != nil || len(out.Choices) != 1 || out.Usage == nil ||
			(out.Choices[0].FinishReason != "stop" && out.Choices[0].FinishReason != "length") {
			t.Fatalf("malformed completion (%v): %s", err, raw)
		}
		return
	}
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	var e struct {
		Error *struct {
			Message *string
			Type    *string
		}
	}
	if err := json.Unmarshal(raw, &e); err != nil || e.Error == nil || e.Error.Message == nil || e.Error.Type == nil ||
		*e.Error.Message == "" || *e.Error.Type == "" {
		t.Fatalf("status %d without OpenAI's error object (%v): %s", resp.StatusCode, err, raw)
	}
}

// FuzzAPI posts fuzzer-built bodies to /v1/chat/completions and /v1/completions. The
// first byte picks the endpoint (bit 0: completions) and whether the rest is the body as
// it is (bit 1) or the bytes that build one.
func FuzzAPI(f *testing.F) {
	raw := func(chat bool, body string) []byte {
		b := byte(2)
		if !chat {
			b |= 1
		}
		return append([]byte{b}, body...)
	}
	for _, b := range []string{
		// Bodies that once crashed the server.
		`{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"min_p":2}`,
		`{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"repeat_penalty":1.1,"repeat_last_n":1000000000000}`,
		`{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"repeat_penalty":1.1,"repeat_last_n":1e17}`,
		`{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"repeat_penalty":1.1,"repeat_last_n":-1}`,
		`{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"temperature":"NaN","top_p":"Infinity"}`,
		`{"messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_completion_tokens":1e308}`,
		`{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"stop":["","\n"],"top_k":9223372036854775807}`,
		`{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"seed":-1,"temperature":1e38,"min_p":1}`,
	} {
		f.Add(raw(true, b))
	}
	for _, b := range []string{
		`{"prompt":"In the beginning","max_tokens":4,"repeat_penalty":1.1,"repeat_last_n":1000000000000}`,
		`{"prompt":[1,2,3,-1],"max_tokens":2}`,
		`{"prompt":[1,2,3,99999999999],"max_tokens":2}`,
		`{"prompt":[1,2,3],"max_tokens":2,"stream":true}`,
		`{"prompt":["a","b"]}`,
		`{"prompt":"In the beginning God","max_tokens":3,"cache_prompt":true}`,
		`{"prompt":"In the beginning God created","max_tokens":3,"cache_prompt":false,"stream":true}`,
		`{"prompt":"In the beginning","max_tokens":3,"cache_prompt":"yes"}`,
		`{"prompt":"a","stop":"a","max_tokens":1e17}`,
		`{"prompt":"a","n":2,"unknown":{"x":[1,{"y":null}]}}`,
		`{"prompt":"a","repeat_penalty":3.5e38,"top_p":0,"top_k":0,"temperature":0,"max_tokens":5}`,
		`{"prompt":"a","max_tokens":2}{"prompt":"b"}`,
		`[]`, `null`, `"x"`, ``,
		// Prompts that fill the context of 128 (the fuzz server's) to the last token.
		`{"prompt":[` + strings.Repeat("1,", 127) + `1],"max_tokens":5,"stream":true}`,
		`{"prompt":[` + strings.Repeat("1,", 126) + `1],"max_tokens":5}`,
		`{"prompt":[` + strings.Repeat("1,", 128) + `1],"max_tokens":5}`,
		`{"prompt":"` + strings.Repeat("LORD ", 126) + `"}`,
	} {
		f.Add(raw(false, b))
	}
	for i := range 8 { // generated bodies
		seed := []byte{byte(i) &^ 2}
		for j := range 64 {
			seed = append(seed, byte(j*37+i*101))
		}
		f.Add(seed)
	}
	// One server per fuzzing process (FuzzAPI runs once per worker), with a context of
	// 128 tokens so that a body asking for a long generation still ends quickly.
	var logged syncBuffer
	_, ts := newTestServer(f, Config{Parallel: 2, Ctx: 128, Queue: 64, ErrorLog: log.New(&logged, "", 0)})
	url := ts.URL
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		mode := data[0]
		chat := mode&1 == 0
		var body string
		if mode&2 != 0 {
			body = string(data[1:])
		} else {
			g := &fuzzGen{b: data[1:]}
			body = g.body(chat)
		}
		path := "/v1/chat/completions"
		if !chat {
			path = "/v1/completions"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", path, body, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: reading the answer: %v", path, body, err)
		}
		if l := logged.String(); l != "" {
			t.Fatalf("%s %s: the server logged:\n%s", path, body, l)
		}
		t.Logf("%s %s -> %d", path, body, resp.StatusCode)
		checkAnswer(t, resp, got)
	})
}
