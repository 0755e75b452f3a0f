package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/moe"
)

// MoLEOptions configures ConvertMoLE (mole convert-mole).
type MoLEOptions struct {
	// Rank fixes every latent rank (capped at the model width); when 0, Energy picks
	// each layer's and projection's rank as the smallest keeping that fraction of the
	// (whitened) spectrum.
	Rank   int
	Energy float64
	// ProjRank, when non-zero, overrides Rank for the gate, up or down projection.
	ProjRank [3]int
	// Groups of experts share one basis (1: all experts; NExpert: none shared).
	Groups int
	// Baseline writes the per-expert truncated SVD instead (every expert its own basis)
	// at the parameter count MoLE would have at the chosen rank.
	Baseline bool
	// Whiten measures the error on calibration activations (Calib, tokens without BOS,
	// run in windows of Window tokens through the float model).
	Whiten bool
	// RefitA refits each expert's A (gate and up) by least squares on its own
	// calibration inputs once B is fixed (moe.RefitIn); it needs Calib too.
	RefitA bool
	Calib  []int32
	Window int
	// Calibration, when set, is used instead of collecting statistics from Calib (the
	// float model's own, from CollectCalibration; several conversions can share them).
	Calibration *Calibration
	// Fit, when > 0, fits gate/up by that many rounds of alternating least squares on
	// each expert's own calibration inputs (moe.FitIn, FitCG conjugate-gradient steps per
	// basis update) and down by each expert's hidden-activation covariance
	// (moe.NewOutFactor, exact). It needs Calib.
	Fit, FitCG int
	// Alloc spends the parameters of rank Rank on every layer and projection where they
	// keep the most of the (calibrated, when Calib is used) spectrum: each projection's
	// spectrum as a fraction of its total, the largest fractions over all layers and
	// projections first (allocateRanks).
	Alloc bool
	// FitObjectives, when set, receives each fitted projection's objective per round.
	FitObjectives func(layer, proj int, objs []float64)
	// baselineCache, when not nil, keeps the plain baseline's per-expert spectra between
	// conversions of one model at several ranks (a test converts three; they are the
	// same eigendecompositions each time).
	baselineCache map[baselineKey]*moe.LatentFactor
	// Progress, when set, is called with the stage and the work done and total.
	Progress func(stage string, done, total int64)
}

// baselineKey names one projection of one layer (its first expert's matrix).
type baselineKey struct {
	first *Matrix
	in    bool
}

// MoLELayer reports one converted layer: the rank of each projection and the energy
// of the spectrum each keeps.
type MoLELayer struct {
	RankGate, RankUp, RankDown       int
	EnergyGate, EnergyUp, EnergyDown float64
}

// MoLEReport tells what ConvertMoLE did.
type MoLEReport struct {
	Method       string // "mole" or "svd-expert"
	Groups       int
	Layers       []MoLELayer // per layer (zero for dense layers)
	ParamsBefore int64       // routed-expert weights of the source
	ParamsAfter  int64       // the same weights in latent form
	CalibTokens  int
}

// ConvertMoLE returns a copy of m (float32 model expected: its experts are read as
// float32 once) whose routed experts are latent factors, computed as moe.LatentFactor
// describes. The copy shares every other tensor with m and is written with
// WriteGGUFWith (Meta: MoLEMeta).
func ConvertMoLE(ctx context.Context, m *Model, o MoLEOptions) (*Model, *MoLEReport, error) {
	c := &m.Config
	if err := checkMoLEOptions(c, o); err != nil {
		return nil, nil, err
	}
	groups := max(1, min(o.Groups, c.NExpert))
	rep := &MoLEReport{Method: "mole", Groups: groups, Layers: make([]MoLELayer, c.NLayer)}
	if o.Baseline {
		rep.Method = "svd-expert"
	}
	cal, err := moleCalibration(ctx, m, o)
	if err != nil {
		return nil, nil, err
	}
	if cal != nil {
		rep.CalibTokens = cal.Tokens
	}
	out := &Model{Config: m.Config, Tok: m.Tok, Embed: m.Embed, OutNorm: m.OutNorm, Output: m.Output,
		Layers: append([]Layer(nil), m.Layers...), src: m.src, pool: NewPool(0), act: m.act}
	moeLayers := 0
	for l := range m.Layers {
		if m.Layers[l].Router != nil {
			moeLayers++
		}
	}
	cv := &moleConverter{o: o, c: c, groups: groups, cal: cal}
	if o.Alloc && o.Rank > 0 {
		if cv.alloc, err = allocateRanks(ctx, m, cal, o, groups); err != nil {
			out.Close()
			return nil, nil, err
		}
	}
	done := 0
	for l := range out.Layers {
		L := &out.Layers[l]
		if L.Router == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			out.Close()
			return nil, nil, err
		}
		if L.Latent != nil {
			out.Close()
			return nil, nil, errors.New("convert-mole: the model is already latent")
		}
		if err := cv.convertLayer(l, L, rep); err != nil {
			out.Close()
			return nil, nil, fmt.Errorf("convert-mole: layer %d: %w", l, err)
		}
		done++
		if o.Progress != nil {
			o.Progress("factoring", int64(done), int64(moeLayers))
		}
	}
	if rep.Method == "svd-expert" {
		rep.Groups = c.NExpert
	}
	return out, rep, nil
}

// checkMoLEOptions rejects, before any work, models and options ConvertMoLE cannot
// convert.
func checkMoLEOptions(c *Config, o MoLEOptions) error {
	if c.NExpert == 0 {
		return errors.New("convert-mole: the model has no routed experts")
	}
	if c.NFFShared > 0 {
		return errors.New("convert-mole: models with a shared expert (Qwen2-MoE) are not supported yet")
	}
	if o.Rank <= 0 && (o.Energy <= 0 || o.Energy > 1) {
		return fmt.Errorf("convert-mole: need a rank or an energy fraction in (0, 1], not %v", o.Energy)
	}
	return nil
}

// moleCalibration returns o's calibration statistics, collected from o.Calib when
// whitening, refitting or fitting needs them and none were given (nil when not needed).
func moleCalibration(ctx context.Context, m *Model, o MoLEOptions) (*Calibration, error) {
	c := &m.Config
	cal := o.Calibration
	if cal != nil && len(cal.Layers) != c.NLayer {
		return nil, fmt.Errorf("convert-mole: calibration statistics of %d layers for a model of %d", len(cal.Layers), c.NLayer)
	}
	if cal == nil && (o.Whiten || o.RefitA || o.Fit > 0) {
		if len(o.Calib) == 0 {
			return nil, errors.New("convert-mole: --whiten, --refit and --fit need calibration text")
		}
		if o.Progress != nil {
			o.Progress("calibrating", 0, 1)
		}
		return m.CollectCalibration(ctx, o.Calib, o.Window)
	}
	return cal, nil
}

// moleConverter holds what every layer's factorisation shares.
type moleConverter struct {
	o      MoLEOptions
	c      *Config
	groups int
	cal    *Calibration
	alloc  [][3]int // ranks per layer and projection from --alloc, else nil
}

// moleCovs are one layer's calibration covariances (layerCovs; nil without calibration).
type moleCovs struct {
	in        []float64
	down, exp [][]float64
}

// convertLayer replaces L's routed experts by their latent factors, and records the
// ranks, energies and parameter counts in rep.
func (cv *moleConverter) convertLayer(l int, L *Layer, rep *MoLEReport) error {
	c := cv.c
	nm, ne := c.NFFExpert, c.NEmbd
	var cov moleCovs
	cov.in, cov.down, cov.exp = layerCovs(cv.cal, l, cv.o)
	lr := &rep.Layers[l]
	lf := &LatentFFN{Method: rep.Method, GroupOf: make([]int, c.NExpert)}
	var err error
	var gb, ge, ub, ue, db, de [][]float32
	if gb, ge, lr.RankGate, lr.EnergyGate, err = cv.factor(l, 0, L.ExpGate, true, cov); err == nil {
		if ub, ue, lr.RankUp, lr.EnergyUp, err = cv.factor(l, 1, L.ExpUp, true, cov); err == nil {
			db, de, lr.RankDown, lr.EnergyDown, err = cv.factor(l, 2, L.ExpDown, false, cov)
		}
	}
	if err != nil {
		return err
	}
	name := func(t string) string { return fmt.Sprintf(t, l) }
	lf.GateIn = f32Matrices(name(latGateIn), gb, lr.RankGate, ne)
	lf.UpIn = f32Matrices(name(latUpIn), ub, lr.RankUp, ne)
	lf.DownOut = f32Matrices(name(latDownOut), db, ne, lr.RankDown)
	lf.ExpGate = f32Matrices(name(latGateExps), ge, nm, lr.RankGate)
	lf.ExpUp = f32Matrices(name(latUpExps), ue, nm, lr.RankUp)
	lf.ExpDown = f32Matrices(name(latDownExps), de, lr.RankDown, nm)
	lf.RankG, lf.RankU, lf.RD = lr.RankGate, lr.RankUp, lr.RankDown
	for e := range lf.GroupOf {
		lf.GroupOf[e] = moe.GroupOf(e, c.NExpert, len(gb))
	}
	for _, ms := range [][]*Matrix{L.ExpGate, L.ExpUp, L.ExpDown} {
		for _, mm := range ms {
			rep.ParamsBefore += int64(mm.Rows) * int64(mm.Cols)
		}
	}
	rep.ParamsAfter += lf.Params()
	L.ExpGate, L.ExpUp, L.ExpDown, L.Latent = nil, nil, nil, lf
	return nil
}

// rank is the rank asked for projection pi (0 gate, 1 up, 2 down) of layer l: --alloc's,
// else the projection's own, else o.Rank (0: pick by energy).
func (cv *moleConverter) rank(l, pi int) int {
	o := cv.o
	r := o.Rank
	if o.ProjRank[pi] > 0 {
		r = o.ProjRank[pi]
	}
	if cv.alloc != nil {
		r = cv.alloc[l][pi]
	}
	return r
}

// factor factors projection pi of layer l's experts ms (in: gate or up, else down): it
// picks the shared rank from the shared spectrum, then, for the baseline, refactors
// every expert alone at the equal-parameter rank.
func (cv *moleConverter) factor(l, pi int, ms []*Matrix, in bool, cov moleCovs) (bases, experts [][]float32, r int, energy float64, err error) {
	o, c := cv.o, cv.c
	nm, ne := c.NFFExpert, c.NEmbd
	ws := make([][]float32, len(ms))
	for e, mm := range ms {
		ws[e] = dequantAll(mm)
	}
	mk := func(g int) (*moe.LatentFactor, error) {
		if in {
			return moe.NewInFactor(ws, nm, ne, g, cov.in)
		}
		return moe.NewOutFactor(ws, ne, nm, g, cov.down)
	}
	r = cv.rank(l, pi)
	// The shared spectrum is MoLE's factor and picks energy ranks; a baseline at a
	// given rank never needs it.
	var f *moe.LatentFactor
	if !o.Baseline || r <= 0 {
		if f, err = mk(cv.groups); err != nil {
			return nil, nil, 0, 0, err
		}
		if r <= 0 {
			r = f.RankFor(o.Energy)
		}
	}
	r = min(r, ne)
	if f != nil {
		energy = f.Energy(r)
	}
	if o.Baseline {
		r = min(moe.BaselineRank(c.NExpert, nm, ne, r, cv.groups), ne)
	}
	switch {
	case o.Baseline && o.Fit > 0:
		// The data-aware baseline: every expert by its own whitened SVD.
		covs := cov.exp
		if !in {
			covs = cov.down
		}
		bases, experts, energy, err = moe.ExpertFactors(ws, nm, ne, in, covs, r)
		if err != nil {
			return nil, nil, 0, 0, err
		}
		return bases, experts, r, energy, nil
	case o.Baseline:
		key := baselineKey{ms[0], in}
		if f = o.baselineCache[key]; f == nil {
			if f, err = mk(c.NExpert); err != nil {
				return nil, nil, 0, 0, err
			}
			if o.baselineCache != nil {
				o.baselineCache[key] = f
			}
		}
		energy = f.Energy(r)
		bases, experts = f.Build(r)
	default:
		bases, experts = f.Build(r)
	}
	if in && cov.exp != nil {
		if err := cv.fitIn(l, pi, ws, bases, experts, cov.exp); err != nil {
			return nil, nil, 0, 0, err
		}
	}
	return bases, experts, r, energy, nil
}

// fitIn improves a gate or up factorisation on the calibration inputs routed to each
// expert: --fit rounds of alternating least squares over A_e and the bases, else (with
// --refit's statistics) a least-squares refit of each A_e for the fixed bases.
func (cv *moleConverter) fitIn(l, pi int, ws, bases, experts [][]float32, expCov [][]float64) error {
	o, c := cv.o, cv.c
	nm, ne := c.NFFExpert, c.NEmbd
	groupOf := make([]int, len(ws))
	for e := range groupOf {
		groupOf[e] = moe.GroupOf(e, len(ws), len(bases))
	}
	if o.Fit > 0 {
		objs, err := moe.FitIn(ws, nm, ne, bases, groupOf, expCov, experts, o.Fit, max(o.FitCG, 1))
		if err != nil {
			return err
		}
		if o.FitObjectives != nil {
			o.FitObjectives(l, pi, objs)
		}
		return nil
	}
	return moe.RefitIn(ws, nm, ne, bases, groupOf, expCov, experts)
}

// f32Matrices wraps row-major float32 data as F32 matrices named like the stacked
// tensor they are written to.
func f32Matrices(name string, data [][]float32, rows, cols int) []*Matrix {
	out := make([]*Matrix, len(data))
	for i, d := range data {
		b := unsafe.Slice((*byte)(unsafe.Pointer(&d[0])), 4*len(d))
		mm, err := newMatrix(fmt.Sprintf("%s[%d]", name, i), loader.F32, rows, cols, b)
		if err != nil {
			panic(err) // the shapes come from the factorisation itself
		}
		out[i] = mm
	}
	return out
}

// MoLEMeta is the metadata a converted file records (docs/format.md, "MoLE").
func (r *MoLEReport) MoLEMeta(o MoLEOptions) map[string]loader.Value {
	var ranks []string
	for _, l := range r.Layers {
		if l.RankGate > 0 {
			ranks = append(ranks, fmt.Sprintf("%d/%d/%d", l.RankGate, l.RankUp, l.RankDown))
		}
	}
	choice := fmt.Sprintf("rank %d", o.Rank)
	if o.Alloc {
		choice = fmt.Sprintf("parameters of rank %d, allocated", o.Rank)
	}
	if o.Rank <= 0 {
		choice = fmt.Sprintf("energy %g", o.Energy)
	}
	meta := map[string]loader.Value{
		"mole.mole.method":              loader.StringValue(r.Method),
		"mole.mole.groups":              loader.Uint32Value(uint32(r.Groups)),
		"mole.mole.rank_choice":         loader.StringValue(choice),
		"mole.mole.ranks":               loader.StringValue(strings.Join(ranks, ",")),
		"mole.mole.whiten":              loader.BoolValue(o.Whiten),
		"mole.mole.refit_a":             loader.BoolValue(o.RefitA),
		"mole.mole.fit_rounds":          loader.Uint32Value(uint32(max(o.Fit, 0))),
		"mole.mole.rank_allocation":     loader.StringValue(map[bool]string{false: "uniform", true: "spectrum"}[o.Alloc]),
		"mole.mole.expert_params":       loader.Uint64Value(uint64(r.ParamsBefore)),
		"mole.mole.latent_params":       loader.Uint64Value(uint64(r.ParamsAfter)),
		"mole.mole.calibration_tokens":  loader.Uint32Value(uint32(r.CalibTokens)),
		"mole.mole.damping":             loader.Float32Value(float32(moe.Damping)),
		"mole.mole.tensor_layout":       loader.StringValue("gate/up: A[e] x B[group]; down: C[group] x D[e]"),
		"mole.mole.group_of_expert_fmt": loader.StringValue("e*groups/n_expert"),
	}
	return meta
}

// latentTensors lists a latent layer's tensors by GGUF name for the writer.
func (lf *LatentFFN) latentTensors(l int) []struct {
	name string
	ms   []*Matrix
} {
	name := func(t string) string { return fmt.Sprintf(t, l) }
	return []struct {
		name string
		ms   []*Matrix
	}{
		{name(latGateIn), lf.GateIn}, {name(latGateExps), lf.ExpGate},
		{name(latUpIn), lf.UpIn}, {name(latUpExps), lf.ExpUp},
		{name(latDownOut), lf.DownOut}, {name(latDownExps), lf.ExpDown},
	}
}
