package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mole-llm/mole/kernels"
)

// synthLayer makes a weight matrix and calibration inputs with the traits that make
// output-error fitting matter: channels of very different magnitude (a few outliers) and
// correlated inputs.
func synthLayer(rows, cols, ntok int, seed uint64) (w []float32, x []float64, H []float64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	w = make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.05)
	}
	chScale := make([]float64, cols)
	for c := range chScale {
		chScale[c] = math.Exp(rng.NormFloat64() * 0.7)
		if rng.IntN(50) == 0 {
			chScale[c] *= 10
		}
	}
	x = make([]float64, ntok*cols)
	for t := 0; t < ntok; t++ {
		common := rng.NormFloat64()
		for c := 0; c < cols; c++ {
			x[t*cols+c] = (rng.NormFloat64() + 0.5*common) * chScale[c]
		}
	}
	H = make([]float64, cols*cols)
	for t := 0; t < ntok; t++ {
		xt := x[t*cols : (t+1)*cols]
		for i, a := range xt {
			row := H[i*cols : (i+1)*cols]
			for j, b := range xt {
				row[j] += a * b
			}
		}
	}
	return w, x, H
}

// outErr is the mean squared output error of Wq against W on inputs x.
func outErr(w, wq []float32, rows, cols int, x []float64) float64 {
	ntok := len(x) / cols
	var s float64
	for t := 0; t < ntok; t++ {
		xt := x[t*cols : (t+1)*cols]
		for r := 0; r < rows; r++ {
			var d float64
			for c, v := range xt {
				d += float64(w[r*cols+c]-wq[r*cols+c]) * v
			}
			s += d * d
		}
	}
	return s / float64(ntok*rows)
}

// TestMWQNestedErrorFalls: on synthetic layers with outlier channels and correlated
// inputs, the output error falls with every added plane; fitting to the calibration Gram
// matrix beats fitting plain weight error at every width; and GPTQ with per-row choice
// does not lose, summed over widths in log terms (the quantizer's own score).
func TestMWQNestedErrorFalls(t *testing.T) {
	const rows, cols = 64, 256
	w, x, H := synthLayer(rows, cols, 400, 1)
	outVar := outErr(w, make([]float32, len(w)), rows, cols, x)
	for _, base := range []MWQConfig{{BaseBits: 2, MaxBits: 4}, {BaseBits: 5, MaxBits: 8}} {
		res := map[string][]float64{}
		logSum := map[string]float64{}
		for _, v := range []struct {
			name string
			H    []float64
			gptq bool
		}{{"identity", nil, false}, {"gram", H, false}, {"gram+gptq", H, true}} {
			cfg := base
			cfg.GPTQ, cfg.GPTQPlanes = v.gptq, v.gptq
			mt, err := QuantizeMWQ(w, rows, cols, v.H, cfg)
			if err != nil {
				t.Fatal(err)
			}
			dq := make([]float32, len(w))
			prev := math.Inf(1)
			for b := cfg.BaseBits; b <= cfg.MaxBits; b++ {
				mt.Dequant(b, dq)
				e := outErr(w, dq, rows, cols, x) / outVar
				res[v.name] = append(res[v.name], e)
				logSum[v.name] += math.Log(e)
				if e >= prev {
					t.Errorf("%s base %d: relative output error %.3g at %d bits is not below %.3g at %d", v.name, cfg.BaseBits, e, b, prev, b-1)
				}
				prev = e
			}
		}
		t.Logf("base %d: relative output error per width: identity %.3g, gram %.3g, gram+gptq %.3g", base.BaseBits, res["identity"], res["gram"], res["gram+gptq"])
		for i, e := range res["gram"] {
			if e >= res["identity"][i] {
				t.Errorf("base %d at %d bits: gram fit %.3g not below the weight-error fit %.3g", base.BaseBits, base.BaseBits+i, e, res["identity"][i])
			}
		}
		if logSum["gram+gptq"] > logSum["gram"]+0.05 {
			t.Errorf("base %d: GPTQ with per-row choice loses: Σ log error %.3f vs %.3f", base.BaseBits, logSum["gram+gptq"], logSum["gram"])
		}
	}
}

func TestMWQLayout(t *testing.T) {
	const rows, cols = 3, 256
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(i%7) - 3
	}
	mt, err := QuantizeMWQ(w, rows, cols, nil, MWQConfig{BaseBits: 2, MaxBits: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(mt.Base), rows*cols/128*36; got != want {
		t.Errorf("base %d bytes, want %d", got, want)
	}
	if len(mt.Planes) != 2 || len(mt.Planes[0]) != rows*cols/128*18 {
		t.Errorf("planes %d", len(mt.Planes))
	}
	dq := make([]float32, len(w))
	mt.Dequant(4, dq)
	for i := range w {
		if math.Abs(float64(dq[i]-w[i])) > 0.51 {
			t.Fatalf("w[%d] = %v dequantised to %v", i, w[i], dq[i])
		}
	}
	if _, err := QuantizeMWQ(w[:100], 1, 101, nil, MWQConfig{BaseBits: 2, MaxBits: 4}); err == nil {
		t.Error("100 weights accepted for 1x101")
	}
	if _, err := QuantizeMWQ(nil, 1, 0, nil, MWQConfig{BaseBits: 2, MaxBits: 4}); err == nil {
		t.Error("0 columns accepted")
	}
}

// TestMWQPadded: rows whose width is not a multiple of 128 (64, 200) are stored padded
// to the next multiple, and the fit of the real columns works as on whole groups: the
// output error on the calibration inputs falls with every plane, and fitting to H beats
// fitting weight error at every width (with GPTQ, whose factor spans the padded
// columns too).
func TestMWQPadded(t *testing.T) {
	for _, cols := range []int{64, 200} {
		const rows = 48
		w, x, H := synthLayer(rows, cols, 300, uint64(cols))
		pc := MWQPadCols(cols)
		outVar := outErr(w, make([]float32, len(w)), rows, cols, x)
		for _, cfg := range []MWQConfig{{BaseBits: 2, MaxBits: 4, GPTQ: true, GPTQPlanes: true, WideWeight: 2}, {BaseBits: 5, MaxBits: 8, GPTQ: true, GPTQPlanes: true}} {
			mt, err := QuantizeMWQ(w, rows, cols, H, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if mt.Cols != cols || mt.PadCols != pc || len(mt.Base) != rows*pc/MWQGroup*MWQBaseBlockBytes(cfg.BaseBits) {
				t.Fatalf("cols %d: tensor %d/%d cols, %d base bytes", cols, mt.Cols, mt.PadCols, len(mt.Base))
			}
			for _, p := range mt.Planes {
				if len(p) != rows*pc/MWQGroup*MWQPlaneBlockBytes {
					t.Fatalf("cols %d: plane of %d bytes", cols, len(p))
				}
			}
			id, err := QuantizeMWQ(w, rows, cols, nil, cfg)
			if err != nil {
				t.Fatal(err)
			}
			dq := make([]float32, len(w))
			prev := math.Inf(1)
			var errs []float64
			for b := cfg.BaseBits; b <= cfg.MaxBits; b++ {
				mt.Dequant(b, dq)
				e := outErr(w, dq, rows, cols, x) / outVar
				id.Dequant(b, dq)
				ei := outErr(w, dq, rows, cols, x) / outVar
				errs = append(errs, e)
				if e >= prev {
					t.Errorf("cols %d base %d: relative output error %.3g at %d bits not below %.3g", cols, cfg.BaseBits, e, b, prev)
				}
				if e >= ei {
					t.Errorf("cols %d base %d at %d bits: gram fit %.3g not below the weight-error fit %.3g", cols, cfg.BaseBits, b, e, ei)
				}
				prev = e
			}
			t.Logf("cols %d base %d: relative output error per width %.3g", cols, cfg.BaseBits, errs)
			checkPaddedBits(t, mt)
		}
	}
}

// checkPaddedBits asserts what docs/format.md says the padded columns of an MWQ tensor
// hold: base code clamp(round(z), 0, 2^b1-1) (0 when s1 is 0), and plane k's bit set
// exactly when the padded weight decoded at k-1 bits is <= 0.
func checkPaddedBits(t *testing.T, mt *MWQTensor) {
	t.Helper()
	G := mt.PadCols / MWQGroup
	c := mt.Cols - (G-1)*MWQGroup
	bb := MWQBaseBlockBytes(mt.BaseBits)
	f16 := func(b []byte) float64 { return float64(kernels.F16ToF32(uint16(b[0]) | uint16(b[1])<<8)) }
	bit := func(plane []byte, k int) int { return int(plane[k/8] >> (k % 8) & 1) }
	for r := 0; r < mt.Rows; r++ {
		i := r*G + G - 1
		blk := mt.Base[i*bb : (i+1)*bb]
		s1, z := f16(blk[0:]), f16(blk[2:])
		want := 0
		if s1 != 0 {
			want = int(min(max(math.Round(z), 0), float64(int(1)<<mt.BaseBits-1)))
		}
		for k := c; k < MWQGroup; k++ {
			q := 0
			for j := 0; j < mt.BaseBits; j++ {
				q |= bit(blk[4+16*j:], k) << j
			}
			if q != want {
				t.Fatalf("row %d padded column %d: base code %d, want %d (z = %v)", r, k, q, want, z)
			}
			v := s1 * (float64(q) - z)
			for p, pl := range mt.Planes {
				pb := pl[i*MWQPlaneBlockBytes : (i+1)*MWQPlaneBlockBytes]
				b := bit(pb[2:], k)
				if (b == 1) != (v <= 0) {
					t.Fatalf("row %d padded column %d: plane %d bit %d with the weight at %v", r, k, mt.BaseBits+1+p, b, v)
				}
				v += f16(pb) * float64(2*b-1)
			}
		}
	}
}
