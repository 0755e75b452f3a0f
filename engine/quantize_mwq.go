package engine

import (
	"fmt"
	"regexp"

	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/quant"
)

// MWQ schemes of Quantize (docs/quant.md "MWQ"). Routed experts get an MWQ
// base plus residual planes (one tensor per plane, "<name>.mwq<k>"); every other
// projection (attention, dense and shared FFN) is MOLE_Q8, like the int8 schemes' output
// head, so an MWQ model runs on one activation encoding (per-token int8) and differs
// from the q8 model only in its experts. Embedding F16, routers per Router, norms F32
// (Quantize decides those).

// MWQSchemes maps the scheme names to their widths and fit. mwq24 weighs its 4-bit
// error twice in the search (WideWeight 2): with equal weights 4 bits measured 1.0108x
// float32 on kjv-moe, above the 1.01 bound, with 2 bits at 1.062 (bound 1.08); with 2,
// 1.0078 and 1.066 (docs/quant.md).
var MWQSchemes = map[string]quant.MWQConfig{
	"mwq24": {BaseBits: 2, MaxBits: 4, GPTQ: true, GPTQPlanes: true, WideWeight: 2},
	"mwq58": {BaseBits: 5, MaxBits: 8, GPTQ: true, GPTQPlanes: true},
}

// mwqExpertName matches the stacked and the per-expert tensor names of routed experts.
var mwqExpertName = regexp.MustCompile(`^blk\.\d+\.ffn_(gate|up|down)(_exps|\.\d+)\.weight$`)

// SetMWQ configures o for MWQ scheme (mwq24 or mwq58): calibration on, the metadata and
// the encoder. It reports false for other schemes.
func SetMWQ(o *QuantizeOptions, scheme string) (bool, error) {
	cfg, ok := MWQSchemes[scheme]
	if !ok {
		return false, nil
	}
	baseDT, err := quant.MWQBaseDType(cfg.BaseBits)
	if err != nil {
		return true, err
	}
	o.Scheme = scheme
	o.NeedCalib = true
	// Activations are int8 per token, as in q8 and a8w4: DGQ's outlier smoothing halves
	// their rounding error on kjv-moe (docs/quant.md), and it is folded into the float
	// weights before the MWQ fit sees them.
	o.Smooth = true
	if o.Meta == nil {
		o.Meta = map[string]loader.Value{}
	}
	o.Meta["mole.mwq.base_bits"] = loader.Uint32Value(uint32(cfg.BaseBits))
	o.Meta["mole.mwq.max_bits"] = loader.Uint32Value(uint32(cfg.MaxBits))
	o.Encode = func(name string, w []float32, rows, cols, expert int, st *quant.Stats) ([]EncodedTensor, error) {
		if pc := quant.MWQPadCols(cols); !mwqExpertName.MatchString(name) || pc != cols && pc > mwqPadMaxCols {
			// (Padded rows wider than the engine's stack copy of a padded input stay
			// MOLE_Q8, so that every file written loads.)
			return EncodeQ8(w, rows, cols), nil
		}
		var H []float64
		if st != nil && st.Tokens > 0 {
			H = st.Gram
		}
		q, err := quant.QuantizeMWQ(w, rows, cols, H, cfg)
		if err != nil {
			return nil, err
		}
		// Rows whose width is not a multiple of 128 are stored padded to the next one,
		// like the other mole types (docs/format.md "Row padding").
		ts := []EncodedTensor{{DType: baseDT, Shape: []int{rows, q.PadCols}, Data: q.Base}}
		for i, p := range q.Planes {
			ts = append(ts, EncodedTensor{Suffix: fmt.Sprintf(".mwq%d", cfg.BaseBits+1+i), DType: loader.MWQPlane, Shape: []int{rows, q.PadCols}, Data: p})
		}
		return ts, nil
	}
	return true, nil
}
