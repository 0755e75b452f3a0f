package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mole-llm/mole/cmd/mole/internal/tty"
	"github.com/mole-llm/mole/engine"
)

func newQuantizeCmd() *cobra.Command {
	var (
		in, out, typ, calib, router string
		window, threads             int
		noSmooth, fullRow           bool
		damp                        float64
	)
	cmd := &cobra.Command{
		Use:   "quantize -m IN -o OUT --type f16|q8|a8w4|rtn4|mwq24|mwq58 [--calib FILE] [--router f16|q8]",
		Short: "Write a model as a GGUF file in one of mole's quantization schemes",
		Long: `Write a model (any GGUF file or Hugging Face folder mole loads) as a GGUF file:

  f16    every matrix F16 (routers F16, norms F32)
  q8     A8W8: per-row int8 weights (MOLE_Q8), activations int8 per token
  a8w4   DGQ A8W4: 4-bit codes with per-(row, group of 128) int8 zero points and integer
         multipliers and one float scale per row, found by DGQ's two-phase grid search
         against calibration activations, with 99.5th-percentile outlier smoothing
  rtn4   per-group (128) asymmetric round-to-nearest int4, no search: the yardstick
  mwq24, mwq58  Matryoshka bit-nested experts (see docs/quant.md)

The token embedding stays F16, norms F32, routers F16 or Q8_0 (--router; never 4 bits),
and the int8 schemes keep the output head in MOLE_Q8. Calibration text: --calib FILE, or
the built-in text (docs/quant.md). The scheme, group size and calibration are recorded
in the file's metadata (mole info shows them). The output appears only when complete.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := firstErr(
				atLeast("--threads", threads, 0, "0 (GOMAXPROCS) or more"),
				atLeast("--calib-ctx", window, 2, "at least 2 tokens"),
			); err != nil {
				return err
			}
			if !(damp >= 0) {
				return flagError("--damp", damp, "a number >= 0 (0 = 0.01)")
			}
			if out == "" {
				return errors.New("quantize needs an output file: -o OUT")
			}
			var rt engine.DType
			switch router {
			case "f16":
				rt = engine.F16
			case "q8":
				rt = engine.Q8_0
			case "f32":
				rt = engine.F32
			default:
				return fmt.Errorf("--router %q: want f16 or q8 (routers are never 4-bit)", router)
			}
			stderr := cmd.ErrOrStderr()
			lm, err := loadModel(in, threads)
			if err != nil {
				return err
			}
			defer lm.Close()
			m := lm.model
			text, calibName := engine.BuiltinCalibration(), "builtin"
			if calib != "" {
				b, err := os.ReadFile(calib)
				if err != nil {
					return err
				}
				text, calibName = string(b), filepath.Base(calib)
			}
			o := engine.QuantizeOptions{
				Scheme: typ, Router: rt, CalibName: calibName, Window: window,
				NoSmooth: noSmooth, DGQ: engine.DGQOptions{FullRowError: fullRow, Damp: damp},
				Calib: m.Tok.Encode(text, false, false),
			}
			if err := setMWQ(&o, typ); err != nil {
				return err
			}
			bar := newBar(stderr)
			o.Progress = bar.update
			t0 := time.Now()
			rep, err := engine.Quantize(cmd.Context(), m, out, o)
			bar.done(err)
			if err != nil {
				return err
			}
			st, err := os.Stat(out)
			if err != nil {
				return err
			}
			params := paramCount(lm.files)
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: scheme %s, %d bytes, %.3f bits per weight (%d parameters), %.1fs",
				out, typ, st.Size(), 8*float64(tensorBytes(out))/float64(params), params, time.Since(t0).Seconds())
			if rep.CalibTokens > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "; calibration %s, %d tokens, %d channels smoothed", calibName, rep.CalibTokens, rep.SmoothedChannels)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&in, "model", "m", "", "model to quantize (default: the embedded model)")
	f.IntVarP(&threads, "threads", "t", 0, threadsHelp)
	f.StringVarP(&out, "output", "o", "", "output GGUF file")
	f.StringVar(&typ, "type", "a8w4", "scheme: f16, q8, a8w4, rtn4, mwq24 or mwq58")
	f.StringVar(&calib, "calib", "", "calibration text file (default: the built-in text)")
	f.StringVar(&router, "router", "f16", "router weights: f16 or q8 (8-bit Q8_0)")
	f.IntVar(&window, "calib-ctx", 256, "calibration window in tokens")
	f.BoolVar(&noSmooth, "no-smooth", false, "a8w4: skip the outlier smoothing (to measure its effect)")
	f.BoolVar(&fullRow, "full-row-error", false, "a8w4: score phase 2 by the exact row output error, cross-group terms included")
	f.Float64Var(&damp, "damp", 0, "a8w4: ridge added to the calibration Gram matrix, relative to its mean diagonal (0: 0.01)")
	f.MarkHidden("damp")
	f.MarkHidden("no-smooth")
	f.MarkHidden("full-row-error")
	return cmd
}

// setMWQ routes the mwq schemes to the MWQ quantizer (mwq.go in this package when
// it exists); without it they are refused.
var setMWQ = func(o *engine.QuantizeOptions, typ string) error {
	if strings.HasPrefix(typ, "mwq") {
		return fmt.Errorf("--type %s: MWQ is not built into this mole yet", typ)
	}
	return nil
}

// paramCount is the number of parameters of a model: the elements of its tensors.
func paramCount(lm *engine.File) int64 {
	var n int64
	for _, t := range lm.Tensors() {
		n += t.Elems()
	}
	return n
}

// tensorBytes is the bytes of all tensors in a model file (what bits per weight count).
func tensorBytes(path string) int64 {
	lm, err := engine.OpenFile(path)
	if err != nil {
		return 0
	}
	defer lm.Close()
	var n int64
	for _, t := range lm.Tensors() {
		n += t.Bytes
	}
	return n
}

// bar shows a command's progress on stderr. On a terminal it is one line redrawn (\r)
// at most five times a second; elsewhere (a log file, a pipe, a test's buffer) redrawn
// lines would pile up as garbage, so it prints one plain line when the work starts and
// one when it ends.
type bar struct {
	w     io.Writer
	tty   bool
	stage string
	last  time.Time
	start time.Time
	drawn bool
}

func newBar(w io.Writer) *bar { return &bar{w: w, tty: tty.IsTerminal(w)} }

func (b *bar) update(stage string, done, total int64) {
	now := time.Now()
	if !b.tty {
		if !b.drawn {
			b.drawn, b.start = true, now
			fmt.Fprintf(b.w, "%s ...\n", stage)
		}
		return
	}
	if stage == b.stage && now.Sub(b.last) < 200*time.Millisecond && done < total {
		return
	}
	if stage != b.stage && b.drawn {
		fmt.Fprintln(b.w)
	}
	b.stage, b.last, b.drawn = stage, now, true
	const width = 30
	frac := float64(done) / float64(max(total, 1))
	n := min(int(frac*width), width)
	fmt.Fprintf(b.w, "\r%-24s %3.0f%% [%s%s]", stage, 100*frac, strings.Repeat("=", n), strings.Repeat(" ", width-n))
}

// done ends the bar; err is the work's outcome (a plain log says whether it finished).
func (b *bar) done(err error) {
	switch {
	case !b.drawn:
	case b.tty:
		fmt.Fprintln(b.w)
	case err != nil:
		fmt.Fprintf(b.w, "... stopped after %.1fs\n", time.Since(b.start).Seconds())
	default:
		fmt.Fprintf(b.w, "... done in %.1fs\n", time.Since(b.start).Seconds())
	}
	b.drawn = false
}

// quantInfo describes the mole.quant.* metadata of a file written by mole quantize ("" for
// other files), for mole info.
func quantInfo(lm *engine.File) string {
	scheme, ok := lm.MetaString("mole.quant.scheme")
	if !ok {
		return ""
	}
	s := "scheme " + scheme
	if g, ok := lm.MetaUint("mole.quant.group_size"); ok {
		s += fmt.Sprintf(", group size %d", g)
	}
	if r, ok := lm.MetaString("mole.quant.router"); ok {
		s += ", router " + r
	}
	if c, ok := lm.MetaString("mole.quant.calibration"); ok {
		n, _ := lm.MetaUint("mole.quant.calibration_tokens")
		sm, _ := lm.MetaUint("mole.quant.smoothed_channels")
		s += fmt.Sprintf(", calibration %s (%d tokens, %d channels smoothed)", c, n, sm)
	}
	if b, ok := lm.MetaUint("mole.mwq.base_bits"); ok {
		mb, _ := lm.MetaUint("mole.mwq.max_bits")
		s += fmt.Sprintf(", MWQ bits %d..%d", b, mb)
	}
	return s
}
