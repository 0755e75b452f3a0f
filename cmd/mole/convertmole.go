package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/mole-llm/mole/engine"
)

// calibSeed seeds --calib-sample, so a conversion is reproducible.
const calibSeed = 1

func newConvertMoLECmd() *cobra.Command {
	var (
		in, out, calib, typ string
		rank, groups        int
		window              int
		energy              float64
		whiten, baseline    bool
		refit, alloc        bool
		stream              bool
		fit, fitCG, sample  int
		threads             int
	)
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
			if err := firstErr(
				atLeast("--threads", threads, 0, "0 (GOMAXPROCS) or more"),
				atLeast("--rank", rank, 0, "0 (use --energy) or more"),
				atLeast("--groups", groups, 1, "1 or more groups"),
				atLeast("--calib-ctx", window, 2, "at least 2 tokens"),
				atLeast("--fit-cg", fitCG, 1, "1 or more steps"),
			); err != nil {
				return err
			}
			if !(energy >= 0 && energy <= 1) {
				return flagError("--energy", energy, "a fraction between 0 and 1 (0 = use --rank)")
			}
			if out == "" {
				return errors.New("convert-mole needs an output file: -o OUT")
			}
			if (rank > 0) == (energy > 0) {
				return errors.New("convert-mole needs one of --rank R or --energy E")
			}
			if alloc && rank <= 0 {
				return errors.New("--alloc spends the parameters of --rank R: give --rank")
			}
			if fit < 0 || sample < 0 {
				return errors.New("--fit and --calib-sample take a count >= 0")
			}
			if sample > 0 && calib != "" {
				return errors.New("give one of --calib FILE and --calib-sample N")
			}
			dt, ok := map[string]engine.DType{"f32": engine.F32, "f16": engine.F16, "q8_0": engine.Q8_0}[typ]
			if !ok {
				return fmt.Errorf("--type %q: want f32, f16 or q8_0", typ)
			}
			stderr := cmd.ErrOrStderr()
			lm, err := loadModel(in, threads)
			if err != nil {
				return err
			}
			defer lm.Close()
			// The output's temporary file is created before the long work, so that an
			// unwritable destination fails now and not after the conversion.
			dst, err := engine.CreateAtomic(cmd.Context(), out)
			if err != nil {
				return err
			}
			defer dst.Abort()
			m := lm.model
			o := engine.MoLEOptions{Rank: rank, Energy: energy, Groups: groups, Whiten: whiten, RefitA: refit, Baseline: baseline, Window: window,
				Fit: fit, FitCG: fitCG, Alloc: alloc}
			calibName := ""
			if sample > 0 && !whiten && !refit && fit == 0 {
				return errors.New("--calib-sample calibrates --whiten, --refit or --fit: give one of them")
			}
			if whiten || refit || fit > 0 {
				text, name := engine.BuiltinCalibration(), "builtin"
				if calib != "" {
					b, err := os.ReadFile(calib)
					if err != nil {
						return err
					}
					text, name = string(b), filepath.Base(calib)
				}
				o.Calib, calibName = m.Tok.Encode(text, false, false), name
				if sample > 0 {
					bar := newBar(stderr)
					bar.update("sampling calibration text", 0, 1)
					o.Calib, err = m.SampleCalibration(cmd.Context(), sample, window, calibSeed)
					bar.done(err)
					if err != nil {
						return err
					}
					calibName = fmt.Sprintf("sampled from the model: %d tokens, seed %d", sample, calibSeed)
				}
			}
			bar := newBar(stderr)
			o.Progress = bar.update
			t0 := time.Now()
			var rep *engine.MoLEReport
			if stream {
				rep, err = engine.ConvertMoLEStreamTo(cmd.Context(), m, dst, o, dt)
				bar.done(err)
				if err != nil {
					return err
				}
			} else {
				var cm *engine.Model
				cm, rep, err = engine.ConvertMoLE(cmd.Context(), m, o)
				if err != nil {
					bar.done(err)
					return err
				}
				defer cm.Close()
				meta := rep.MoLEMeta(o)
				if calibName != "" {
					meta["mole.mole.calibration"] = engine.MetaString(calibName)
				}
				g := engine.GGUFOptions{DType: dt, Meta: meta,
					Progress: func(done, total int64) { bar.update("writing", done, total) }}
				err = engine.WriteGGUFTo(cmd.Context(), cm, dst, g)
				bar.done(err)
				if err != nil {
					return err
				}
			}
			if err := dst.Commit(); err != nil {
				return err
			}
			st, err := os.Stat(out)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "wrote %s: %s, %d bytes, %.1fs\n", out, rep.Method, st.Size(), time.Since(t0).Seconds())
			fmt.Fprintf(w, "expert parameters: %s -> %s (%.1f%%)\n", commas(rep.ParamsBefore), commas(rep.ParamsAfter),
				100*float64(rep.ParamsAfter)/float64(max(rep.ParamsBefore, 1)))
			for l, r := range rep.Layers {
				if r.RankGate > 0 {
					fmt.Fprintf(w, "layer %d: rank gate %d up %d down %d, energy kept %.4f %.4f %.4f\n",
						l, r.RankGate, r.RankUp, r.RankDown, r.EnergyGate, r.EnergyUp, r.EnergyDown)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&in, "model", "m", "", "model to convert (default: the embedded model)")
	f.IntVarP(&threads, "threads", "t", 0, threadsHelp)
	f.StringVarP(&out, "output", "o", "", "output GGUF file")
	f.IntVar(&rank, "rank", 0, "latent rank of every layer and projection")
	f.Float64Var(&energy, "energy", 0, "fraction of the spectrum to keep, per layer and projection")
	f.IntVar(&groups, "groups", 1, "groups of experts sharing one basis")
	f.BoolVar(&whiten, "whiten", false, "weight the error by calibration activations")
	f.BoolVar(&refit, "refit", false, "refit each expert's gate/up factor A by least squares on its calibration inputs")
	f.StringVar(&calib, "calib", "", "calibration text for --whiten (default: the built-in text)")
	f.IntVar(&window, "calib-ctx", 256, "calibration window in tokens")
	f.BoolVar(&baseline, "baseline", false, "write the per-expert SVD baseline at MoLE's parameter count")
	f.IntVar(&fit, "fit", 0, "rounds of alternating least squares fitting the factors to calibration activations")
	f.IntVar(&fitCG, "fit-cg", 6, "conjugate-gradient steps per basis update of --fit")
	f.BoolVar(&alloc, "alloc", false, "allocate --rank's parameters over layers and projections by spectrum")
	f.IntVar(&sample, "calib-sample", 0, "calibrate on this many tokens sampled from the model (instead of --calib)")
	f.BoolVar(&stream, "stream", false, "write layer by layer from a GGUF input (--rank only): for models whose experts do not fit in memory as float32")
	f.StringVar(&typ, "type", "f16", "weight type of the output: f32, f16 or q8_0")
	return cmd
}
