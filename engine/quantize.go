package engine

import (
	"context"
	"fmt"
	"strings"
	"unsafe"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/quant"
)

// QuantizeOptions configures Quantize (mole quantize; docs/quant.md).
type QuantizeOptions struct {
	// Scheme is f16, q8 (A8W8), a8w4 (DGQ) or rtn4 (the round-to-nearest yardstick).
	// Other schemes (MWQ) are implemented by Encode.
	Scheme string
	// Router is the routers' type: F16 (the default) or Q8_0. Routers are never 4-bit.
	Router loader.DType
	// Calib is the tokenized calibration text (without BOS) and CalibName what the
	// metadata records for it ("builtin" or a file name).
	Calib     []int32
	CalibName string
	// Window is the calibration window in tokens (default min(256, context)).
	Window int
	// NoSmooth disables DGQ's outlier smoothing (for measuring its effect).
	NoSmooth bool
	// Smooth turns the smoothing on for schemes other than a8w4 and q8 (MWQ sets it:
	// its activations are int8 per token too).
	Smooth bool
	// DGQ tunes the a8w4 grid search.
	DGQ quant.DGQOptions
	// Encode, when set, is asked first for every weight matrix except routers and the
	// embedding (MWQ's experts); it returns nil to leave the matrix to Scheme.
	Encode func(name string, w []float32, rows, cols, expert int, st *quant.Stats) ([]EncodedTensor, error)
	// NeedCalib makes Quantize collect calibration statistics even when Scheme does not.
	NeedCalib bool
	// Meta is added to the file's metadata.
	Meta map[string]loader.Value
	// Progress, when set, is called with the stage ("calibrating", "quantizing") and
	// the work done and total in that stage.
	Progress func(stage string, done, total int64)
}

// QuantizeReport tells what Quantize did.
type QuantizeReport struct {
	CalibTokens      int // tokens run for calibration (0: none)
	SmoothedChannels int // input channels the smoothing rescaled
}

// Schemes lists the schemes Quantize implements itself.
var Schemes = []string{"f16", "q8", "a8w4", "rtn4"}

// Quantize writes m to path as a GGUF file in the given scheme (temporary file and
// rename: the file appears only when complete). Which tensors keep a higher precision:
// the token embedding is F16 (a lookup, no product to speed up); norms and biases F32;
// routers F16 or Q8_0 (Router); the output head MOLE_Q8 in the int8 schemes; every
// other projection (attention, dense, shared and routed experts) takes the scheme.
func Quantize(ctx context.Context, m *Model, path string, o QuantizeOptions) (*QuantizeReport, error) {
	switch o.Scheme {
	case "f16", "q8", "a8w4", "rtn4":
	default:
		if o.Encode == nil {
			return nil, fmt.Errorf("quantize: unknown scheme %q (have %v)", o.Scheme, Schemes)
		}
	}
	if o.Router == 0 {
		o.Router = loader.F16
	}
	if o.Router != loader.F16 && o.Router != loader.Q8_0 && o.Router != loader.F32 {
		return nil, fmt.Errorf("quantize: routers stay at 8 bits or float, not %v", o.Router)
	}
	rep := &QuantizeReport{}
	fm, err := m.CloneF32()
	if err != nil {
		return nil, err
	}
	defer fm.Close()
	var cal *Calibration
	if o.Scheme == "a8w4" || o.Scheme == "q8" || o.NeedCalib {
		if len(o.Calib) == 0 {
			return nil, fmt.Errorf("quantize: scheme %s needs calibration text", o.Scheme)
		}
		if o.Progress != nil {
			o.Progress("calibrating", 0, int64(len(o.Calib)))
		}
		if cal, err = fm.CollectCalibration(ctx, o.Calib, o.Window); err != nil {
			return nil, err
		}
		rep.CalibTokens = cal.Tokens
		if o.Progress != nil {
			o.Progress("calibrating", int64(len(o.Calib)), int64(len(o.Calib)))
		}
		if (o.Scheme == "a8w4" || o.Scheme == "q8" || o.Smooth) && !o.NoSmooth {
			rep.SmoothedChannels = fm.smooth(cal)
		}
	}
	meta := map[string]loader.Value{
		"mole.quant.scheme":     loader.StringValue(o.Scheme),
		"mole.quant.group_size": loader.Uint32Value(quant.GroupSize),
		"mole.quant.router":     loader.StringValue(strings.ToLower(routerName(o.Router))),
	}
	if cal != nil {
		meta["mole.quant.calibration"] = loader.StringValue(o.CalibName)
		meta["mole.quant.calibration_tokens"] = loader.Uint32Value(uint32(cal.Tokens))
		meta["mole.quant.smoothed_channels"] = loader.Uint32Value(uint32(rep.SmoothedChannels))
	}
	for k, v := range o.Meta {
		meta[k] = v
	}
	g := GGUFOptions{DType: loader.F16, Router: o.Router, Meta: meta}
	if o.Progress != nil {
		g.Progress = func(done, total int64) { o.Progress("quantizing", done, total) }
	}
	g.Encode = func(name string, w []float32, rows, cols, expert int) ([]EncodedTensor, error) {
		if name == "token_embd.weight" {
			return nil, nil
		}
		var st *quant.Stats
		if cal != nil {
			st = cal.Stats(name, expert)
		}
		if o.Encode != nil {
			if ts, err := o.Encode(name, w, rows, cols, expert, st); ts != nil || err != nil {
				return ts, err
			}
		}
		scheme := o.Scheme
		if name == "output.weight" && scheme != "f16" {
			scheme = "q8"
		}
		switch scheme {
		case "q8":
			return encodeQ8(w, rows, cols), nil
		case "a8w4":
			return encodeA8W4(quant.QuantizeDGQ(w, rows, cols, st, o.DGQ)), nil
		case "rtn4":
			pc := loader.MoleRTN4.PaddedCols(cols)
			return []EncodedTensor{{DType: loader.MoleRTN4, Shape: []int{rows, pc}, Data: quant.QuantizeRTN4(w, rows, cols)}}, nil
		}
		return nil, nil
	}
	if o.Scheme == "f16" && o.Encode == nil {
		g.Encode = nil
		g.Meta = meta
	}
	return rep, WriteGGUFWith(fm, path, g)
}

func routerName(d loader.DType) string {
	if d == loader.Q8_0 {
		return "q8"
	}
	return d.String()
}

// EncodeQ8 returns the MOLE_Q8 tensors of w (the matrix and its ".scale").
func encodeQ8(w []float32, rows, cols int) []EncodedTensor {
	q := quant.QuantizeQ8(w, rows, cols)
	return []EncodedTensor{
		{DType: loader.MoleQ8, Shape: []int{rows, q.PadCols}, Data: unsafe.Slice((*byte)(unsafe.Pointer(&q.Q[0])), len(q.Q))},
		{Suffix: ".scale", DType: loader.F32, Shape: []int{rows}, Data: kernels.QuantizeF32(nil, q.Scale)},
	}
}

// EncodeQ8 is exported for other quantizers' fallbacks (MWQ keeps non-expert matrices
// in MOLE_Q8).
func EncodeQ8(w []float32, rows, cols int) []EncodedTensor { return encodeQ8(w, rows, cols) }

func encodeA8W4(q *quant.A8W4) []EncodedTensor {
	return []EncodedTensor{
		{DType: loader.MoleA8W4, Shape: []int{q.Rows, q.PadCols}, Data: q.Codes},
		{Suffix: ".group", DType: loader.I8, Shape: []int{q.Rows, 2 * q.Groups}, Data: unsafe.Slice((*byte)(unsafe.Pointer(&q.Group[0])), len(q.Group))},
		{Suffix: ".scale", DType: loader.F32, Shape: []int{q.Rows}, Data: kernels.QuantizeF32(nil, q.Scale)},
	}
}

// CloneF32 returns a copy of m with every matrix and vector in float32 on the heap (the
// quantizers' input, which smoothing may modify), on its own worker pool.
func (m *Model) CloneF32() (*Model, error) {
	n := &Model{Config: m.Config, Tok: m.Tok, src: m.src, pool: NewPool(0)}
	var err error
	cl := func(mm *Matrix) *Matrix {
		if mm == nil || err != nil {
			return nil
		}
		data := make([]byte, mm.Rows*mm.Cols*4)
		f := unsafe.Slice((*float32)(unsafe.Pointer(&data[0])), mm.Rows*mm.Cols)
		for r := 0; r < mm.Rows; r++ {
			mm.RowF32(r, f[r*mm.Cols:(r+1)*mm.Cols])
		}
		var c *Matrix
		c, err = newMatrix(mm.Name, loader.F32, mm.Rows, mm.Cols, data)
		return c
	}
	cls := func(ms []*Matrix) []*Matrix {
		if ms == nil {
			return nil
		}
		out := make([]*Matrix, len(ms))
		for i, mm := range ms {
			out[i] = cl(mm)
		}
		return out
	}
	vc := func(v []float32) []float32 { return append([]float32(nil), v...) }
	n.Embed = cl(m.Embed)
	n.OutNorm = vc(m.OutNorm)
	if m.Output == m.Embed {
		n.Output = n.Embed
	} else {
		n.Output = cl(m.Output)
	}
	n.Layers = make([]Layer, len(m.Layers))
	for l := range m.Layers {
		L, N := &m.Layers[l], &n.Layers[l]
		N.AttnNorm, N.FFNNorm, N.QNorm, N.KNorm = vc(L.AttnNorm), vc(L.FFNNorm), vc(L.QNorm), vc(L.KNorm)
		N.Bq, N.Bk, N.Bv, N.Bo = vc(L.Bq), vc(L.Bk), vc(L.Bv), vc(L.Bo)
		N.Wq, N.Wk, N.Wv, N.Wo = cl(L.Wq), cl(L.Wk), cl(L.Wv), cl(L.Wo)
		N.Gate, N.Up, N.Down, N.Router = cl(L.Gate), cl(L.Up), cl(L.Down), cl(L.Router)
		N.ExpGate, N.ExpUp, N.ExpDown = cls(L.ExpGate), cls(L.ExpUp), cls(L.ExpDown)
		N.ShGate, N.ShUp, N.ShDown, N.ShGateInp = cl(L.ShGate), cl(L.ShUp), cl(L.ShDown), cl(L.ShGateInp)
	}
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// f32 is the float32 view of a CloneF32 matrix.
func (mm *Matrix) f32() []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(&mm.Data[0])), mm.Rows*mm.Cols)
}

func scaleCols(mm *Matrix, s []float32) {
	if mm == nil {
		return
	}
	w := mm.f32()
	for r := 0; r < mm.Rows; r++ {
		row := w[r*mm.Cols : (r+1)*mm.Cols]
		for c := range row {
			row[c] *= s[c]
		}
	}
}

// divRows divides row c of mm by s[c].
func divRows(mm *Matrix, s []float32) {
	w := mm.f32()
	for r := 0; r < mm.Rows; r++ {
		if s[r] != 1 {
			row := w[r*mm.Cols : (r+1)*mm.Cols]
			for c := range row {
				row[c] /= s[r]
			}
		}
	}
}

func divVec(v, s []float32) {
	for c := range v {
		v[c] /= s[c]
	}
}

func countSmoothed(s []float32) int {
	n := 0
	for _, v := range s {
		if v != 1 {
			n++
		}
	}
	return n
}

// smooth applies DGQ's percentile clipping (quant.SmoothFactors) to a CloneF32 model and
// rescales the statistics to match; it returns the number of channels rescaled. The
// division of an input channel is folded into the weights that produce it: the RMSNorm
// weight for the attention and FFN inputs (and so the router's and shared expert's
// columns are multiplied too), the up-projection row for a down projection's input
// (with SwiGLU, h = silu(gate x) * (up x) is linear in each up row). The attention
// output projection is not smoothed: its input channels come from V through the
// attention average, shared by several query heads under GQA.
func (m *Model) smooth(cal *Calibration) int {
	n := 0
	for l := range m.Layers {
		L, lc := &m.Layers[l], &cal.Layers[l]
		if s := quant.SmoothFactors(lc.Attn.AbsMax); s != nil {
			n += countSmoothed(s)
			divVec(L.AttnNorm, s)
			scaleCols(L.Wq, s)
			scaleCols(L.Wk, s)
			scaleCols(L.Wv, s)
			lc.Attn = lc.Attn.Scaled(s)
		}
		if s := quant.SmoothFactors(lc.FFN.AbsMax); s != nil {
			n += countSmoothed(s)
			divVec(L.FFNNorm, s)
			for _, mm := range []*Matrix{L.Router, L.Gate, L.Up, L.ShGate, L.ShUp, L.ShGateInp} {
				scaleCols(mm, s)
			}
			for e := range L.ExpGate {
				scaleCols(L.ExpGate[e], s)
				scaleCols(L.ExpUp[e], s)
				lc.ExpFFN[e] = lc.ExpFFN[e].Scaled(s)
			}
			lc.FFN = lc.FFN.Scaled(s)
		}
		down := func(up, dn *Matrix, st **quant.Stats) {
			if up == nil || *st == nil {
				return
			}
			if s := quant.SmoothFactors((*st).AbsMax); s != nil {
				n += countSmoothed(s)
				divRows(up, s)
				scaleCols(dn, s)
				*st = (*st).Scaled(s)
			}
		}
		down(L.Up, L.Down, &lc.Down)
		down(L.ShUp, L.ShDown, &lc.ShDown)
		for e := range L.ExpUp {
			down(L.ExpUp[e], L.ExpDown[e], &lc.ExpDown[e])
		}
	}
	return n
}
