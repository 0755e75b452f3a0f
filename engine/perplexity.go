package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// PerplexityOptions configures Perplexity.
type PerplexityOptions struct {
	// Window is the number of text tokens per window (each from a fresh cache).
	Window int
	// MaxWindows limits the evaluation to the first windows; <= 0 means all.
	MaxWindows int
	// Progress, when set, is called after each window with the windows done, the total and
	// the mean NLL so far.
	Progress func(done, total int, meanNLL float64)
	// Observe, when set, is called for every scored token with the logits that predict
	// it (owned by the model; valid during the call) and the token (KL divergence
	// against saved logits, mole perplexity --kl-divergence).
	Observe func(logits []float32, target int32)
}

// PerplexityResult is the outcome of Perplexity.
type PerplexityResult struct {
	MeanNLL    float64 // nats per scored token
	Perplexity float64 // exp(MeanNLL)
	Scored     int     // tokens scored
	Windows    int
}

// Perplexity scores tokens (the text, tokenized without BOS) in consecutive windows of
// o.Window tokens, each evaluated from a fresh cache; a shorter last window is scored too.
//
// When the model uses a BOS token, each window c is fed as [BOS] + c[:len(c)-1] and every
// token of c is scored, its first token being predicted from BOS. This is the protocol of
// kjv-moe's reference.json heldout_nll. Without BOS, c[:len(c)-1] is fed and every token
// with a predecessor in its window is scored.
func (m *Model) Perplexity(ctx context.Context, s *State, tokens []int32, o PerplexityOptions) (PerplexityResult, error) {
	bos := int32(-1)
	if m.Tok.AddBOS() {
		bos = m.Tok.BOS()
	}
	// A window is evaluated in batched steps of up to perplexityChunk positions of the one
	// sequence: each weight row is then read once per chunk instead of once per token, and
	// the Batch gives every position bit for bit the logits Forward would.
	b := m.NewBatch(perplexityChunk, s.Cap())
	items := make([]BatchItem, 0, perplexityChunk)
	eval := func(toks []int32, pos0 int, each func(i int, logits []float32)) {
		for lo := 0; lo < len(toks); lo += perplexityChunk {
			hi := min(len(toks), lo+perplexityChunk)
			items = items[:0]
			for i := lo; i < hi; i++ {
				items = append(items, BatchItem{State: s, Token: toks[i], Pos: pos0 + i, Wants: true})
			}
			b.Forward(items)
			for i := lo; i < hi; i++ {
				each(i, b.Logits(i-lo))
			}
		}
	}
	return perplexity(ctx, eval, s.Reset, s.Cap(), bos, tokens, o)
}

// perplexityChunk is the number of positions Perplexity evaluates per batched step.
const perplexityChunk = 64

// evalFunc evaluates toks at positions pos0, pos0+1, ... of a sequence whose earlier
// positions are already in its cache, and calls each with every position's logits.
type evalFunc func(toks []int32, pos0 int, each func(i int, logits []float32))

// forwardEval is an evalFunc that runs one token at a time.
func forwardEval(forward func(int32, int) []float32) evalFunc {
	return func(toks []int32, pos0 int, each func(i int, logits []float32)) {
		for i, t := range toks {
			each(i, forward(t, pos0+i))
		}
	}
}

func perplexity(ctx context.Context, eval evalFunc, reset func(), capacity int, bos int32, tokens []int32, o PerplexityOptions) (PerplexityResult, error) {
	var r PerplexityResult
	if o.Window < 2 {
		return r, fmt.Errorf("perplexity: window of %d tokens is too small", o.Window)
	}
	if o.Window > capacity {
		return r, fmt.Errorf("perplexity: window of %d tokens exceeds the context of %d", o.Window, capacity)
	}
	total := (len(tokens) + o.Window - 1) / o.Window
	if o.MaxWindows > 0 {
		total = min(total, o.MaxWindows)
	}
	var sum float64
	var feed []int32
	for w := range total {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		c := tokens[w*o.Window : min(len(tokens), (w+1)*o.Window)]
		reset()
		// With BOS the window is fed as [BOS] + c[:len(c)-1] and every token of c is
		// scored; without, c[:len(c)-1] is fed and c[1:] scored.
		feed = feed[:0]
		targets := c[1:]
		if bos >= 0 {
			feed = append(feed, bos)
			targets = c
		}
		feed = append(feed, c[:len(c)-1]...)
		eval(feed, 0, func(i int, l []float32) {
			if o.Observe != nil {
				o.Observe(l, targets[i])
			}
			sum += nll(l, targets[i])
			r.Scored++
		})
		r.Windows++
		if o.Progress != nil && r.Scored > 0 {
			o.Progress(r.Windows, total, sum/float64(r.Scored))
		}
	}
	if r.Scored == 0 {
		return r, errors.New("perplexity: no tokens to score (text too short)")
	}
	r.MeanNLL = sum / float64(r.Scored)
	r.Perplexity = math.Exp(r.MeanNLL)
	return r, nil
}

// nll is -log softmax(logits)[target], in float64 so that long sums stay exact.
func nll(logits []float32, target int32) float64 {
	maxL := math.Inf(-1)
	for _, v := range logits {
		maxL = max(maxL, float64(v))
	}
	var z float64
	for _, v := range logits {
		z += math.Exp(float64(v) - maxL)
	}
	return maxL + math.Log(z) - float64(logits[target])
}
