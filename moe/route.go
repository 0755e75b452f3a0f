package moe

import "github.com/mole-llm/mole/kernels"

// Router selects k experts from router logits. Its buffers are allocated once so that
// Route does not allocate on the per-token path.
type Router struct {
	K         int  // experts used per token
	Normalize bool // renormalise the k chosen probabilities to sum to 1 (Mixtral, Qwen3-MoE)

	probs []float32
}

// NewRouter returns a router over nExpert experts choosing k of them.
func NewRouter(nExpert, k int, normalize bool) *Router {
	return &Router{K: k, Normalize: normalize, probs: make([]float32, nExpert)}
}

// Route computes softmax(logits), picks the K most probable experts in descending
// probability and writes their ids to idx and their weights to w (both length >= K).
// Equal probabilities are broken towards the lower expert id, which is what PyTorch's
// topk returns on CPU and what the reference outputs were produced with.
//
// Without Normalize the weights are the plain softmax probabilities (Qwen2-MoE, OLMoE).
func (r *Router) Route(logits []float32, idx []int32, w []float32) {
	p := r.probs[:len(logits)]
	copy(p, logits)
	kernels.Softmax(p)
	TopK(p, idx[:r.K], w[:r.K])
	if r.Normalize {
		var s float32
		for _, v := range w[:r.K] {
			s += v
		}
		if s > 0 {
			for i := range w[:r.K] {
				w[i] /= s
			}
		}
	}
}

// TopK writes the len(idx) largest values of p (descending, ties to the lower index)
// and their indices. k is small (2 to 8), so repeated selection beats sorting and
// needs no scratch space.
func TopK(p []float32, idx []int32, val []float32) {
	for j := range idx {
		best := -1
		for i, v := range p {
			if taken(idx[:j], i) {
				continue
			}
			if best < 0 || v > p[best] {
				best = i
			}
		}
		idx[j] = int32(best)
		val[j] = p[best]
	}
}

func taken(idx []int32, i int) bool {
	for _, t := range idx {
		if int(t) == i {
			return true
		}
	}
	return false
}
