//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeCommand runs `mole serve --port 0` in-process on the embedded model: it prints
// the address it listens on (loopback), answers, and on SIGTERM ends a stream in flight with
// an error event and exits with status 0.
func TestServeCommand(t *testing.T) {
	pr, pw := io.Pipe()
	var errb strings.Builder
	codec := make(chan int, 1)
	go func() {
		codec <- run(context.Background(), []string{"serve", "--port", "0", "--parallel", "2"}, strings.NewReader(""), pw, &errb)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no address printed: %v (stderr %s)", err, errb.String())
	}
	go io.Copy(io.Discard, pr)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "mole: listening on ")
	if !ok || !strings.HasPrefix(addr, "http://127.0.0.1:") {
		t.Fatalf("listening line %q", line)
	}
	resp, err := http.Get(addr + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v %v", err, resp)
	}
	resp.Body.Close()

	resp, err = http.Post(addr+"/v1/completions", "application/json",
		strings.NewReader(`{"model":"kjv-moe","prompt":"In the beginning","max_tokens":400,"temperature":0,"stream":true}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("completion: %v %v", err, resp)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil { // the stream has started
		t.Fatal(err)
	}
	// serve has installed its SIGTERM handler before it listened, so this does not kill the test.
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	resp.Body.Close()
	if !strings.Contains(string(rest), `"code":"server_shutdown"`) || strings.Contains(string(rest), "[DONE]") {
		t.Errorf("stream after SIGTERM does not end with the shutdown error event: ...%s", tail(string(rest), 300))
	}
	select {
	case code := <-codec:
		if code != 0 {
			t.Errorf("exit status %d, stderr %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestServeSamplingFlags: serve's sampling flags are the defaults of requests that leave
// those fields out: with --temp 0 -n 5 a bare request gets `mole run --temp 0 -n 5`'s
// text, five tokens; its own fields still win.
func TestServeSamplingFlags(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var errb strings.Builder
	codec := make(chan int, 1)
	go func() {
		codec <- run(ctx, []string{"serve", "--port", "0", "--temp", "0", "-n", "5", "-s", "3"}, strings.NewReader(""), pw, &errb)
		pw.Close()
	}()
	defer func() {
		cancel()
		<-codec
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no address printed: %v (stderr %s)", err, errb.String())
	}
	go io.Copy(io.Discard, pr)
	addr := strings.TrimPrefix(strings.TrimSpace(line), "mole: listening on ")
	complete := func(body string) (string, int) {
		t.Helper()
		resp, err := http.Post(addr+"/v1/completions", "application/json", strings.NewReader(body))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", body, err, resp)
		}
		defer resp.Body.Close()
		var out struct {
			Choices []struct{ Text string }
			Usage   struct {
				CompletionTokens int `json:"completion_tokens"`
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out.Choices[0].Text, out.Usage.CompletionTokens
	}
	const prompt = "In the beginning"
	text, n := complete(`{"prompt":"` + prompt + `"}`)
	code, want, errs := runMole(t, "", "run", "--temp", "0", "-n", "5", "-p", prompt)
	if code != 0 {
		t.Fatalf("run: %d %s", code, errs)
	}
	if n != 5 || text != strings.TrimSuffix(want, "\n") {
		t.Errorf("bare request: %q (%d tokens), mole run: %q", text, n, want)
	}
	if _, n := complete(`{"prompt":"` + prompt + `","max_tokens":2}`); n != 2 {
		t.Errorf("max_tokens 2 gave %d tokens", n)
	}
}
