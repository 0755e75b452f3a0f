package quant

import "slices"

// SmoothFactors returns DGQ's percentile-clipping factors for one input (docs/algorithms.md
// §1) from each channel's activation abs-max a: the baseline is the value at the 99.5th
// percentile of channels, sorted(a)[len-int(C*0.005+1.5)], and a channel above it gets
// s_c = a_c / baseline (all others 1). The caller divides the channel's activations by
// s_c (folding 1/s_c into the preceding RMSNorm weight or up-projection row) and
// multiplies the matching weight column by s_c, so the product is unchanged while the
// per-token int8 activation scale no longer follows the outlier channels. It returns nil
// when nothing needs smoothing.
func SmoothFactors(a []float32) []float32 {
	c := len(a)
	k := int(float64(c)*0.005 + 1.5)
	if c == 0 || k > c {
		return nil
	}
	sorted := slices.Clone(a)
	slices.Sort(sorted)
	base := sorted[c-k]
	if !(base > 0) {
		return nil
	}
	var s []float32
	for i, v := range a {
		if v > base {
			if s == nil {
				s = make([]float32, c)
				for j := range s {
					s[j] = 1
				}
			}
			s[i] = v / base
		}
	}
	return s
}
