package kernels

// Softmax replaces x by softmax(x). On the SIMD paths rows shorter than
// SoftmaxCrossover() run three passes (max; exp(x-max) stored and summed; scale), which
// win while the row is in cache; longer rows run the two-pass algorithm, which reads x
// twice and writes it once instead of three reads and two writes. The generic path
// always runs three passes with a float64 exp.
//
// Special values (all paths and both algorithms): -inf elements become exactly 0; a NaN
// anywhere makes the whole row NaN; a row whose elements are all -inf (a fully masked
// attention row) becomes all NaN, 0/0, as in PyTorch; a +inf element makes the row NaN
// (inf-inf), as in PyTorch. An empty x is left alone.
func Softmax(x []float32) { softmaxImpl(x) }

// SoftmaxThreePass is the reference softmax: max, sum of exp(x-max) (SIMD: float32 lane
// sums per chunk of 64K elements, added in float64; generic: float64), scale by 1/sum.
// Subtracting the maximum keeps every exponent <= 0, so nothing overflows.
func SoftmaxThreePass(x []float32) { softmaxThreePassImpl(x) }

// SoftmaxTwoPass is the two-pass softmax of Dukhan & Ablavatski (arXiv 2001.04438,
// docs/algorithms.md §5): pass 1 accumulates sum e^x as (mantissa m, exponent e) pairs,
// e' = max(e, n), m = m*2^(e-e') + p*2^(n-e'), without a max pass; pass 2 recomputes
// e^x = p*2^n and writes p/m_sum * 2^(n-e_sum). Inputs are clamped to +-1e5 (so -inf
// weighs exactly 0); a row whose maximum lies beyond about +-99800, or that contains NaN
// or +inf, is handed to SoftmaxThreePass, so both functions give the same special-value
// results.
func SoftmaxTwoPass(x []float32) { softmaxTwoPassImpl(x) }
