package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/mole-llm/mole/engine"
)

// calibSeed seeds --calib-sample, so a conversion is reproducible.
const calibSeed = 1

// convertMoLEOptions are convert-mole's flags.
type convertMoLEOptions struct {
	in, out, calib, typ string
	rank, groups        int
	window              int
	energy              float64
	whiten, baseline    bool
	refit, alloc        bool
	stream              bool
	fit, fitCG, sample  int
	threads             int
}

func newConvertMoLECmd() *cobra.Command {
	o := &convertMoLEOptions{}
	cmd := &cobra.Command{
		Use:   "convert-mole -m IN -o OUT [--rank R | --energy E] [--calib FILE | --calib-sample N] [--whiten] [--refit] [--fit N] [--alloc] [--groups G] [--baseline] [--stream]",
		Short: "Convert a MoE model's experts to MoLE latent experts (shared basis + small per-expert matrices)",
		Long: `Convert the routed experts of a MoE model into MoLE's latent form (docs/algorithms.md §4,
docs/format.md "MoLE"): the gate and up projections of each layer become a shared B (r x n)
and a small A_e (m x r) per expert, the down projections a shared C (n x r) and a small
D_e (r x m). B and C are the top-r singular vectors of the stacked experts, found through
the n x n Gram matrix; A_e and D_e are the experts projected on them.

  --rank R      the same rank for every layer and projection (at most the model width)
  --energy E    per layer and projection, the smallest rank keeping the fraction E of the
                spectrum (0.99 keeps 99%)
  --whiten      measure the error on calibration activations (--calib FILE, or the
                built-in text) instead of in plain Frobenius norm
  --refit       once B is fixed, refit each expert's A (gate, up) by least squares on the
                calibration inputs routed to it (--calib FILE, or the built-in text)
  --fit N       fit the factors to the calibration activations (docs/mole.md): gate and
                up by N rounds of alternating least squares on every expert's own routed
                inputs (A_e given B exactly, then the shared B by --fit-cg conjugate-
                gradient steps; the error falls every round), down by every expert's
                hidden-activation covariance (exact). README's table uses --fit 2
                with --calib-sample 4096: the fit follows its calibration closely, and
                the short built-in text is too little for it; 0: off
  --alloc       with --rank R: spend the parameters of rank R everywhere where they keep
                the most, choosing each layer's and projection's rank from the largest
                normalised eigenvalues of all of them (calibrated spectra with --fit)
  --calib-sample N  calibrate on N tokens the model samples itself (temperature 1, fixed
                seed, windows of --calib-ctx) instead of a text: no corpus needed
  --groups G    G groups of consecutive experts each share a basis (default 1: all)
  --baseline    instead, each expert truncated by its own SVD at the parameter count
                MoLE has at the chosen rank (the yardstick MoLE must beat); with --fit,
                each expert's own calibrated (whitened) SVD, the data-aware yardstick
  --stream      write the output layer by layer from a GGUF input (--rank only, plain
                factorisation): memory stays about one layer's factors, for models whose
                experts do not fit in memory as float32 (OLMoE-sized). Where the rank is
                below 75% of the width, the basis comes from randomized subspace iteration
                (mole.mole.eigen_solver records which); the energy reported is what it keeps

The other tensors are copied (--type applies to every matrix). The method, ranks and
parameter counts are recorded as mole.mole.* metadata (mole info shows them). The output
appears only when complete.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConvertMoLE(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.in, "model", "m", "", "model to convert (default: the embedded model)")
	f.IntVarP(&o.threads, "threads", "t", 0, threadsHelp)
	f.StringVarP(&o.out, "output", "o", "", "output GGUF file")
	f.IntVar(&o.rank, "rank", 0, "latent rank of every layer and projection")
	f.Float64Var(&o.energy, "energy", 0, "fraction of the spectrum to keep, per layer and projection")
	f.IntVar(&o.groups, "groups", 1, "groups of experts sharing one basis")
	f.BoolVar(&o.whiten, "whiten", false, "weight the error by calibration activations")
	f.BoolVar(&o.refit, "refit", false, "refit each expert's gate/up factor A by least squares on its calibration inputs")
	f.StringVar(&o.calib, "calib", "", "calibration text for --whiten (default: the built-in text)")
	f.IntVar(&o.window, "calib-ctx", 256, "calibration window in tokens")
	f.BoolVar(&o.baseline, "baseline", false, "write the per-expert SVD baseline at MoLE's parameter count")
	f.IntVar(&o.fit, "fit", 0, "rounds of alternating least squares fitting the factors to calibration activations")
	f.IntVar(&o.fitCG, "fit-cg", 6, "conjugate-gradient steps per basis update of --fit")
	f.BoolVar(&o.alloc, "alloc", false, "allocate --rank's parameters over layers and projections by spectrum")
	f.IntVar(&o.sample, "calib-sample", 0, "calibrate on this many tokens sampled from the model (instead of --calib)")
	f.BoolVar(&o.stream, "stream", false, "write layer by layer from a GGUF input (--rank only): for models whose experts do not fit in memory as float32")
	f.StringVar(&o.typ, "type", "f16", "weight type of the output: f32, f16 or q8_0")
	return cmd
}

// runConvertMoLE checks the flags, loads the model, calibrates if asked, converts and
// writes, then prints what the conversion kept.
func runConvertMoLE(cmd *cobra.Command, o *convertMoLEOptions) error {
	dt, err := o.check()
	if err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	lm, err := loadModel(o.in, o.threads)
	if err != nil {
		return err
	}
	defer lm.Close()
	// The output's temporary file is created before the long work, so that an
	// unwritable destination fails now and not after the conversion.
	dst, err := engine.CreateAtomic(cmd.Context(), o.out)
	if err != nil {
		return err
	}
	defer dst.Abort()
	m := lm.model
	mo := engine.MoLEOptions{Rank: o.rank, Energy: o.energy, Groups: o.groups, Whiten: o.whiten, RefitA: o.refit, Baseline: o.baseline, Window: o.window,
		Fit: o.fit, FitCG: o.fitCG, Alloc: o.alloc}
	calibName, err := o.calibrate(cmd, m, &mo)
	if err != nil {
		return err
	}
	bar := newBar(stderr)
	mo.Progress = bar.update
	t0 := time.Now()
	rep, err := convertMoLEInto(cmd, m, dst, mo, dt, calibName, bar, o.stream)
	if err != nil {
		return err
	}
	if err := dst.Commit(); err != nil {
		return err
	}
	st, err := os.Stat(o.out)
	if err != nil {
		return err
	}
	printMoLEReport(cmd.OutOrStdout(), o.out, rep, st.Size(), time.Since(t0))
	return nil
}

// check validates the flags that need no model, and returns the output weight type.
func (o *convertMoLEOptions) check() (engine.DType, error) {
	if err := firstErr(
		atLeast("--threads", o.threads, 0, "0 (GOMAXPROCS) or more"),
		atLeast("--rank", o.rank, 0, "0 (use --energy) or more"),
		atLeast("--groups", o.groups, 1, "1 or more groups"),
		atLeast("--calib-ctx", o.window, 2, "at least 2 tokens"),
		atLeast("--fit-cg", o.fitCG, 1, "1 or more steps"),
	); err != nil {
		return 0, err
	}
	if !(o.energy >= 0 && o.energy <= 1) {
		return 0, flagError("--energy", o.energy, "a fraction between 0 and 1 (0 = use --rank)")
	}
	if o.out == "" {
		return 0, errors.New("convert-mole needs an output file: -o OUT")
	}
	if (o.rank > 0) == (o.energy > 0) {
		return 0, errors.New("convert-mole needs one of --rank R or --energy E")
	}
	if o.alloc && o.rank <= 0 {
		return 0, errors.New("--alloc spends the parameters of --rank R: give --rank")
	}
	if o.fit < 0 || o.sample < 0 {
		return 0, errors.New("--fit and --calib-sample take a count >= 0")
	}
	if o.sample > 0 && o.calib != "" {
		return 0, errors.New("give one of --calib FILE and --calib-sample N")
	}
	dt, ok := map[string]engine.DType{"f32": engine.F32, "f16": engine.F16, "q8_0": engine.Q8_0}[o.typ]
	if !ok {
		return 0, fmt.Errorf("--type %q: want f32, f16 or q8_0", o.typ)
	}
	return dt, nil
}

// calibrate sets mo.Calib when --whiten, --refit or --fit need calibration tokens: the
// --calib text, the built-in text, or --calib-sample tokens the model samples itself.
// It returns the name recorded as mole.mole.calibration ("" without calibration).
func (o *convertMoLEOptions) calibrate(cmd *cobra.Command, m *engine.Model, mo *engine.MoLEOptions) (string, error) {
	if o.sample > 0 && !o.whiten && !o.refit && o.fit == 0 {
		return "", errors.New("--calib-sample calibrates --whiten, --refit or --fit: give one of them")
	}
	if !o.whiten && !o.refit && o.fit <= 0 {
		return "", nil
	}
	text, name := engine.BuiltinCalibration(), "builtin"
	if o.calib != "" {
		b, err := os.ReadFile(o.calib)
		if err != nil {
			return "", err
		}
		text, name = string(b), filepath.Base(o.calib)
	}
	mo.Calib = m.Tok.Encode(text, false, false)
	if o.sample > 0 {
		bar := newBar(cmd.ErrOrStderr())
		bar.update("sampling calibration text", 0, 1)
		var err error
		mo.Calib, err = m.SampleCalibration(cmd.Context(), o.sample, o.window, calibSeed)
		bar.done(err)
		if err != nil {
			return "", err
		}
		name = fmt.Sprintf("sampled from the model: %d tokens, seed %d", o.sample, calibSeed)
	}
	return name, nil
}

// convertMoLEInto converts m and writes the result into dst (not yet committed): layer by
// layer with stream, else whole in memory, then written with calibName recorded.
func convertMoLEInto(cmd *cobra.Command, m *engine.Model, dst *engine.AtomicFile, mo engine.MoLEOptions, dt engine.DType,
	calibName string, progress *bar, stream bool) (*engine.MoLEReport, error) {
	if stream {
		rep, err := engine.ConvertMoLEStreamTo(cmd.Context(), m, dst, mo, dt)
		progress.done(err)
		return rep, err
	}
	cm, rep, err := engine.ConvertMoLE(cmd.Context(), m, mo)
	if err != nil {
		progress.done(err)
		return nil, err
	}
	defer cm.Close()
	meta := rep.MoLEMeta(mo)
	if calibName != "" {
		meta["mole.mole.calibration"] = engine.MetaString(calibName)
	}
	g := engine.GGUFOptions{DType: dt, Meta: meta,
		Progress: func(done, total int64) { progress.update("writing", done, total) }}
	err = engine.WriteGGUFTo(cmd.Context(), cm, dst, g)
	progress.done(err)
	return rep, err
}

// printMoLEReport prints the output's size and time, the expert parameters before and
// after, and each factorised layer's ranks and kept energy.
func printMoLEReport(w io.Writer, out string, rep *engine.MoLEReport, size int64, elapsed time.Duration) {
	fmt.Fprintf(w, "wrote %s: %s, %d bytes, %.1fs\n", out, rep.Method, size, elapsed.Seconds())
	fmt.Fprintf(w, "expert parameters: %s -> %s (%.1f%%)\n", commas(rep.ParamsBefore), commas(rep.ParamsAfter),
		100*float64(rep.ParamsAfter)/float64(max(rep.ParamsBefore, 1)))
	for l, r := range rep.Layers {
		if r.RankGate > 0 {
			fmt.Fprintf(w, "layer %d: rank gate %d up %d down %d, energy kept %.4f %.4f %.4f\n",
				l, r.RankGate, r.RankUp, r.RankDown, r.EnergyGate, r.EnergyUp, r.EnergyDown)
		}
	}
}
