package server

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/mole-llm/mole/engine"
)

// One request must never take the server down. A panic in a request's work (a bug, or
// an input no check foresaw) is recovered where it can be pinned on requests: around
// starting a request (choosing its slot, starting its sequence) and per slot around
// sampling and emitting, so that only that request fails; around the shared Batch.Forward, which fails every request with an
// item in the step (their KV caches may hold garbage); and around a whole step, as a
// last resort that fails every request in a slot. Panics on the engine's pool workers
// reach the scheduler because the pool re-raises them in the goroutine that started the
// run (engine.WorkerPanic). Failed requests get a 500 (streams an error event), the
// panic is logged with its stack, and the scheduler goes on with the next step.

// testHook, when a test sets it, is called by the scheduler goroutine at points of a
// request's work ("admit", "start", "forward", "advance"; "step" with a nil request at
// the start of every step), so that a test can make one request's work panic or hold
// the scheduler. It is nil in production. Set it before the server starts and clear it
// after Shutdown.
var testHook func(point string, r *request)

// errInternal ends a request whose work panicked. The message is OpenAI's for its own
// server errors; the panic itself goes to the log, not to the client.
//
//lint:ignore ST1005 OpenAI's wording, which clients show as it is
var errInternal = errors.New("The server had an error while processing your request.")

// forget makes sl hold no trusted sequence: resetting its State drops the record of
// the tokens its KV cache holds (State.Cached), so the prompt cache cannot hand them to a
// later request. Called when work in sl's cache failed part-way, so its contents are
// unknown; anything else that remembers what a slot holds must be dropped here too.
func (sl *slot) forget() {
	sl.state.Reset()
	sl.text.Reset()
}

// logPanic writes a recovered panic with the stack of the goroutine it was raised in.
func (s *scheduler) logPanic(what string, r *request, v any) {
	who := ""
	if r != nil {
		who = fmt.Sprintf(" (a %s request that arrived %s ago)", r.endpoint, time.Since(r.arrived).Round(time.Millisecond))
	}
	s.log.Printf("mole: recovered a panic in %s%s; the requests involved fail with a 500, the server goes on: %v\n%s", what, who, v, debug.Stack())
}

// fail ends sl's request, if any, with errInternal and makes sl forget its cache.
func (s *scheduler) fail(sl *slot) {
	if sl.req != nil {
		s.release(sl, "error", errInternal)
	}
	sl.forget()
}

// recoverSlot, deferred by per-slot work, fails only sl's request on a panic.
func (s *scheduler) recoverSlot(sl *slot, what string) {
	if v := recover(); v != nil {
		s.logPanic(what, sl.req, v)
		s.fail(sl)
	}
}

// newSequence starts r's sequence in sl with newSeq (Model.NewSequence or
// NewCachedSequence); a panic becomes errInternal, logged, with sl forgotten.
func (s *scheduler) newSequence(sl *slot, r *request,
	newSeq func(*engine.State, []int32, engine.GenerateOptions, func(string) error) (*engine.Sequence, error),
	emit func(string) error) (seq *engine.Sequence, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.logPanic("starting a sequence", r, v)
			sl.forget()
			seq, err = nil, errInternal
		}
	}()
	if testHook != nil {
		testHook("start", r)
	}
	return newSeq(sl.state, r.prompt, r.opts, emit)
}

// startSafe is start with a guard for the rest of it (choosing a slot): a panic fails r
// alone, and the slot it took, if it got one, forgets its cache.
func (s *scheduler) startSafe(r *request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			s.logPanic("starting a request", r, v)
			for _, sl := range s.slots {
				if sl.req == r {
					s.fail(sl)
					ok = false
					return
				}
			}
			s.met.requests.WithLabelValues(r.endpoint, "error").Inc()
			r.end(engine.Stats{}, errInternal)
			ok = false
		}
	}()
	if testHook != nil {
		testHook("admit", r)
	}
	return s.start(r)
}

// forward runs the step's batch; on a panic it fails the requests that had items in it
// and reports false.
func (s *scheduler) forward(items []engine.BatchItem, owner []int) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			s.logPanic("the batched forward step", nil, v)
			for _, i := range owner[:len(items)] {
				s.fail(s.slots[i]) // once per item: a failed slot only forgets again
			}
			ok = false
		}
	}()
	if testHook != nil {
		for j, i := range owner[:len(items)] {
			if j == 0 || owner[j-1] != i {
				testHook("forward", s.slots[i].req)
			}
		}
	}
	s.batch.Forward(items)
	return true
}

// stepSafe runs a step; a panic that escaped the per-slot and forward guards fails every
// request in a slot, since which slot's state it left inconsistent is unknown.
func (s *scheduler) stepSafe() {
	defer func() {
		if v := recover(); v != nil {
			s.logPanic("a scheduler step", nil, v)
			for _, sl := range s.slots {
				if sl.req != nil { // a free slot's cache took no part in the step
					s.fail(sl)
				}
			}
			s.updateKV()
		}
	}()
	s.step()
}

// recoverHTTP answers a handler's panic with a 500 in OpenAI's shape when nothing was
// written yet; a response already under way (a stream) is aborted instead, so the
// client cannot mistake a truncated answer for a whole one.
func (s *Server) recoverHTTP(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &trackWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { // net/http's way to abort quietly
				panic(v)
			}
			s.sched.log.Printf("mole: panic serving %s %s: %v\n%s", r.Method, r.URL.Path, v, debug.Stack())
			if tw.wrote {
				panic(http.ErrAbortHandler)
			}
			writeError(tw, &apiError{status: http.StatusInternalServerError, Type: "server_error", Message: errInternal.Error()})
		}()
		h.ServeHTTP(tw, r)
	})
}

// trackWriter notes whether a response has started. Unwrap lets
// http.NewResponseController reach the connection's Flush.
type trackWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *trackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
