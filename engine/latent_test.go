package engine

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"unsafe"

	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/loader/sharedmodels"
	"github.com/mole-llm/mole/moe"
)

func kjvTokens(m *Model, n int) []int32 {
	toks := m.Tok.Encode("In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep.", false, false)
	return toks[:min(n, len(toks))]
}

// logitsOf runs tokens through Forward and returns every position's logits.
func logitsOf(m *Model, toks []int32) [][]float32 {
	s := m.NewState(len(toks) + 1)
	var out [][]float32
	for i, tk := range toks {
		out = append(out, append([]float32(nil), s.Forward(tk, i)...))
	}
	return out
}

func maxDiff(a, b [][]float32) (d float64) {
	for i := range a {
		for j := range a[i] {
			d = max(d, math.Abs(float64(a[i][j]-b[i][j])))
		}
	}
	return d
}

// kjvShared is kjv-moe's float32 safetensors loaded once per test binary, with its MoLE
// conversions at calibration-free options made once each: several tests check different
// properties of the same conversion, and each conversion costs seconds on two cores.
// Tests must neither close nor modify these models; TestMain closes them.
var kjvShared struct {
	once sync.Once
	src  *loader.Model
	m    *Model
	err  error
	conv map[string]kjvConversion
	// baseline keeps the per-expert spectra of the plain SVD baseline, which do not
	// depend on rank or groups (MoLEOptions.baselineCache).
	baseline map[baselineKey]*moe.LatentFactor
}

type kjvConversion struct {
	m   *Model
	rep *MoLEReport
}

// sharedKJV returns the shared kjv-moe (see kjvShared), skipping when ../shared is absent.
func sharedKJV(t *testing.T) *Model {
	t.Helper()
	dir := sharedmodels.Path(t, "kjv-moe")
	kjvShared.once.Do(func() {
		if kjvShared.src, kjvShared.err = loader.Open(dir); kjvShared.err != nil {
			return
		}
		if kjvShared.m, kjvShared.err = Load(kjvShared.src); kjvShared.err != nil {
			return
		}
		kjvShared.conv = map[string]kjvConversion{}
		kjvShared.baseline = map[baselineKey]*moe.LatentFactor{}
	})
	if kjvShared.err != nil {
		t.Fatal(kjvShared.err)
	}
	return kjvShared.m
}

// convertSharedKJV converts the shared kjv-moe at o (which must not need calibration)
// once per test binary; the result is shared like the model.
func convertSharedKJV(t *testing.T, o MoLEOptions) (*Model, *MoLEReport) {
	t.Helper()
	if o.Whiten || o.RefitA || o.Fit > 0 || o.Alloc || o.Calib != nil || o.Calibration != nil || o.FitObjectives != nil || o.baselineCache != nil || o.Progress != nil {
		t.Fatalf("convertSharedKJV: %+v depends on calibration or callbacks: use convertKJV", o)
	}
	m := sharedKJV(t)
	key := fmt.Sprintf("%+v", o)
	if c, ok := kjvShared.conv[key]; ok {
		return c.m, c.rep
	}
	if o.Baseline {
		o.baselineCache = kjvShared.baseline
	}
	lm, rep, err := ConvertMoLE(context.Background(), m, o)
	if err != nil {
		t.Fatal(err)
	}
	kjvShared.conv[key] = kjvConversion{lm, rep}
	return lm, rep
}

// closeSharedKJV closes the shared models (from TestMain, after every test).
func closeSharedKJV() {
	for _, c := range kjvShared.conv {
		c.m.Close()
	}
	if kjvShared.m != nil {
		kjvShared.m.Close()
	}
	if kjvShared.src != nil {
		kjvShared.src.Close()
	}
}

func convertKJV(t *testing.T, m *Model, o MoLEOptions) (*Model, *MoLEReport) {
	t.Helper()
	lm, rep, err := ConvertMoLE(context.Background(), m, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lm.Close)
	return lm, rep
}

// At full rank (r = NEmbd) the shared basis spans everything, so the latent model is the
// original up to float32 rounding of the factors.
func TestLatentFullRankLogits(t *testing.T) {
	m := sharedKJV(t)
	lm, rep := convertKJV(t, m, MoLEOptions{Rank: m.Config.NEmbd, Groups: 1})
	if rep.Layers[0].EnergyGate < 1-1e-9 {
		t.Fatalf("full rank keeps energy %v", rep.Layers[0].EnergyGate)
	}
	toks := kjvTokens(m, 24)
	d := maxDiff(logitsOf(m, toks), logitsOf(lm, toks))
	t.Logf("full rank: max |logit diff| %.3g", d)
	if d > 2e-3 {
		t.Fatalf("full-rank MoLE logits differ by %g", d)
	}
}

// denseFromLatent returns a model whose experts are the dense reconstructions A B, C D of
// lm's latent factors.
func denseFromLatent(t *testing.T, lm *Model) *Model {
	d := &Model{Config: lm.Config, Tok: lm.Tok, Embed: lm.Embed, OutNorm: lm.OutNorm, Output: lm.Output,
		Layers: append([]Layer(nil), lm.Layers...), src: lm.src, pool: NewPool(0), act: lm.act}
	t.Cleanup(d.Close)
	c := &lm.Config
	f32 := func(w []float32, rows, cols int) *Matrix {
		mm, err := newMatrix("dense", loader.F32, rows, cols, unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), 4*len(w)))
		if err != nil {
			t.Fatal(err)
		}
		return mm
	}
	for l := range d.Layers {
		L := &d.Layers[l]
		if L.Latent == nil {
			continue
		}
		for e := 0; e < c.NExpert; e++ {
			g, u, dn := L.Latent.Expert(e)
			L.ExpGate = append(L.ExpGate, f32(g, c.NFFExpert, c.NEmbd))
			L.ExpUp = append(L.ExpUp, f32(u, c.NFFExpert, c.NEmbd))
			L.ExpDown = append(L.ExpDown, f32(dn, c.NEmbd, c.NFFExpert))
		}
		L.Latent = nil
	}
	return d
}

// The latent pass (z = B x once, experts in latent space, C once after the weighted sum)
// computes the same function as the dense experts A B, C D.
func TestLatentMatchesDenseReconstruction(t *testing.T) {
	m := sharedKJV(t)
	toks := kjvTokens(m, 16)
	for _, o := range []MoLEOptions{{Rank: 48, Groups: 1}, {Rank: 40, Groups: 2}, {Rank: 48, Baseline: true}} {
		lm, _ := convertSharedKJV(t, o)
		d := maxDiff(logitsOf(lm, toks), logitsOf(denseFromLatent(t, lm), toks))
		t.Logf("%+v: max |logit diff| latent vs dense A·B: %.3g", o, d)
		if d > 1e-4 {
			t.Fatalf("%+v: latent and dense reconstruction differ by %g", o, d)
		}
		// A Batch gives every token Forward's bits, whatever else is in the step.
		b := lm.NewBatch(len(toks), 0)
		s := lm.NewState(0)
		items := make([]BatchItem, len(toks))
		for i, tk := range toks {
			items[i] = BatchItem{State: s, Token: tk, Pos: i, Wants: true}
		}
		b.Forward(items)
		want := logitsOf(lm, toks)
		for i := range toks {
			for j, v := range b.Logits(i) {
				if v != want[i][j] {
					t.Fatalf("%+v: batch logit %d of token %d: %v, Forward %v", o, j, i, v, want[i][j])
				}
			}
		}
	}
}

// A converted model written as GGUF loads back as the same latent model.
func TestLatentGGUFRoundTrip(t *testing.T) {
	m := sharedKJV(t)
	lm, rep := convertSharedKJV(t, MoLEOptions{Rank: 40, Groups: 2})
	path := filepath.Join(t.TempDir(), "kjv-mole.gguf")
	if err := WriteGGUFWith(lm, path, GGUFOptions{DType: loader.F32, Meta: rep.MoLEMeta(MoLEOptions{Rank: 40, Groups: 2})}); err != nil {
		t.Fatal(err)
	}
	f, err := loader.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	back, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	for l := range back.Layers {
		lf := back.Layers[l].Latent
		if lf == nil || len(lf.GateIn) != 2 || lf.RankG != 40 || lf.Method != "mole" {
			t.Fatalf("layer %d: latent layer not restored: %+v", l, lf)
		}
	}
	if v, ok := f.GGUF.Uint("mole.mole.groups"); !ok || v != 2 {
		t.Fatalf("mole.mole.groups = %v, %v", v, ok)
	}
	for l := range back.Layers {
		a, b := lm.Layers[l].Latent, back.Layers[l].Latent
		for i, ms := range [][2][]*Matrix{{a.GateIn, b.GateIn}, {a.ExpUp, b.ExpUp}, {a.DownOut, b.DownOut}, {a.ExpDown, b.ExpDown}} {
			for e := range ms[0] {
				if string(ms[0][e].Data) != string(ms[1][e].Data) {
					t.Fatalf("layer %d tensor %d[%d]: bytes differ after the round trip", l, i, e)
				}
			}
		}
	}
	// The GGUF of this Mixtral-family model stores q/k rows in llama.cpp's interleaved
	// order, which rounds RoPE differently: logits agree to float tolerance, not bits.
	toks := kjvTokens(m, 12)
	if d := maxDiff(logitsOf(lm, toks), logitsOf(back, toks)); d > 1e-4 {
		t.Fatalf("GGUF round trip changes logits by %g", d)
	}
}

// kjvPerplexity scores the first 16 windows of 256 tokens of kjv-moe's heldout.txt, as
// the README's MoLE table does (`mole perplexity --ctx 256 --chunks 16`).
func kjvPerplexity(t *testing.T, m *Model) float64 {
	t.Helper()
	r, err := m.Perplexity(context.Background(), m.NewState(256), heldoutIDs(t, m), PerplexityOptions{Window: 256, MaxWindows: 16})
	if err != nil {
		t.Fatal(err)
	}
	return r.Perplexity
}

// Issue 7: at 99% of the spectrum's energy (rank chosen per layer and projection), the
// latent model's perplexity is within 2% of the original's.
func TestLatentEnergy99Perplexity(t *testing.T) {
	if testing.Short() {
		t.Skip("scores two models on 4,096 tokens")
	}
	m := sharedKJV(t)
	lm, rep := convertKJV(t, m, MoLEOptions{Energy: 0.99, Groups: 1})
	for l, r := range rep.Layers {
		if r.RankGate == 0 {
			continue
		}
		t.Logf("layer %d: ranks gate %d up %d down %d, energy %.4f %.4f %.4f", l, r.RankGate, r.RankUp, r.RankDown, r.EnergyGate, r.EnergyUp, r.EnergyDown)
		for _, e := range []float64{r.EnergyGate, r.EnergyUp, r.EnergyDown} {
			if e < 0.99-1e-9 {
				t.Fatalf("layer %d keeps energy %v < 0.99", l, e)
			}
		}
		if r.RankGate >= m.Config.NEmbd && r.RankUp >= m.Config.NEmbd && r.RankDown >= m.Config.NEmbd {
			t.Fatalf("layer %d: 99%% energy chose full rank everywhere: nothing is tested", l)
		}
	}
	base, got := kjvPerplexity(t, m), kjvPerplexity(t, lm)
	t.Logf("expert params %d -> %d (%.1f%%); perplexity original %.4f, MoLE at 99%% energy %.4f (ratio %.5f)",
		rep.ParamsBefore, rep.ParamsAfter, 100*float64(rep.ParamsAfter)/float64(rep.ParamsBefore), base, got, got/base)
	if got/base > 1.02 {
		t.Fatalf("perplexity at 99%% energy %.4f is %.2f%% above the original's %.4f (bound 2%%)", got, 100*(got/base-1), base)
	}
}

// moleTableRows are the rows of README's MoLE table that assert a win over the per-expert
// SVD baseline: each MoLE conversion (calibrated fit, allocated ranks; rank and groups as
// `mole convert-mole --rank R --groups G --fit 2 --fit-cg 6 --alloc --calib-sample 4096`)
// against the baseline at the same parameter count (`--baseline` at the same rank and
// groups). The rank-128 and rank-64 budgets use two and four groups of experts, each
// with its own basis, at the rank that keeps the parameters (120 and 54): one basis for
// all eight experts wins at 128 too, but by less, and loses at 64 (README gives the
// crossover).
var moleTableRows = []struct{ rank, groups int }{{192, 1}, {120, 2}, {54, 4}}

// Issue 7: at every rank of README's MoLE table the fitted MoLE model scores a lower
// perplexity on kjv-moe's heldout.txt (16 windows of 256 tokens) than every expert
// truncated by its own SVD at the same parameter count. The calibration text is sampled
// from the model itself, so no heldout token informs the conversion.
//
// Each row is a subtest. `go test ./...` runs the rank-54 row (four groups: the cheapest
// fit, and the budget where one shared basis would lose, README); the rank-192 and
// rank-120 rows (about two thirds of the time) run with MOLE_QUALITY=1.
func TestLatentBeatsBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("fits MoLE conversions of kjv-moe and scores them and the baseline on 4,096 tokens")
	}
	m := sharedKJV(t)
	ctx := context.Background()
	calib, err := m.SampleCalibration(ctx, 4096, 256, 1)
	if err != nil {
		t.Fatal(err)
	}
	cal, err := m.CollectCalibration(ctx, calib, 256)
	if err != nil {
		t.Fatal(err)
	}
	cache := kjvShared.baseline // the per-expert spectra depend on neither rank nor groups
	for _, row := range moleTableRows {
		t.Run(fmt.Sprintf("rank%d-groups%d", row.rank, row.groups), func(t *testing.T) {
			if row.rank != 54 {
				requireQuality(t, "this row of the MoLE table (the rank-54 row runs by default)")
			}
			// On real activations too, every round of the fit lowers its objective.
			rose := func(l, p int, objs []float64) {
				for k := 1; k < len(objs); k++ {
					if objs[k] > objs[k-1]*(1+1e-9) {
						t.Errorf("rank %d groups %d layer %d projection %d: fit objective rose in round %d: %v", row.rank, row.groups, l, p, k, objs)
					}
				}
			}
			lm, rep := convertKJV(t, m, MoLEOptions{Rank: row.rank, Groups: row.groups, Fit: 2, FitCG: 6, Alloc: true, Calibration: cal, FitObjectives: rose})
			bm, brep := convertKJV(t, m, MoLEOptions{Rank: row.rank, Groups: row.groups, Baseline: true, baselineCache: cache})
			if rep.ParamsAfter > brep.ParamsAfter*1005/1000 {
				t.Fatalf("rank %d groups %d: MoLE keeps %d parameters, the baseline %d", row.rank, row.groups, rep.ParamsAfter, brep.ParamsAfter)
			}
			mole, base := kjvPerplexity(t, lm), kjvPerplexity(t, bm)
			t.Logf("rank %d groups %d: params MoLE %d, baseline %d; perplexity MoLE %.3f, baseline %.3f", row.rank, row.groups,
				rep.ParamsAfter, brep.ParamsAfter, mole, base)
			if !(mole < base) {
				t.Errorf("rank %d groups %d: MoLE perplexity %.3f does not beat the per-expert SVD baseline's %.3f", row.rank, row.groups, mole, base)
			}
			lm.Close() // their pools' workers are not needed for the next row (Close is idempotent)
			bm.Close()
		})
	}
}
