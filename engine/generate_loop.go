package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// GenerateOptions configures Generate.
type GenerateOptions struct {
	// MaxTokens caps the generated tokens; < 0 means until the context is full, 0 generates
	// nothing (the prompt is still evaluated).
	MaxTokens int
	Sampler   SamplerOptions
	// Stop strings end generation where they first appear in the output text, even across
	// token boundaries; the stop string itself is never emitted.
	Stop []string
}

// Stop reasons reported in Stats.StopReason.
const (
	StopEOG    = "stop"   // an end-of-generation token or a stop string
	StopLength = "length" // MaxTokens reached or the context is full
)

// Stats describes a finished generation.
type Stats struct {
	PromptTokens   int
	GenTokens      int // tokens sampled and accepted, excluding the end-of-generation token
	PromptDuration time.Duration
	GenDuration    time.Duration
	StopReason     string
	// CachedTokens counts the leading prompt tokens not evaluated because the State's KV
	// cache already held them (NewCachedSequence); PromptTokens includes them.
	CachedTokens int
}

// tokenText turns token ids into text incrementally; *tokenizer.Decoder implements it.
type tokenText interface {
	Next(id int32) string
	Flush() string
}

// genModel is what the generation loop needs from a model, as plain values so the loop can
// be tested with a fake model and so calling them costs no interface conversions.
type genModel struct {
	forward func(token int32, pos int) []float32
	isEOG   func(id int32) bool
	dec     tokenText
	vocab   int
	ctxLen  int
}

// generator is one generation in progress. All per-token state lives here, preallocated,
// so that step does not allocate.
type generator struct {
	m         genModel
	o         GenerateOptions
	emit      func(string) error
	sampler   *Sampler
	stop      []string
	stopBytes [][]byte
	maxStop   int

	logits []float32
	pos    int
	// pend holds decoded text not yet emitted because it may begin a stop string; segs holds
	// the same text as the decoder's strings (emission) while pend is contiguous (matching).
	pend []byte
	segs []string

	stats           Stats
	done            bool
	stoppedOnString bool
}

func newGenerator(m genModel, o GenerateOptions, emit func(string) error) *generator {
	g := &generator{m: m, o: o, emit: emit, sampler: NewSampler(m.vocab, m.ctxLen, o.Sampler)}
	for _, s := range o.Stop {
		if s != "" {
			g.stop = append(g.stop, s)
			g.stopBytes = append(g.stopBytes, []byte(s))
			g.maxStop = max(g.maxStop, len(s))
		}
	}
	// Held text is shorter than the longest stop string; one token adds at most a few
	// dozen bytes. Growing beyond this capacity is possible but rare.
	g.pend = make([]byte, 0, 2*g.maxStop+256)
	g.segs = make([]string, 0, g.maxStop+8)
	return g
}

func (g *generator) run(ctx context.Context, prompt []int32) (Stats, error) {
	if len(prompt) == 0 {
		return g.stats, errors.New("generate: empty prompt (at least a BOS token is needed)")
	}
	if len(prompt) > g.m.ctxLen {
		return g.stats, fmt.Errorf("generate: prompt of %d tokens does not fit in a context of %d", len(prompt), g.m.ctxLen)
	}
	t0 := time.Now()
	for _, id := range prompt {
		if err := ctx.Err(); err != nil {
			return g.stats, err
		}
		g.logits = g.m.forward(id, g.pos)
		g.pos++
		g.sampler.Accept(id) // llama.cpp penalises prompt tokens too
	}
	g.stats.PromptTokens = len(prompt)
	g.stats.PromptDuration = time.Since(t0)

	t1 := time.Now()
	var err error
	for !g.done {
		if err = ctx.Err(); err != nil {
			break
		}
		if err = g.step(); err != nil {
			break
		}
	}
	if err == nil {
		err = g.finish()
	}
	g.stats.GenDuration = time.Since(t1)
	return g.stats, err
}

// step samples one token from the current logits, emits what text is final, and feeds the
// token back unless generation ends here.
func (g *generator) step() error {
	if g.o.MaxTokens >= 0 && g.stats.GenTokens >= g.o.MaxTokens {
		g.stats.StopReason, g.done = StopLength, true
		return nil
	}
	id := g.sampler.Sample(g.logits)
	if g.m.isEOG(id) {
		g.stats.StopReason, g.done = StopEOG, true
		return nil
	}
	g.stats.GenTokens++
	if err := g.push(g.m.dec.Next(id)); err != nil || g.done {
		return err
	}
	if g.pos >= g.m.ctxLen {
		// The token was produced but there is no room to evaluate it.
		g.stats.StopReason, g.done = StopLength, true
		return nil
	}
	g.logits = g.m.forward(id, g.pos)
	g.pos++
	return nil
}

// push adds decoded text and emits everything that can no longer be part of a stop string.
func (g *generator) push(text string) error {
	if text == "" {
		return nil
	}
	if len(g.stop) == 0 {
		return g.emit(text)
	}
	from := max(0, len(g.pend)-g.maxStop+1) // matches starting earlier were ruled out before
	g.pend = append(g.pend, text...)
	g.segs = append(g.segs, text)
	if k := g.findStop(from); k >= 0 {
		g.stats.StopReason, g.done, g.stoppedOnString = StopEOG, true, true
		return g.release(k)
	}
	return g.release(len(g.pend) - g.holdLen())
}

// release emits the first n held bytes. They are emitted as the decoder's own strings or
// substrings of them, never as new strings: that keeps emitted text immutable without an
// allocation per token.
func (g *generator) release(n int) error {
	if n == 0 {
		return nil
	}
	left, i := n, 0
	var err error
	for ; left > 0 && err == nil; i++ {
		seg := g.segs[i]
		if len(seg) > left {
			err = g.emit(seg[:left])
			g.segs[i] = seg[left:]
			left = 0
			i-- // the rest of this segment stays held
			continue
		}
		err = g.emit(seg)
		left -= len(seg)
	}
	g.segs = g.segs[:copy(g.segs, g.segs[i:])]
	g.pend = g.pend[:copy(g.pend, g.pend[n:])]
	if g.done {
		g.segs, g.pend = g.segs[:0], g.pend[:0] // text after a stop string is dropped
	}
	return err
}

// findStop returns the earliest index at or after from where a stop string starts in pend,
// or -1.
func (g *generator) findStop(from int) int {
	best := -1
	for _, st := range g.stopBytes {
		if i := bytes.Index(g.pend[from:], st); i >= 0 && (best < 0 || from+i < best) {
			best = from + i
		}
	}
	return best
}

// holdLen returns the length of the longest suffix of pend that is a proper prefix of some
// stop string: text that must wait for the next token to decide.
func (g *generator) holdLen() int {
	hold := 0
	p := g.pend
	for _, st := range g.stop {
		for l := min(len(st)-1, len(p)); l > hold; l-- {
			if string(p[len(p)-l:]) == st[:l] { // compared in place, not allocated
				hold = l
				break
			}
		}
	}
	return hold
}

// finish flushes the decoder and releases held text: with no more tokens coming, a partial
// stop string is just text.
func (g *generator) finish() error {
	if g.stoppedOnString {
		return nil // whatever the decoder still holds comes after the stop string
	}
	tail := g.m.dec.Flush()
	if len(g.stop) == 0 {
		if tail != "" {
			return g.emit(tail)
		}
		return nil
	}
	if tail != "" {
		g.pend = append(g.pend, tail...)
		g.segs = append(g.segs, tail)
	}
	n := len(g.pend)
	if k := g.findStop(0); k >= 0 {
		g.stats.StopReason, g.done, g.stoppedOnString = StopEOG, true, true
		n = k
	}
	return g.release(n)
}
