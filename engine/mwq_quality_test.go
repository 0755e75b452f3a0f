package engine

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/quant"
)

// mwqCalibSeqs samples n sequences of l tokens from m at temperature 1 (no truncation):
// in-domain calibration text that shares nothing with heldout.txt but the model.
func mwqCalibSeqs(m *Model, n, l int, seed uint64) [][]int32 {
	s := m.NewState(l)
	sm := NewSampler(m.Config.Vocab, l, SamplerOptions{Temperature: 1, Seed: seed})
	var out [][]int32
	for range n {
		seq := []int32{m.Tok.BOS()}
		for pos := 0; len(seq) < l; pos++ {
			logits := s.Forward(seq[pos], pos)
			seq = append(seq, sm.Sample(logits))
		}
		out = append(out, seq)
	}
	return out
}

// writeFakeMWQ writes m with its routed experts as mwq24 tensors of random bits (sane
// f16 scales) and everything else as Quantize's q8 fallback: a valid MWQ file in
// seconds, for tests about which bytes are read rather than about quality.
func writeFakeMWQ(t testing.TB, m *Model, path string) {
	t.Helper()
	o := QuantizeOptions{}
	if _, err := SetMWQ(&o, "mwq24"); err != nil {
		t.Fatal(err)
	}
	o.NeedCalib = false
	enc := o.Encode
	seed := uint32(1)
	o.Encode = func(name string, w []float32, rows, cols, expert int, st *quant.Stats) ([]EncodedTensor, error) {
		ts, err := enc("", w, rows, cols, expert, st) // not an expert name: the q8 fallback
		if !mwqExpertName.MatchString(name) {
			return ts, err
		}
		rnd := func(n, hdr int, scale, zero uint16) []byte {
			b := make([]byte, n)
			for i := range b {
				seed = seed*1664525 + 1013904223
				b[i] = byte(seed >> 24)
			}
			for o := 0; o < n; o += hdr {
				b[o], b[o+1] = byte(scale), byte(scale>>8)
				if zero != 0 {
					b[o+2], b[o+3] = byte(zero), byte(zero>>8)
				}
			}
			return b
		}
		nb := rows * cols / quant.MWQGroup
		bb := quant.MWQBaseBlockBytes(2)
		return []EncodedTensor{
			{DType: loader.MWQBase2, Shape: []int{rows, cols}, Data: rnd(nb*bb, bb, 0x1400, 0x3e00)}, // s1 = 0.001, z = 1.5
			{Suffix: ".mwq3", DType: loader.MWQPlane, Shape: []int{rows, cols}, Data: rnd(nb*quant.MWQPlaneBlockBytes, quant.MWQPlaneBlockBytes, 0x0c00, 0)},
			{Suffix: ".mwq4", DType: loader.MWQPlane, Shape: []int{rows, cols}, Data: rnd(nb*quant.MWQPlaneBlockBytes, quant.MWQPlaneBlockBytes, 0x0800, 0)},
		}, nil
	}
	if _, err := Quantize(context.Background(), m, path, o); err != nil {
		t.Fatal(err)
	}
}

// TestMWQPerplexity quantises kjv-moe's experts with MWQ (mwq24 and mwq58, scales fitted
// to output error, calibrated on the built-in text as mole quantize does) and checks the perplexity of heldout.txt
// (windows of 256) against float32 at the widths of the table in
// docs/quantization-quality.md: its bounds, and perplexity falling as bits rise. MOLE_MWQ_KEEP=DIR keeps the files.
//
// Each scheme is a subtest. The fit costs most of the time (mwq58's three planes about
// twice mwq24's two), so `go test ./...` quantises mwq24 only (three widths of the table,
// their bounds and their order) and mwq58 runs with MOLE_QUALITY=1; mwq58's fit on real
// weights is still scored by default in TestMWQStories260K (5 and 8 bits).
func TestMWQPerplexity(t *testing.T) {
	if testing.Short() {
		t.Skip("quantises a model and scores it: not in -short")
	}
	// The whole file with MOLE_QUALITY=1 (on a subset the int8 activations' rounding noise
	// is about twice as large, docs/quant.md), where the bounds are asserted; by
	// default a subset (heldoutWindows) with looser bounds that a broken plane or scale
	// still fails, and the fall of perplexity with width.
	windows := heldoutWindows()
	fm := loadDefaultModel(t)
	ids := heldoutIDs(t, fm)
	ppl := func(t *testing.T, m *Model) float64 {
		r, err := m.Perplexity(context.Background(), m.NewState(256), ids, PerplexityOptions{Window: 256, MaxWindows: windows})
		if err != nil {
			t.Fatal(err)
		}
		return r.Perplexity
	}
	t0 := time.Now()
	base := ppl(t, fm)
	t.Logf("float32: perplexity %.4f (%d windows, %v)", base, windows, time.Since(t0).Round(time.Second))
	// Calibration as `mole quantize` does it: the built-in text by default, or
	// (MOLE_MWQ_CALIB=sampled) 16 x 256 tokens sampled from the float model itself.
	calib, calibName := fm.Tok.Encode(quant.BuiltinCalibration, false, false), "builtin"
	if os.Getenv("MOLE_MWQ_CALIB") == "sampled" {
		calib, calibName = nil, "sampled"
		for _, seq := range mwqCalibSeqs(fm, 16, 256, 1) {
			calib = append(calib, seq[1:]...)
		}
	}
	bounds := map[int]float64{2: 1.08, 3: 1.03, 4: 1.01, 8: 1.001}
	if !fullQuality() {
		bounds = map[int]float64{2: 1.10, 3: 1.045, 4: 1.025, 8: 1.004}
	}
	dir := os.Getenv("MOLE_MWQ_KEEP")
	if dir == "" {
		dir = t.TempDir()
	}
	for _, scheme := range []string{"mwq24", "mwq58"} {
		t.Run(scheme, func(t *testing.T) {
			if scheme == "mwq58" {
				requireQuality(t, "mwq58 on kjv-moe (its fit costs about twice mwq24's; TestMWQStories260K scores mwq58 by default)")
			}
			o := QuantizeOptions{Calib: calib, CalibName: calibName, Window: 256}
			if _, err := SetMWQ(&o, scheme); err != nil {
				t.Fatal(err)
			}
			cfg := MWQSchemes[scheme]
			path := filepath.Join(dir, "kjv-moe-"+scheme+".gguf")
			t0 := time.Now()
			if _, err := Quantize(context.Background(), fm, path, o); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: quantised in %v (calibration %s, %d tokens)", scheme, time.Since(t0).Round(time.Second), calibName, len(calib))
			m := loadModelFile(t, path)
			prev := math.Inf(1)
			for _, b := range []int{cfg.BaseBits, cfg.BaseBits + 1, cfg.MaxBits} {
				if scheme == "mwq58" && b == 6 {
					continue // the table has mwq58 at 5 and 8 bits
				}
				m.SetExpertBits([]int{b})
				p := ppl(t, m)
				t.Logf("%s at %d bits: perplexity %.4f, ratio %.4f", scheme, b, p, p/base)
				lim, table := bounds[b]
				if table && p/base > lim {
					t.Errorf("%s at %d bits: ratio %.4f above %.3f", scheme, b, p/base, lim)
				}
				// Perplexity must fall from each width of the table to the next; the widths
				// between 5 and 8 (all within 0.1% of float) are reported, not ordered.
				if table {
					if p >= prev {
						t.Errorf("%s: perplexity %.4f at %d bits is not below %.4f at the previous width of the table", scheme, p, b, prev)
					}
					prev = p
				}
			}
		})
	}
}

// TestMWQForward: an MWQ model's products equal the float products of its dequantised
// rows (to int8-activation rounding), a forward step allocates nothing, and
// SetExpertBits clamps to the stored widths.
func TestMWQForward(t *testing.T) {
	fm := loadDefaultModel(t)
	path := filepath.Join(t.TempDir(), "kjv-mwq24.gguf")
	writeFakeMWQ(t, fm, path)
	m := loadModelFile(t, path)
	if b1, k, ok := m.MWQBits(); !ok || b1 != 2 || k != 4 {
		t.Fatalf("MWQBits = %d, %d, %v", b1, k, ok)
	}
	if got := m.SetExpertBits([]int{1, 9, 3}); got[0] != 2 || got[1] != 4 || got[2] != 3 || got[3] != 3 {
		t.Errorf("SetExpertBits(1, 9, 3) = %v, want [2 4 3 3]", got)
	}
	e := m.Layers[0].ExpDown[3]
	x := make([]float32, e.Cols)
	for i := range x {
		x[i] = float32(i%13) - 6
	}
	row := make([]float32, e.Cols)
	for _, bits := range []int{2, 3, 4} {
		m.SetExpertBits([]int{bits})
		out := make([]float32, e.Rows)
		e.MulVec(m.pool, out, x)
		for r := 0; r < e.Rows; r += 37 {
			e.RowF32(r, row)
			var want float64
			for i, v := range row {
				want += float64(v) * float64(x[i])
			}
			// int8 activations: |x| <= 6 quantised with step 6/127 (error <= 3/127 each).
			var tol float64
			for _, v := range row {
				tol += math.Abs(float64(v)) * 3 / 127
			}
			if d := math.Abs(float64(out[r]) - want); d > tol+1e-4 {
				t.Fatalf("%d bits row %d: %v, float %v (tolerance %v)", bits, r, out[r], want, tol)
			}
		}
	}
	m.SetExpertBits(nil)
	s := m.NewState(8)
	s.Forward(1, 0)
	if a := testing.AllocsPerRun(5, func() { s.Forward(100, 1) }); a != 0 {
		t.Errorf("an MWQ forward step allocates %.1f times", a)
	}
}
