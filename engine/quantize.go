package engine

import (
	"context"
	"fmt"
	"runtime"
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
// other projection (attention, dense, shared and routed experts, MoLE's latent
// factors) takes the scheme.
//
// Schemes that need calibration go block by block (quantizeBlocks): one block at a time
// is copied to float32, its inputs' statistics are collected by running the calibration
// tokens through it (their residual stream is kept between blocks), the block is
// smoothed and encoded, and its copy and statistics are dropped before the next block.
// Memory: one block's float32 weights and statistics, the calibration tokens' residual
// stream and the encoded output, instead of the whole model's.
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
	// The temporary file is created before any work, so that an unwritable destination
	// fails now rather than after the calibration and quantization.
	out, err := loader.CreateAtomic(ctx, path)
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	rep := &QuantizeReport{}
	meta := map[string]loader.Value{
		"mole.quant.scheme":     loader.StringValue(o.Scheme),
		"mole.quant.group_size": loader.Uint32Value(quant.GroupSize),
		"mole.quant.router":     loader.StringValue(strings.ToLower(routerName(o.Router))),
	}
	g := GGUFOptions{DType: loader.F16, Router: o.Router, Meta: meta}
	encode := func(name string, w []float32, rows, cols, expert int, st *quant.Stats) ([]EncodedTensor, error) {
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
	if !(o.Scheme == "a8w4" || o.Scheme == "q8" || o.NeedCalib) {
		// No statistics and no smoothing: the writer hands each matrix of m over as
		// float32, so nothing is copied.
		for k, v := range o.Meta {
			meta[k] = v
		}
		if o.Progress != nil {
			g.Progress = func(done, total int64) { o.Progress("quantizing", done, total) }
		}
		if o.Scheme != "f16" || o.Encode != nil {
			g.Encode = func(name string, w []float32, rows, cols, expert int) ([]EncodedTensor, error) {
				if name == "token_embd.weight" {
					return nil, nil
				}
				return encode(name, w, rows, cols, expert, nil)
			}
		}
		if err := WriteGGUFTo(ctx, m, out, g); err != nil {
			return nil, err
		}
		return rep, out.Commit()
	}
	if len(o.Calib) == 0 {
		return nil, fmt.Errorf("quantize: scheme %s needs calibration text", o.Scheme)
	}
	smooth := (o.Scheme == "a8w4" || o.Scheme == "q8" || o.Smooth) && !o.NoSmooth
	wm, pre, outSt, err := quantizeBlocks(ctx, m, o, smooth, encode, rep)
	if err != nil {
		return nil, err
	}
	meta["mole.quant.calibration"] = loader.StringValue(o.CalibName)
	meta["mole.quant.calibration_tokens"] = loader.Uint32Value(uint32(rep.CalibTokens))
	meta["mole.quant.smoothed_channels"] = loader.Uint32Value(uint32(rep.SmoothedChannels))
	for k, v := range o.Meta {
		meta[k] = v
	}
	if o.Progress != nil {
		g.Progress = func(done, total int64) { o.Progress("writing", done, total) }
	}
	// The writer reads the unsmoothed matrices of m but takes each block's encoding
	// from pre; wm carries the smoothed norms and routers, which it writes itself.
	g.Encode = func(name string, w []float32, rows, cols, expert int) ([]EncodedTensor, error) {
		if name == "token_embd.weight" {
			return nil, nil
		}
		k := preKey(name, expert)
		if ts, ok := pre[k]; ok {
			delete(pre, k)
			return ts, nil
		}
		if name == "output.weight" {
			return encode(name, w, rows, cols, expert, outSt)
		}
		return nil, fmt.Errorf("quantize: %s (expert %d) was not encoded with its block", name, expert)
	}
	if err := WriteGGUFTo(ctx, wm, out, g); err != nil {
		return nil, err
	}
	for k := range pre { // checked before the commit: a file missing tensors is never published
		return nil, fmt.Errorf("quantize: the writer never asked for %s", k)
	}
	return rep, out.Commit()
}

func preKey(name string, expert int) string { return fmt.Sprintf("%s#%d", name, expert) }

// quantizeBlocks encodes every block's matrices, one block at a time (see Quantize). It
// returns the model the writer reads (m with the smoothed norms and routers), the
// encoded matrices by preKey, and the output head's input statistics.
func quantizeBlocks(ctx context.Context, m *Model, o QuantizeOptions, smooth bool,
	encode func(name string, w []float32, rows, cols, expert int, st *quant.Stats) ([]EncodedTensor, error),
	rep *QuantizeReport) (*Model, map[string][]EncodedTensor, *quant.Stats, error) {
	c := &m.Config
	pool := NewPool(0)
	defer pool.Close()
	run := newCalibRun(m, o.Calib, o.Window, pool)
	rep.CalibTokens = run.tokens
	wm := &Model{Config: m.Config, Tok: m.Tok, Embed: m.Embed, OutNorm: m.OutNorm, Output: m.Output,
		Layers: append([]Layer(nil), m.Layers...), src: m.src, act: m.act}
	pre := map[string][]EncodedTensor{}
	var total, done int64
	for l := range m.Layers {
		total += blockWeights(&m.Layers[l])
	}
	// The writer's q/k row order (WriteGGUFTo): the family's llama.cpp permutation.
	permute := false
	if fam := familyByName(c.Family); fam != nil {
		permute = fam.ggufPermuteQK && c.RopeNeoX
	}
	block := func(l int) error {
		L, err := cloneLayerF32(&m.Layers[l])
		if err != nil {
			return err
		}
		lc := newLayerCalib(L, c)
		if o.Progress != nil {
			stage := fmt.Sprintf("calibrating block %d/%d", l+1, len(m.Layers))
			run.progress = func(d, t int64) { o.Progress(stage, d, t) }
		}
		if err := run.layer(ctx, L, lc); err != nil {
			return err
		}
		lc.finish()
		if smooth {
			rep.SmoothedChannels += smoothLayer(L, lc)
		}
		W := &wm.Layers[l]
		W.AttnNorm, W.FFNNorm, W.Router, W.ShGateInp = L.AttnNorm, L.FFNNorm, L.Router, L.ShGateInp
		for _, bm := range blockMatrices(L, l, permute, c.HeadDim) {
			for e, mm := range bm.ms {
				if err := ctx.Err(); err != nil {
					return err
				}
				ex := -1
				if bm.stacked {
					ex = e
				}
				w := mm.f32()
				if bm.perm != nil {
					w = make([]float32, mm.Rows*mm.Cols)
					for r := 0; r < mm.Rows; r++ {
						mm.RowF32(bm.perm(r), w[r*mm.Cols:(r+1)*mm.Cols])
					}
				}
				ts, err := encode(bm.name, w, mm.Rows, mm.Cols, ex, lc.stats(strings.TrimPrefix(bm.name, fmt.Sprintf("blk.%d.", l)), ex))
				if err != nil {
					return fmt.Errorf("%s: %w", bm.name, err)
				}
				if ts == nil { // left to the writer's type: F16 of the smoothed weights
					ts = []EncodedTensor{{DType: loader.F16, Shape: []int{mm.Rows, mm.Cols}, Data: kernels.QuantizeF16(nil, w)}}
				}
				pre[preKey(bm.name, ex)] = ts
				done += int64(mm.Rows) * int64(mm.Cols)
				if o.Progress != nil {
					o.Progress(fmt.Sprintf("quantizing block %d/%d", l+1, len(m.Layers)), done, total)
				}
			}
		}
		return nil
	}
	for l := range m.Layers {
		if err := block(l); err != nil {
			return nil, nil, nil, err
		}
		// The block's float32 copy and statistics are garbage now; collecting them here
		// lets the next block reuse their memory instead of growing the heap to twice
		// its live size first (a block of an OLMoE-sized model holds gigabytes).
		runtime.GC()
	}
	outSt := quant.NewStats(c.NEmbd)
	run.output(m.OutNorm, outSt)
	outSt.Finish()
	return wm, pre, outSt, nil
}

// blockMatrix is one weight tensor of a block as the GGUF writer writes it: its name,
// its matrices (several for a stacked tensor), the writer's row order (q and k of
// llama-architecture files) and whether the writer passes expert indices.
type blockMatrix struct {
	name    string
	ms      []*Matrix
	perm    func(int) int
	stacked bool
}

// blockMatrices lists the matrices of block l that WriteGGUFWith passes to an encoder
// (every one but the router), in its order and with its names.
func blockMatrices(L *Layer, l int, permute bool, headDim int) []blockMatrix {
	n := func(s string) string { return fmt.Sprintf("blk.%d.%s", l, s) }
	var out []blockMatrix
	add := func(name string, perm func(int) int, ms ...*Matrix) {
		if len(ms) == 0 || ms[0] == nil {
			return
		}
		out = append(out, blockMatrix{name, ms, perm, len(ms) > 1 || strings.HasSuffix(name, "_exps.weight")})
	}
	var qPerm, kPerm func(int) int
	if permute {
		qPerm, kPerm = interleavePerm(headDim), interleavePerm(headDim)
	}
	add(n("attn_q.weight"), qPerm, L.Wq)
	add(n("attn_k.weight"), kPerm, L.Wk)
	add(n("attn_v.weight"), nil, L.Wv)
	add(n("attn_output.weight"), nil, L.Wo)
	if L.Router == nil {
		add(n("ffn_gate.weight"), nil, L.Gate)
		add(n("ffn_up.weight"), nil, L.Up)
		add(n("ffn_down.weight"), nil, L.Down)
		return out
	}
	if L.Latent != nil {
		for _, t := range L.Latent.latentTensors(l) {
			add(t.name, nil, t.ms...)
		}
	} else {
		add(n("ffn_gate_exps.weight"), nil, L.ExpGate...)
		add(n("ffn_up_exps.weight"), nil, L.ExpUp...)
		add(n("ffn_down_exps.weight"), nil, L.ExpDown...)
	}
	add(n("ffn_gate_shexp.weight"), nil, L.ShGate)
	add(n("ffn_up_shexp.weight"), nil, L.ShUp)
	add(n("ffn_down_shexp.weight"), nil, L.ShDown)
	return out
}

// blockWeights counts the weights of a block's encoded matrices (progress).
func blockWeights(L *Layer) int64 {
	var n int64
	for _, bm := range blockMatrices(L, 0, false, 1) {
		for _, mm := range bm.ms {
			n += int64(mm.Rows) * int64(mm.Cols)
		}
	}
	return n
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
	n.Embed, err = cloneMatrixF32(m.Embed, err)
	n.OutNorm = append([]float32(nil), m.OutNorm...)
	if m.Output == m.Embed {
		n.Output = n.Embed
	} else {
		n.Output, err = cloneMatrixF32(m.Output, err)
	}
	n.Layers = make([]Layer, len(m.Layers))
	for l := range m.Layers {
		if err == nil {
			var L *Layer
			if L, err = cloneLayerF32(&m.Layers[l]); err == nil {
				n.Layers[l] = *L
			}
		}
	}
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// cloneMatrixF32 returns mm in float32 on the heap (nil for nil, or when err is set).
func cloneMatrixF32(mm *Matrix, err error) (*Matrix, error) {
	if mm == nil || err != nil {
		return nil, err
	}
	data := make([]byte, mm.Rows*mm.Cols*4)
	f := unsafe.Slice((*float32)(unsafe.Pointer(&data[0])), mm.Rows*mm.Cols)
	for r := 0; r < mm.Rows; r++ {
		mm.RowF32(r, f[r*mm.Cols:(r+1)*mm.Cols])
	}
	return newMatrix(mm.Name, loader.F32, mm.Rows, mm.Cols, data)
}

// cloneLayerF32 returns a copy of block L with every matrix (MoLE's latent factors
// included) and vector in float32 on the heap.
func cloneLayerF32(L *Layer) (*Layer, error) {
	var err error
	cl := func(mm *Matrix) *Matrix {
		var c *Matrix
		c, err = cloneMatrixF32(mm, err)
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
	N := &Layer{}
	N.AttnNorm, N.FFNNorm, N.QNorm, N.KNorm = vc(L.AttnNorm), vc(L.FFNNorm), vc(L.QNorm), vc(L.KNorm)
	N.Bq, N.Bk, N.Bv, N.Bo = vc(L.Bq), vc(L.Bk), vc(L.Bv), vc(L.Bo)
	N.Wq, N.Wk, N.Wv, N.Wo = cl(L.Wq), cl(L.Wk), cl(L.Wv), cl(L.Wo)
	N.Gate, N.Up, N.Down, N.Router = cl(L.Gate), cl(L.Up), cl(L.Down), cl(L.Router)
	N.ExpGate, N.ExpUp, N.ExpDown = cls(L.ExpGate), cls(L.ExpUp), cls(L.ExpDown)
	N.ShGate, N.ShUp, N.ShDown, N.ShGateInp = cl(L.ShGate), cl(L.ShUp), cl(L.ShDown), cl(L.ShGateInp)
	if lf := L.Latent; lf != nil {
		N.Latent = &LatentFFN{GroupOf: append([]int(nil), lf.GroupOf...), Method: lf.Method, RankG: lf.RankG, RankU: lf.RankU, RD: lf.RD,
			GateIn: cls(lf.GateIn), UpIn: cls(lf.UpIn), DownOut: cls(lf.DownOut),
			ExpGate: cls(lf.ExpGate), ExpUp: cls(lf.ExpUp), ExpDown: cls(lf.ExpDown)}
	}
	return N, err
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

// smoothLayer applies DGQ's percentile clipping (quant.SmoothFactors) to a block copied
// by cloneLayerF32 and rescales its statistics to match; it returns the number of
// channels rescaled. The division of an input channel is folded into the weights that
// produce it: the RMSNorm weight for the attention and FFN inputs (and so the router's
// and shared expert's columns are multiplied too), the up-projection row for a down
// projection's input (with SwiGLU, h = silu(gate x) * (up x) is linear in each up row).
// The attention output projection is not smoothed: its input channels come from V
// through the attention average, shared by several query heads under GQA.
//
// A latent (MoLE) block has three more int8 inputs, each smoothed the same way: z = B x
// (a channel of z is a row of B; its column in every A_e of the group is multiplied),
// the down input h of each expert (a row of A_up, a column of D_e), and y, the weighted
// sum of the experts' D_e h_e (a row of every D_e of the group, a column of C).
func smoothLayer(L *Layer, lc *LayerCalib) int {
	n := 0
	if s := quant.SmoothFactors(lc.Attn.AbsMax); s != nil {
		n += countSmoothed(s)
		divVec(L.AttnNorm, s)
		scaleCols(L.Wq, s)
		scaleCols(L.Wk, s)
		scaleCols(L.Wv, s)
		lc.Attn = lc.Attn.Scaled(s)
	}
	lf := L.Latent
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
		old := lc.FFN
		lc.FFN = lc.FFN.Scaled(s)
		if lf != nil {
			for g := range lf.GateIn {
				scaleCols(lf.GateIn[g], s)
				scaleCols(lf.UpIn[g], s)
				if lc.LatIn[g] == old {
					lc.LatIn[g] = lc.FFN
				} else {
					lc.LatIn[g] = lc.LatIn[g].Scaled(s)
				}
			}
		}
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
	if lf == nil {
		return n
	}
	for e := range lf.ExpUp { // h = silu(A_gate z) * (A_up z): linear in each row of A_up
		down(lf.ExpUp[e], lf.ExpDown[e], &lc.ExpDown[e])
	}
	for g := range lf.GateIn {
		var members []int
		for e, ge := range lf.GroupOf {
			if ge == g {
				members = append(members, e)
			}
		}
		// z channels are shared by the group's experts: their abs-max is the largest
		// over the tokens of every member.
		groupMax := func(st []*quant.Stats) []float32 {
			a := append([]float32(nil), st[members[0]].AbsMax...)
			for _, e := range members[1:] {
				for i, v := range st[e].AbsMax {
					a[i] = max(a[i], v)
				}
			}
			return a
		}
		for _, z := range []struct {
			b  *Matrix
			as []*Matrix
			st []*quant.Stats
		}{{lf.GateIn[g], lf.ExpGate, lc.LatZGate}, {lf.UpIn[g], lf.ExpUp, lc.LatZUp}} {
			if s := quant.SmoothFactors(groupMax(z.st)); s != nil {
				n += countSmoothed(s)
				divRows(z.b, s)
				for _, e := range members {
					scaleCols(z.as[e], s)
					z.st[e] = z.st[e].Scaled(s)
				}
			}
		}
		if s := quant.SmoothFactors(lc.LatY[g].AbsMax); s != nil {
			n += countSmoothed(s)
			for _, e := range members {
				divRows(lf.ExpDown[e], s)
			}
			scaleCols(lf.DownOut[g], s)
			lc.LatY[g] = lc.LatY[g].Scaled(s)
		}
	}
	return n
}
