package bench

import (
	"github.com/mole-llm/mole/engine"
	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/quant"
)

// Traffic is what one decoded token costs in weights: the bytes read from the model
// (as stored, so a Q4_0 matrix counts its 18-byte blocks, not float32) and the
// multiply-adds of the matrix products. It covers attention, routers, the experts a
// token activates (NExpertUsed of each MoE layer, all of them the same size, plus a
// shared expert), dense FFNs, the output head, the one embedding row a token looks up
// and the norm and bias vectors. It leaves out the KV cache, whose reads grow with the
// position and are not weights: at the short contexts of a benchmark they are small.
type Traffic struct {
	Attention int64 `json:"attention"` // q, k, v, o projections
	Router    int64 `json:"router"`
	Experts   int64 `json:"experts"` // the activated routed experts and any shared expert
	DenseFFN  int64 `json:"dense_ffn"`
	Output    int64 `json:"output"`     // the output head
	Other     int64 `json:"other"`      // embedding row, norms, biases
	Bytes     int64 `json:"bytes"`      // the sum of the above
	MACs      int64 `json:"macs"`       // multiply-adds of the matrix products
	FloatMACs int64 `json:"float_macs"` // the part of MACs in matrices stored as F32, F16 or BF16 (float32 arithmetic)
	Params    int64 `json:"params"`     // every weight in the model
	Active    int64 `json:"active"`     // weights used by one token (an embedding row, not the table)
	FileBytes int64 `json:"file_size"`  // bytes of the weight tensors as stored
}

// TrafficOf counts a loaded model's per-token traffic from its matrices' actual dtypes,
// with MWQ experts read at their widest stored width.
func TrafficOf(m *engine.Model) Traffic { return TrafficAt(m, nil) }

// TrafficAt is TrafficOf with layer l's MWQ experts read at bits[l] bits (what
// engine.Model.SetExpertBits returns; a missing or 0 entry means the widest stored): a
// token reads an MWQ matrix's base and its first bits-b1 residual planes, while the file
// holds every plane.
func TrafficAt(m *engine.Model, bits []int) Traffic {
	var t Traffic
	c := &m.Config
	b1, maxBits, _ := m.MWQBits()
	layer := 0 // the layer mat and total are counting
	width := func() int {
		if layer < len(bits) && bits[layer] > 0 {
			return bits[layer]
		}
		return maxBits
	}
	mat := func(dst *int64, mm *engine.Matrix, times int) {
		if mm == nil {
			return
		}
		*dst += (int64(len(mm.Data)) + mwqPlaneBytes(mm, width()-b1) + moleSideBytes(mm)) * int64(times)
		t.MACs += int64(mm.Rows) * int64(mm.Cols) * int64(times)
		if floatDType(mm.DType) {
			t.FloatMACs += int64(mm.Rows) * int64(mm.Cols) * int64(times)
		}
		t.Active += int64(mm.Rows) * int64(mm.Cols) * int64(times)
	}
	// total counts a tensor that is stored (once) whether or not a token reads it.
	total := func(mm *engine.Matrix) {
		if mm != nil {
			t.Params += int64(mm.Rows) * int64(mm.Cols)
			t.FileBytes += int64(len(mm.Data)) + mwqPlaneBytes(mm, maxBits-b1)
		}
	}
	vec := func(v []float32) {
		t.Other += 4 * int64(len(v))
		t.Params += int64(len(v))
		t.FileBytes += 4 * int64(len(v))
		t.Active += int64(len(v))
	}
	t.Other += int64(m.Embed.RowBytes)
	t.Active += int64(m.Embed.Cols)
	total(m.Embed)
	vec(m.OutNorm)
	mat(&t.Output, m.Output, 1)
	if m.Output != m.Embed {
		total(m.Output)
	}
	for i := range m.Layers {
		layer = i
		L := &m.Layers[i]
		for _, v := range [][]float32{L.AttnNorm, L.FFNNorm, L.Bq, L.Bk, L.Bv, L.Bo, L.QNorm, L.KNorm} {
			vec(v)
		}
		for _, mm := range []*engine.Matrix{L.Wq, L.Wk, L.Wv, L.Wo} {
			mat(&t.Attention, mm, 1)
			total(mm)
		}
		for _, mm := range []*engine.Matrix{L.Gate, L.Up, L.Down} {
			mat(&t.DenseFFN, mm, 1)
			total(mm)
		}
		mat(&t.Router, L.Router, 1)
		total(L.Router)
		if len(L.ExpGate) > 0 {
			// Every expert of a layer has the same shape and dtype, so NExpertUsed
			// copies of expert 0 are what any choice of experts reads.
			for _, mm := range []*engine.Matrix{L.ExpGate[0], L.ExpUp[0], L.ExpDown[0]} {
				mat(&t.Experts, mm, c.NExpertUsed)
			}
			for e := range L.ExpGate {
				total(L.ExpGate[e])
				total(L.ExpUp[e])
				total(L.ExpDown[e])
			}
		}
		if lf := L.Latent; lf != nil {
			// MoLE: a token reads the bases of the groups its experts use (at most
			// NExpertUsed of them; one when every expert shares a basis) and the small
			// matrices of NExpertUsed experts.
			used := min(c.NExpertUsed, len(lf.GateIn))
			for _, mm := range []*engine.Matrix{lf.GateIn[0], lf.UpIn[0], lf.DownOut[0]} {
				mat(&t.Experts, mm, used)
			}
			for _, mm := range []*engine.Matrix{lf.ExpGate[0], lf.ExpUp[0], lf.ExpDown[0]} {
				mat(&t.Experts, mm, c.NExpertUsed)
			}
			shared, perExpert := lf.Matrices()
			for _, mm := range append(shared, perExpert...) {
				total(mm)
			}
		}
		for _, mm := range []*engine.Matrix{L.ShGate, L.ShUp, L.ShDown, L.ShGateInp} {
			mat(&t.Experts, mm, 1)
			total(mm)
		}
	}
	t.Bytes = t.Attention + t.Router + t.Experts + t.DenseFFN + t.Output + t.Other
	return t
}

// mwqPlaneBytes is the size of n residual planes of mm when it is an MWQ matrix (whose
// Data is its base only; rows stored padded to whole groups), 0 otherwise.
func mwqPlaneBytes(mm *engine.Matrix, n int) int64 {
	if (mm.DType != loader.MWQBase2 && mm.DType != loader.MWQBase5) || n <= 0 {
		return 0
	}
	return int64(n) * int64(mm.Rows) * int64(mm.DType.PaddedCols(mm.Cols)/kernels.MWQGroup) * kernels.MWQPlaneBlockBytes
}

// moleSideBytes is what a product with one of mole's int8 matrices reads besides its
// codes: 8 bytes per row (the float row scale and the int32 row sum) and, for MOLE_A8W4,
// the stored (z, S2) pair of each group of quant.GroupSize (2 bytes), which the table-free kernels
// read in place (kernels.GemvA8W4G; the 16-byte table each group maps to comes from a
// 32 KiB table of all pairs that stays in cache).
func moleSideBytes(mm *engine.Matrix) int64 {
	switch mm.DType {
	case loader.MoleQ8:
		return 8 * int64(mm.Rows)
	case loader.MoleA8W4:
		groups := int64((mm.DType.PaddedCols(mm.Cols) + quant.GroupSize - 1) / quant.GroupSize)
		return int64(mm.Rows) * (8 + 2*groups)
	}
	return 0
}

// floatDType reports whether matrices of dt multiply in float32 (every other type the
// engine supports runs through the int8 kernels).
func floatDType(dt loader.DType) bool {
	return dt == loader.F32 || dt == loader.F16 || dt == loader.BF16
}
