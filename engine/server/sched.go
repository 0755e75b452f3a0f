package server

import (
	"context"
	"errors"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mole-llm/mole/engine"
)

// request is one admitted generation: what the handler asked for and, filled in by the
// scheduler, what came out. The handler and the scheduler meet only through mu and notify.
type request struct {
	endpoint string
	prompt   []int32
	opts     engine.GenerateOptions
	ctx      context.Context // the client's: done when it disconnects
	arrived  time.Time
	cache    bool // keep the prompt prefix a slot's KV cache already holds (cache.go)

	mu     sync.Mutex
	pieces []string // text per generated token not yet taken by the handler
	done   bool
	stats  engine.Stats
	err    error         // set when generation ended abnormally (shutdown, internal error)
	notify chan struct{} // capacity 1: "pieces or done changed"

	inflight *atomic.Int64 // the scheduler's count of admitted requests, decremented by end
}

func newRequest(ctx context.Context, endpoint string, prompt []int32, o engine.GenerateOptions) *request {
	return &request{endpoint: endpoint, prompt: prompt, opts: o, ctx: ctx, arrived: time.Now(), notify: make(chan struct{}, 1)}
}

func (r *request) wake() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// take returns the pieces produced since the last call and whether the generation is over.
func (r *request) take(dst []string) ([]string, bool, engine.Stats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	dst = append(dst, r.pieces...)
	r.pieces = r.pieces[:0]
	return dst, r.done, r.stats, r.err
}

func (r *request) end(st engine.Stats, err error) {
	r.mu.Lock()
	if r.done { // ended already (a panic recovered part-way through a release)
		r.mu.Unlock()
		return
	}
	r.done, r.stats, r.err = true, st, err
	r.mu.Unlock()
	if r.inflight != nil {
		r.inflight.Add(-1) // its slot or queue place is free
	}
	r.wake()
}

// errShutdown ends generations cut short by a server shutdown.
var errShutdown = errors.New("the server is shutting down")

// slot is one of the --parallel sequences decoding together, with its own KV cache.
type slot struct {
	state *engine.State
	req   *request
	seq   *engine.Sequence
	text  strings.Builder // text emitted during the current step
	last  time.Time       // when the previous token was produced (per-token latency)
	first bool            // whether a token has been produced yet (time to first token)
	used  uint64          // scheduler.clock when the slot last took a request (cache.go)
}

// scheduler runs continuous batching: every step it admits queued requests into free slots,
// drops slots whose client went away, evaluates one token of every decoding slot plus a
// chunk of every newly admitted prompt in one Batch.Forward, and advances each sequence.
type scheduler struct {
	m       *engine.Model
	slots   []*slot
	batch   *engine.Batch
	queue   chan *request
	stop    chan struct{}
	stopped chan struct{}
	met     *metrics
	ctx     int
	clock   uint64      // counts started requests: the slots' use order (cache.go)
	log     *log.Logger // recovered panics, with their stacks

	// prefill is the most prompt tokens evaluated per step beside the decoding tokens: it
	// bounds how long one step (and so every stream's next token) can be delayed by a newly
	// admitted long prompt.
	prefill int
	items   []engine.BatchItem
	owner   []int // slot index of each item

	// inflight counts the requests submitted and not yet ended, in slots or queued; it
	// is held to capacity (slots plus queue places), so a slot that is free, or is freed
	// before the next step, takes a request as a queue place does.
	inflight atomic.Int64
	capacity int64
}

func newScheduler(m *engine.Model, parallel, ctxLen, queue, prefill int, met *metrics) *scheduler {
	s := &scheduler{
		m: m, queue: make(chan *request, parallel+queue), capacity: int64(parallel + queue),
		stop: make(chan struct{}), stopped: make(chan struct{}),
		met: met, ctx: ctxLen, prefill: prefill,
	}
	s.batch = m.NewBatch(parallel+prefill, ctxLen)
	for range parallel {
		st := m.NewState(ctxLen)
		if met.expert != nil {
			st.SetRouterTrace(met.routerTrace)
		}
		s.slots = append(s.slots, &slot{state: st})
	}
	return s
}

// submit queues r, or reports false when every slot and queue place is taken. Requests
// are admitted into slots only between steps, so counting queued requests alone would
// refuse a burst that arrives during a step although slots are free.
func (s *scheduler) submit(r *request) bool {
	for {
		n := s.inflight.Load()
		if n >= s.capacity {
			return false
		}
		if s.inflight.CompareAndSwap(n, n+1) {
			break
		}
	}
	r.inflight = &s.inflight
	s.queue <- r // never blocks: the queue holds capacity requests
	s.met.deferred.Set(float64(len(s.queue)))
	return true
}

func (s *scheduler) run() {
	defer close(s.stopped)
	for {
		busy := s.admit()
		if busy == 0 {
			select {
			case r := <-s.queue:
				s.startSafe(r)
				continue
			case <-s.stop:
				s.shutdown()
				return
			}
		}
		select {
		case <-s.stop:
			s.shutdown()
			return
		default:
		}
		s.stepSafe()
	}
}

// admit fills free slots from the queue and returns the number of busy slots.
func (s *scheduler) admit() int {
	busy := 0
	for _, sl := range s.slots {
		if sl.req != nil {
			busy++
		}
	}
	for busy < len(s.slots) {
		select {
		case r := <-s.queue:
			if s.startSafe(r) {
				busy++
			}
			continue
		default:
		}
		break
	}
	s.met.deferred.Set(float64(len(s.queue)))
	return busy
}

// start puts r into a free slot; false when r was not started (its client is gone).
func (s *scheduler) start(r *request) bool {
	if r.ctx.Err() != nil {
		s.met.requests.WithLabelValues(r.endpoint, "cancelled").Inc()
		r.end(engine.Stats{}, r.ctx.Err())
		return false
	}
	if sl := s.pick(r); sl != nil {
		newSeq := s.m.NewSequence
		if r.cache {
			newSeq = s.m.NewCachedSequence
		}
		seq, err := s.newSequence(sl, r, newSeq, func(t string) error {
			sl.text.WriteString(t)
			return nil
		})
		if err != nil { // the handler validated the prompt, so this is a bug
			s.met.requests.WithLabelValues(r.endpoint, "error").Inc()
			r.end(engine.Stats{}, err)
			return false
		}
		sl.req, sl.seq, sl.first = r, seq, false
		s.clock++
		sl.used = s.clock
		sl.text.Reset()
		s.met.processing.Inc()
		return true
	}
	panic("server: no free slot") // admit only starts requests when a slot is free
}

// release frees sl, ending its request with outcome.
func (s *scheduler) release(sl *slot, outcome string, err error) {
	st := sl.seq.Stats()
	// The tokens were computed, and maybe streamed, whether or not the request finished
	// (a client that disconnected, a failure): the counters count them all. A prompt
	// counts once it has been evaluated whole; as llama.cpp counts them, prompt tokens
	// are those evaluated, reused ones apart.
	prompt, cached, promptSec := 0, 0, 0.0
	if !sl.seq.Prefilling() {
		prompt, cached, promptSec = st.PromptTokens-st.CachedTokens, st.CachedTokens, st.PromptDuration.Seconds()
	}
	s.met.finished(prompt, st.GenTokens, promptSec, st.GenDuration.Seconds())
	s.met.promptCached.Add(float64(cached))
	s.met.requests.WithLabelValues(sl.req.endpoint, outcome).Inc()
	s.met.processing.Dec()
	sl.req.end(st, err)
	sl.req, sl.seq = nil, nil
	s.updateKV() // the released slot's tokens no longer count
}

func (s *scheduler) step() {
	if testHook != nil {
		testHook("step", nil)
	}
	items, owner := s.items[:0], s.owner[:0]
	// Decoding slots first: one token each, always. Then prompt chunks within the budget.
	for i, sl := range s.slots {
		if sl.req == nil {
			continue
		}
		if sl.req.ctx.Err() != nil { // the client went away: free the slot now
			s.release(sl, "cancelled", sl.req.ctx.Err())
			continue
		}
		if !sl.seq.Prefilling() {
			items = sl.seq.Items(items, sl.state, 1)
			for len(owner) < len(items) {
				owner = append(owner, i)
			}
		}
	}
	budget := s.prefill
	for i, sl := range s.slots {
		if sl.req == nil || !sl.seq.Prefilling() || budget <= 0 {
			continue
		}
		n := len(items)
		items = sl.seq.Items(items, sl.state, budget)
		budget -= len(items) - n
		for len(owner) < len(items) {
			owner = append(owner, i)
		}
	}
	s.items, s.owner = items, owner
	if len(items) == 0 {
		return
	}
	if !s.forward(items, owner) {
		s.updateKV()
		return
	}
	s.met.decodes.Inc()
	s.met.batchTokens.Observe(float64(len(items)))

	now := time.Now()
	busy := 0
	for _, sl := range s.slots {
		if sl.req != nil {
			busy++
		}
	}
	for i, sl := range s.slots {
		if sl.req != nil {
			s.advance(i, sl, items, owner, now)
		}
	}
	s.met.busySlotsSum += float64(busy)
	s.met.nDecodes++
	s.met.busyPerDecode.Set(s.met.busySlotsSum / s.met.nDecodes)
	s.updateKV()
}

// advance hands slot i its logits from the step just run, passes on the text it emitted
// and frees the slot when its generation is over. A panic in it fails only this slot.
func (s *scheduler) advance(i int, sl *slot, items []engine.BatchItem, owner []int, now time.Time) {
	defer s.recoverSlot(sl, "sampling or emitting")
	if testHook != nil {
		testHook("advance", sl.req)
	}
	var logits []float32
	for j := range items {
		if owner[j] == i && items[j].Wants {
			logits = s.batch.Logits(j)
		}
	}
	before := sl.seq.Stats().GenTokens
	done, err := sl.seq.Advance(logits)
	st := sl.seq.Stats()
	if st.GenTokens > before || sl.text.Len() > 0 {
		// One piece per generated token (text held back for a stop string or an
		// incomplete UTF-8 sequence arrives with a later piece), so a stream has as
		// many content chunks as completion tokens whenever every token has text.
		if st.GenTokens > before {
			if !sl.first {
				sl.first = true
				s.met.ttft.Observe(now.Sub(sl.req.arrived).Seconds())
			} else {
				s.met.tpot.Observe(now.Sub(sl.last).Seconds())
			}
			sl.last = now
		}
		sl.req.mu.Lock()
		sl.req.pieces = append(sl.req.pieces, sl.text.String())
		sl.req.mu.Unlock()
		sl.text.Reset()
		sl.req.wake()
	}
	switch {
	case err != nil:
		s.release(sl, "error", err)
	case done:
		s.release(sl, st.StopReason, nil)
	}
}

// updateKV sets the KV cache gauges from the slots in use.
func (s *scheduler) updateKV() {
	kv := 0
	for _, sl := range s.slots {
		if sl.req != nil {
			st := sl.seq.Stats()
			kv += st.PromptTokens + st.GenTokens
		}
	}
	s.met.kvTokens.Set(float64(kv))
	s.met.kvRatio.Set(float64(kv) / float64(s.ctx*len(s.slots)))
}

// shutdown ends every active and queued request with errShutdown.
func (s *scheduler) shutdown() {
	for _, sl := range s.slots {
		if sl.req != nil {
			s.release(sl, "shutdown", errShutdown)
		}
	}
	for {
		select {
		case r := <-s.queue:
			s.met.requests.WithLabelValues(r.endpoint, "shutdown").Inc()
			r.end(engine.Stats{}, errShutdown)
		default:
			s.met.deferred.Set(0)
			s.met.kvTokens.Set(0)
			s.met.kvRatio.Set(0)
			return
		}
	}
}
