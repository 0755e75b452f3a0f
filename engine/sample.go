package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// SamplerOptions configures a Sampler. The zero value is greedy decoding with no penalty.
//
// The stages run in llama.cpp's default order:
//
//	repetition penalty -> top-k -> top-p -> min-p -> temperature -> draw
//
// so top-p and min-p judge the model's own (penalised, untempered) distribution and the
// temperature only reshapes what survived them. Temperature <= 0 means greedy: the
// (penalised) argmax is returned, ties going to the lowest token id.
type SamplerOptions struct {
	Temperature   float32 // <= 0: greedy
	TopP          float32 // keep the smallest set of tokens whose probability sums to >= TopP; <= 0 or >= 1 disables
	MinP          float32 // drop tokens whose probability is below MinP times the top token's; <= 0 disables
	RepeatPenalty float32 // llama.cpp semantics: a logit > 0 is divided by it, otherwise multiplied; <= 0 or 1 disables
	TopK          int     // keep the K most likely tokens; <= 0 disables
	RepeatLastN   int     // how many recent tokens the penalty looks at; 0 disables, -1 means the whole context (llama.cpp's convention)
	Seed          uint64  // seeds the PCG generator: the same seed, options and logits give the same tokens
}

// DefaultRepeatLastN is llama.cpp's default penalty window (penalty_last_n).
const DefaultRepeatLastN = 64

// OptionError reports a sampling option outside the range it accepts. Field is the
// option's name in llama.cpp's server API (temperature, top_k, top_p, min_p,
// repeat_penalty, repeat_last_n), which the CLI and the HTTP server each turn into
// their own spelling, so both reject the same values with the same explanation.
type OptionError struct {
	Field string
	Value string // the rejected value as given
	Want  string // the accepted range, in words
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("%s %s: want %s", e.Field, e.Value, e.Want)
}

// Validate checks options that come from a user against llama.cpp's accepted ranges.
// It is the one place the CLI and the server check sampling options; the Sampler itself
// also survives any values (a min-p above 1 keeps the best token, a huge window is
// bounded by the context), but a user who asks for an impossible value gets an error
// instead of a silent substitute. NaN and infinities fail every range.
func (o SamplerOptions) Validate() error {
	bad := func(field string, v any, want string) error {
		return &OptionError{Field: field, Value: fmt.Sprint(v), Want: want}
	}
	finite := func(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
	switch {
	case !finite(o.Temperature) || o.Temperature < 0:
		return bad("temperature", o.Temperature, "a number >= 0 (0 = greedy)")
	case o.TopK < -1:
		return bad("top_k", o.TopK, "an integer >= 0 (0 or -1 = off)")
	case !(o.TopP >= 0 && o.TopP <= 1):
		return bad("top_p", o.TopP, "a number between 0 and 1 (1 = off)")
	case !(o.MinP >= 0 && o.MinP <= 1):
		return bad("min_p", o.MinP, "a number between 0 and 1 (0 = off)")
	case !finite(o.RepeatPenalty) || o.RepeatPenalty <= 0:
		return bad("repeat_penalty", o.RepeatPenalty, "a number > 0 (1 = off)")
	case o.RepeatLastN < -1:
		return bad("repeat_last_n", o.RepeatLastN, "an integer >= -1 (0 = off, -1 = the whole context)")
	}
	return nil
}

// DefaultSamplerOptions returns llama.cpp's defaults (common/common.h, common_params_sampling):
// temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, repeat penalty 1.0 (off) over the last 64
// tokens.
func DefaultSamplerOptions() SamplerOptions {
	return SamplerOptions{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1, RepeatLastN: DefaultRepeatLastN}
}

// candidate is one token still in the running. p holds the exponentiated, not yet
// normalised weight once a stage needs probabilities.
type candidate struct {
	id    int32
	logit float32
	p     float32
}

// Sampler picks the next token from a logit vector. All buffers are sized for the vocabulary
// at construction, so Sample does not allocate. A Sampler is not safe for concurrent use.
type Sampler struct {
	o     SamplerOptions
	vocab int
	rng   *rand.Rand
	pcg   *rand.PCG

	// hist is a ring of the last RepeatLastN accepted tokens.
	hist    []int32
	histLen int
	histPos int

	// seen[id] == epoch marks a token already penalised in this call: llama.cpp penalises each
	// distinct token once however often it repeats. The epoch avoids clearing seen per call.
	seen  []uint32
	epoch uint32

	cand []candidate
}

// NewSampler returns a sampler for logit vectors of length vocab in a context of ctx
// tokens. The penalty window is at most the context (RepeatLastN -1 means all of it):
// no token older than the context can be in it, and sizing the history by the option
// alone would let one request field allocate without bound.
func NewSampler(vocab, ctx int, o SamplerOptions) *Sampler {
	ctx = max(ctx, 1)
	if o.RepeatLastN < 0 || o.RepeatLastN > ctx {
		o.RepeatLastN = ctx
	}
	s := &Sampler{o: o, vocab: vocab, cand: make([]candidate, vocab)}
	s.pcg = rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)
	s.rng = rand.New(s.pcg)
	if s.penaltyOn() {
		s.hist = make([]int32, o.RepeatLastN)
		s.seen = make([]uint32, vocab)
	}
	return s
}

// Options returns the options in effect (RepeatLastN bounded by the context).
func (s *Sampler) Options() SamplerOptions { return s.o }

func (s *Sampler) penaltyOn() bool {
	return s.o.RepeatPenalty > 0 && s.o.RepeatPenalty != 1 && s.o.RepeatLastN > 0
}

// Reset forgets the penalty history and reseeds the generator, so a Sampler can be reused
// for a new, reproducible generation.
func (s *Sampler) Reset() {
	s.histLen, s.histPos = 0, 0
	s.pcg.Seed(s.o.Seed, s.o.Seed^0x9e3779b97f4a7c15)
}

// Accept records id in the penalty history. Sample does this itself for the token it
// returns; callers use Accept for prompt tokens, which llama.cpp also penalises.
func (s *Sampler) Accept(id int32) {
	if s.hist == nil {
		return
	}
	s.hist[s.histPos] = id
	s.histPos = (s.histPos + 1) % len(s.hist)
	if s.histLen < len(s.hist) {
		s.histLen++
	}
}

// Sample returns the next token for logits (len vocab; not modified) and accepts it into the
// penalty history.
func (s *Sampler) Sample(logits []float32) int32 {
	id := s.pick(logits)
	s.Accept(id)
	return id
}

func (s *Sampler) pick(logits []float32) int32 {
	n := min(len(logits), s.vocab)
	logits = logits[:n]
	k := s.o.TopK
	if s.o.Temperature <= 0 {
		k = 1 // greedy is top-1; ties go to the lower id as everywhere here
	}
	var c []candidate
	sorted := false
	if k > 0 && k < n {
		c = s.topK(logits, k)
		sorted = true
	} else {
		c = s.cand[:n]
		for i := range c {
			c[i] = candidate{id: int32(i), logit: logits[i]}
		}
		s.penalize(c)
	}
	if s.o.Temperature <= 0 {
		return c[0].id
	}

	if p := s.o.TopP; p > 0 && p < 1 && len(c) > 1 {
		if !sorted {
			slices.SortFunc(c, byLogitDesc)
			sorted = true
		}
		sum := softmaxWeights(c, 1)
		target := float64(p) * sum
		var cum float64
		keep := len(c)
		for i := range c {
			cum += float64(c[i].p)
			if cum >= target {
				keep = i + 1
				break
			}
		}
		c = c[:keep]
	}

	if mp := s.o.MinP; mp > 0 && len(c) > 1 {
		// p_i >= mp * p_max  <=>  logit_i >= max_logit + ln(mp): no softmax needed.
		maxL := c[0].logit
		if !sorted {
			for i := range c {
				maxL = max(maxL, c[i].logit)
			}
		}
		thr := maxL + float32(math.Log(float64(mp)))
		j := 0
		for i := range c {
			if c[i].logit >= thr {
				c[j] = c[i]
				j++
			}
		}
		if j == 0 {
			// Only a min-p above 1 removes every token (Validate refuses it); keep the
			// best, as llama.cpp's min_keep of 1 does, rather than draw from nothing.
			j = 1
			for i := range c {
				if less(c[i], c[0]) {
					c[0] = c[i]
				}
			}
		}
		c = c[:j]
	}

	sum := softmaxWeights(c, s.o.Temperature)
	r := s.rng.Float64() * sum
	var cum float64
	for i := range c {
		cum += float64(c[i].p)
		if r < cum {
			return c[i].id
		}
	}
	// Rounding can leave r at the very end of the range; the last candidate owns it.
	return c[len(c)-1].id
}

// topK returns the k best candidates after the repetition penalty, sorted best first.
//
// It streams over logits keeping a small min-heap instead of copying and partitioning the
// whole vocabulary: with k in the tens and a vocabulary of 150k, almost every logit is
// rejected by one comparison against the heap's worst entry. Penalised tokens are the
// complication, since the penalty moves them: the heap keeps k+P raw entries (P = distinct
// penalised tokens), which is enough because at most P tokens can move past an unpenalised
// one, and the penalised tokens are then re-scored and added explicitly.
func (s *Sampler) topK(logits []float32, k int) []candidate {
	p := s.markPenalized()
	m := k + p
	if m*4 >= len(logits) {
		// Not much smaller than the vocabulary: selection over a full copy is as good.
		c := s.cand[:len(logits)]
		for i := range c {
			c[i] = candidate{id: int32(i), logit: logits[i]}
		}
		s.penalize(c)
		selectTop(c, k)
		c = c[:k]
		slices.SortFunc(c, byLogitDesc)
		return c
	}
	h := s.cand[:0]
	for i, v := range logits {
		if len(h) < m {
			h = append(h, candidate{id: int32(i), logit: v})
			heapUp(h, len(h)-1)
			continue
		}
		// h[0] is the worst kept; ids only grow, so an equal logit never beats it.
		if v > h[0].logit {
			h[0] = candidate{id: int32(i), logit: v}
			heapDown(h, 0)
		}
	}
	if p > 0 {
		for i := range h {
			if id := h[i].id; s.seen[id] == s.epoch {
				h[i].logit = s.penalized(logits[id])
				s.seen[id] = 0 // handled: not to be added again below
			}
		}
		for i := 0; i < s.histLen; i++ {
			if id := s.hist[i]; id >= 0 && int(id) < len(logits) && s.seen[id] == s.epoch {
				h = append(h, candidate{id: id, logit: s.penalized(logits[id])})
				s.seen[id] = 0
			}
		}
	}
	if len(h) > k {
		selectTop(h, k)
		h = h[:k]
	}
	slices.SortFunc(h, byLogitDesc)
	return h
}

// markPenalized marks the distinct tokens of the penalty window with a fresh epoch in seen
// and returns how many there are (0 when the penalty is off).
func (s *Sampler) markPenalized() int {
	if !s.penaltyOn() || s.histLen == 0 {
		return 0
	}
	s.nextEpoch()
	p := 0
	for i := 0; i < s.histLen; i++ {
		id := s.hist[i]
		if id >= 0 && int(id) < len(s.seen) && s.seen[id] != s.epoch {
			s.seen[id] = s.epoch
			p++
		}
	}
	return p
}

func (s *Sampler) nextEpoch() {
	s.epoch++
	if s.epoch == 0 { // wrapped: stale marks could collide, so clear them once
		clear(s.seen)
		s.epoch = 1
	}
}

// penalized applies llama.cpp's repetition penalty to one logit.
func (s *Sampler) penalized(v float32) float32 {
	if v > 0 {
		return v / s.o.RepeatPenalty
	}
	return v * s.o.RepeatPenalty
}

// heapUp and heapDown maintain a min-heap under "less" reversed: h[0] is the candidate
// that ranks worst, the one to evict first.
func heapUp(h []candidate, i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !less(h[parent], h[i]) {
			return
		}
		h[parent], h[i] = h[i], h[parent]
		i = parent
	}
}

func heapDown(h []candidate, i int) {
	for {
		worst := i
		if l := 2*i + 1; l < len(h) && less(h[worst], h[l]) {
			worst = l
		}
		if r := 2*i + 2; r < len(h) && less(h[worst], h[r]) {
			worst = r
		}
		if worst == i {
			return
		}
		h[i], h[worst] = h[worst], h[i]
		i = worst
	}
}

// penalize applies the repetition penalty to c, which must still be indexed by token id.
// llama.cpp penalises each distinct token once however often it repeats; the epoch marks
// in seen track which were done without clearing an array per call.
func (s *Sampler) penalize(c []candidate) {
	if !s.penaltyOn() || s.histLen == 0 {
		return
	}
	s.nextEpoch()
	for i := 0; i < s.histLen; i++ {
		id := s.hist[i]
		if id < 0 || int(id) >= len(c) || s.seen[id] == s.epoch {
			continue
		}
		s.seen[id] = s.epoch
		c[id].logit = s.penalized(c[id].logit)
	}
}

// softmaxWeights sets c[i].p = exp((logit_i - max)/temp) and returns their sum in float64
// (the draw compares against it, so normalising the vector itself is unnecessary).
func softmaxWeights(c []candidate, temp float32) float64 {
	maxL := float32(math.Inf(-1))
	for i := range c {
		maxL = max(maxL, c[i].logit)
	}
	inv := 1 / temp
	var sum float64
	for i := range c {
		w := float32(math.Exp(float64((c[i].logit - maxL) * inv)))
		c[i].p = w
		sum += float64(w)
	}
	return sum
}

// byLogitDesc orders candidates best first, ties by lower id so results do not depend on
// the selection algorithm's internal order.
func byLogitDesc(a, b candidate) int {
	switch {
	case a.logit > b.logit:
		return -1
	case a.logit < b.logit:
		return 1
	}
	return int(a.id) - int(b.id)
}

// less is byLogitDesc as a boolean: a ranks before b.
func less(a, b candidate) bool {
	return a.logit > b.logit || (a.logit == b.logit && a.id < b.id)
}

// selectTop partially orders c so that its k best candidates occupy c[:k] (in no particular
// order): Hoare-style quickselect, O(len(c)) on average instead of a full sort, which matters
// because k is usually tens and the vocabulary tens of thousands.
func selectTop(c []candidate, k int) {
	lo, hi := 0, len(c)-1
	for lo < hi {
		// Median of three guards against already sorted input (e.g. logits falling with id).
		mid := lo + (hi-lo)/2
		if less(c[mid], c[lo]) {
			c[mid], c[lo] = c[lo], c[mid]
		}
		if less(c[hi], c[lo]) {
			c[hi], c[lo] = c[lo], c[hi]
		}
		if less(c[hi], c[mid]) {
			c[hi], c[mid] = c[mid], c[hi]
		}
		pivot := c[mid]
		i, j := lo, hi
		for i <= j {
			for less(c[i], pivot) {
				i++
			}
			for less(pivot, c[j]) {
				j--
			}
			if i <= j {
				c[i], c[j] = c[j], c[i]
				i++
				j--
			}
		}
		// Now c[lo..j] rank no worse than pivot... and c[i..hi] no better; narrow to the side
		// holding position k-1.
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return
		}
	}
}
