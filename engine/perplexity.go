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
	return perplexity(ctx, s.Forward, s.Reset, s.Cap(), bos, tokens, o)
}

func perplexity(ctx context.Context, forward func(int32, int) []float32, reset func(), capacity int, bos int32, tokens []int32, o PerplexityOptions) (PerplexityResult, error) {
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
	for w := range total {
		c := tokens[w*o.Window : min(len(tokens), (w+1)*o.Window)]
		reset()
		pos := 0
		if bos >= 0 {
			// BOS predicts c[0].
			if err := ctx.Err(); err != nil {
				return r, err
			}
			sum += nll(forward(bos, pos), c[0])
			r.Scored++
			pos++
		}
		for i := 0; i+1 < len(c); i++ {
			if err := ctx.Err(); err != nil {
				return r, err
			}
			sum += nll(forward(c[i], pos), c[i+1])
			r.Scored++
			pos++
		}
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
