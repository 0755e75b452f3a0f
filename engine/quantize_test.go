package engine

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/loader/sharedmodels"
	"github.com/mole-llm/mole/quant"
)

// Tests of mole quantize's schemes on kjv-moe (docs/quant.md). The quantized files are
// written once per test binary into a temporary directory shared by the tests.

var kjvQuant struct {
	once  sync.Once
	dir   string
	files map[string]string
	err   error
}

// kjvQuantized returns the float32 kjv-moe and the path of its file in each scheme,
// quantized with the built-in calibration text as `mole quantize` does.
func kjvQuantized(t *testing.T) (float32Dir string, files map[string]string) {
	dir := filepath.Join(sharedmodels.Find(t), "kjv-moe")
	kjvQuant.once.Do(func() {
		kjvQuant.dir, kjvQuant.err = os.MkdirTemp("", "mole-quant-test-")
		if kjvQuant.err != nil {
			return
		}
		lm, err := loader.Open(dir)
		if err != nil {
			kjvQuant.err = err
			return
		}
		defer lm.Close()
		m, err := Load(lm)
		if err != nil {
			kjvQuant.err = err
			return
		}
		defer m.Close()
		kjvQuant.files = map[string]string{}
		for _, s := range []string{"q8", "a8w4", "rtn4"} {
			p := filepath.Join(kjvQuant.dir, "kjv-"+s+".gguf")
			t0 := time.Now()
			_, err := Quantize(context.Background(), m, p, QuantizeOptions{Scheme: s, CalibName: "builtin",
				Calib: m.Tok.Encode(quant.BuiltinCalibration, false, false)})
			if err != nil {
				kjvQuant.err = err
				return
			}
			t.Logf("quantized kjv-moe to %s in %v", s, time.Since(t0).Round(time.Millisecond))
			kjvQuant.files[s] = p
		}
	})
	if kjvQuant.err != nil {
		t.Fatal(kjvQuant.err)
	}
	return dir, kjvQuant.files
}

func TestMain(m *testing.M) {
	code := m.Run()
	closeSharedKJV()
	if kjvQuant.dir != "" {
		os.RemoveAll(kjvQuant.dir)
	}
	os.Exit(code)
}

// heldoutWindows is how many 256-token windows of heldout.txt the quality tests score.
// With MOLE_QUALITY=1 it is all 269 (68,740 tokens), as the bounds of
// docs/quantization-quality.md are defined, and fullQuality reports true: its tables come
// from that run. A subset is too
// noisy for bounds of 0.1% (on 16 windows q8 measured 1.0022 and a8w4 1.0060 against 1.0008
// and 1.0029 on the whole file), so by default — to keep `go test ./...` within CI's time —
// the tests score qualityWindows windows and assert looser bounds that still catch a broken
// quantizer. MOLE_QUANT_WINDOWS=N scores the first N windows instead.
func heldoutWindows() int {
	if n, err := strconv.Atoi(os.Getenv("MOLE_QUANT_WINDOWS")); err == nil {
		return n
	}
	if fullQuality() {
		return 0
	}
	return qualityWindows
}

// qualityWindows is the default subset: 24 windows, 6,144 tokens.
const qualityWindows = 24

// fullQuality reports whether MOLE_QUALITY=1 asks for the whole-file quality run.
func fullQuality() bool {
	return qualityRun() && os.Getenv("MOLE_QUANT_WINDOWS") == ""
}

func heldoutIDs(t *testing.T, m *Model) []int32 {
	b, err := os.ReadFile(filepath.Join(sharedmodels.Find(t), "kjv-moe", "heldout.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return m.Tok.Encode(string(b), false, false)
}

// The quality bounds of docs/quantization-quality.md: q8 within 0.1% of float32's perplexity, a8w4 within
// 0.4% and strictly below round-to-nearest int4 at the same group size.
func TestQuantizedPerplexityBounds(t *testing.T) {
	if testing.Short() {
		t.Skip("quantizes kjv-moe with the grid search")
	}
	dir, files := kjvQuantized(t)
	ppl := func(path string) float64 {
		m := loadModelFile(t, path)
		r, err := m.Perplexity(context.Background(), m.NewState(256), heldoutIDs(t, m), PerplexityOptions{Window: 256, MaxWindows: heldoutWindows()})
		if err != nil {
			t.Fatal(err)
		}
		return r.Perplexity
	}
	base := ppl(dir)
	got := map[string]float64{}
	for _, s := range []string{"q8", "a8w4", "rtn4"} {
		got[s] = ppl(files[s])
		t.Logf("%-5s perplexity %.4f, ratio to float32 %.5f", s, got[s], got[s]/base)
	}
	// The bounds hold on the whole file (MOLE_QUALITY=1); on the default subset
	// the looser ones still fail for a broken quantizer (a wrong scale or zero point costs
	// far more than a percent).
	q8Max, a8w4Max := 1.003, 1.012
	if fullQuality() {
		q8Max, a8w4Max = 1.001, 1.004
	}
	if r := got["q8"] / base; r > q8Max {
		t.Errorf("q8 perplexity ratio %.5f > %.3f", r, q8Max)
	}
	if r := got["a8w4"] / base; r > a8w4Max {
		t.Errorf("a8w4 perplexity ratio %.5f > %.3f", r, a8w4Max)
	}
	if fullQuality() && !(got["a8w4"] < got["rtn4"]) {
		t.Errorf("a8w4 perplexity %.4f not below RTN int4's %.4f", got["a8w4"], got["rtn4"])
	}
	if r := got["rtn4"] / base; r > 1.03 {
		t.Errorf("rtn4 perplexity ratio %.5f > 1.03", r)
	}
}

// The a8w4 model must pick the same two experts as float32 on at least 95% of the
// tokens of heldout.txt, in every layer (teacher-forced on the same text).
func TestA8W4ExpertAgreement(t *testing.T) {
	if testing.Short() {
		t.Skip("quantizes kjv-moe with the grid search")
	}
	dir, files := kjvQuantized(t)
	trace := func(path string) [][][2]int32 {
		m := loadModelFile(t, path)
		ids := heldoutIDs(t, m)
		per := make([][][2]int32, m.Config.NLayer)
		s := m.NewState(256)
		s.SetRouterTrace(func(l int, ex []int32, _ []float32) {
			a, b := ex[0], ex[1]
			if a > b {
				a, b = b, a
			}
			per[l] = append(per[l], [2]int32{a, b})
		})
		if _, err := m.Perplexity(context.Background(), s, ids, PerplexityOptions{Window: 256, MaxWindows: heldoutWindows()}); err != nil {
			t.Fatal(err)
		}
		return per
	}
	f, q := trace(dir), trace(files["a8w4"])
	for l := range f {
		same := 0
		for i := range f[l] {
			if f[l][i] == q[l][i] {
				same++
			}
		}
		frac := float64(same) / float64(len(f[l]))
		t.Logf("layer %d: top-2 experts agree on %.2f%% of %d tokens", l, 100*frac, len(f[l]))
		if frac < 0.95 {
			t.Errorf("layer %d: top-2 agreement %.2f%% < 95%%", l, 100*frac)
		}
	}
}

// The calibration pass must compute the model State.Forward computes.
func TestCalibForwardMatchesForward(t *testing.T) {
	m := loadModelFile(t, filepath.Join(sharedmodels.Find(t), "kjv-moe"))
	ids := m.Tok.Encode("In the beginning God created the heaven and the earth.", true, false)
	s := m.NewState(64)
	f := newCalibForward(m, 64, true, m.pool)
	for pos, id := range ids {
		want := append([]float32(nil), s.Forward(id, pos)...)
		got := f.forward(id, pos)
		for i := range want {
			if d := math.Abs(float64(got[i] - want[i])); d > 1e-3*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("pos %d logit %d: calibration pass %v, Forward %v", pos, i, got[i], want[i])
			}
		}
	}
}

// A quantized file's products through the int8 kernels equal the dequantized weights
// times the int8-rounded input, and companion tensors are found per expert.
func TestMoleMatrixProducts(t *testing.T) {
	if testing.Short() {
		t.Skip("quantizes kjv-moe with the grid search")
	}
	_, files := kjvQuantized(t)
	for _, s := range []string{"q8", "a8w4"} {
		m := loadModelFile(t, files[s])
		if m.act != actI8 {
			t.Fatalf("%s: activation encoding %d, want per-token int8", s, m.act)
		}
		for _, mm := range []*Matrix{m.Layers[1].Wq, m.Layers[2].ExpDown[5], m.Output} {
			x := make([]float32, mm.Cols)
			for i := range x {
				x[i] = float32(math.Sin(float64(i)*0.7)) * float32(1+i%5)
			}
			xq := make([]byte, actI8Bytes(mm.Cols))
			quantizeActI8(xq, x)
			x8, xs, _ := actI8View(xq, mm.Cols)
			out := make([]float32, mm.Rows)
			mm.MulRowsQ(out, 0, mm.Rows, xq)
			row := make([]float32, mm.Cols)
			for r := 0; r < mm.Rows; r++ {
				mm.RowF32(r, row)
				var want float64
				for k := range row {
					want += float64(row[k]) * float64(x8[k]) * float64(xs)
				}
				if d := math.Abs(float64(out[r]) - want); d > 1e-4*(1+math.Abs(want)) {
					t.Fatalf("%s %s row %d: kernel %v, dequantized %v", s, mm.Name, r, out[r], want)
				}
			}
		}
	}
}

// calibration all tokens at once (calibRun.layerAll) computes the bits of the
// token-by-token pass (layerTokens): every block's output and every statistic, on a
// MoE model, a latent model with two groups and a dense model.
func TestCalibBlockMatchesTokenPass(t *testing.T) {
	kjv := sharedKJV(t)
	lat, _ := convertSharedKJV(t, MoLEOptions{Rank: 40, Groups: 2})
	for name, m := range map[string]*Model{"kjv-moe": kjv, "kjv-moe MoLE": lat, "stories260K": openTestModel(t, "stories260K")} {
		toks := m.Tok.Encode(quant.BuiltinCalibration, false, false)[:300]
		a, b := newCalibRun(m, toks, 128, m.pool), newCalibRun(m, toks, 128, m.pool)
		for l := range m.Layers {
			L, err := cloneLayerF32(&m.Layers[l])
			if err != nil {
				t.Fatal(err)
			}
			la, lb := newLayerCalib(L, &m.Config), newLayerCalib(L, &m.Config)
			a.layerTokens(L, la)
			b.layerAll(L, lb)
			la.finish()
			lb.finish()
			for i := range a.x {
				if a.x[i] != b.x[i] {
					t.Fatalf("%s block %d: residual %d: token pass %v, block pass %v", name, l, i, a.x[i], b.x[i])
				}
			}
			sa, sb := la.all(), lb.all()
			for i := range sa {
				if (sa[i] == nil) != (sb[i] == nil) {
					t.Fatalf("%s block %d: statistic %d present in one pass only", name, l, i)
				}
				if sa[i] == nil {
					continue
				}
				if sa[i].Tokens != sb[i].Tokens {
					t.Fatalf("%s block %d: statistic %d: %d tokens vs %d", name, l, i, sa[i].Tokens, sb[i].Tokens)
				}
				for j := range sa[i].Gram {
					if sa[i].Gram[j] != sb[i].Gram[j] {
						t.Fatalf("%s block %d: statistic %d: Gram[%d] %v vs %v", name, l, i, j, sa[i].Gram[j], sb[i].Gram[j])
					}
				}
				for j := range sa[i].AbsMax {
					if sa[i].AbsMax[j] != sb[i].AbsMax[j] {
						t.Fatalf("%s block %d: statistic %d: AbsMax[%d] differs", name, l, i, j)
					}
				}
			}
		}
	}
}
