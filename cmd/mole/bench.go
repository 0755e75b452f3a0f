package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mole-llm/mole/bench"
	"github.com/mole-llm/mole/engine"
)

func newBenchCmd() *cobra.Command {
	var (
		models, prompts, gens, threads, isas string
		expertBits                           string
		reps                                 int
		output, svgPath, load, ppMode        string
		hebf                                 hebfBenchFlags // --mem-budget (hebfbench.go)
	)
	cmd := &cobra.Command{
		Use:   "bench -m MODEL[,MODEL...] [flags]",
		Short: "Measure prompt and generation speed as llama-bench does, beside the machine's roofline",
		Long: `Measure prompt processing (pp<N>) and token generation (tg<N>) speed with llama-bench's
tests and columns, so the numbers can be put beside llama-bench's, and add what llama-bench
does not say: the weight bytes one token reads, the bandwidth that implies, and how close
the run came to the roofline measured in the same process (read bandwidth of a streaming
loop over a buffer far larger than the caches for tg; for pp the int8 multiply peak of the
kernel path for quantized weights and its float32 FMA peak for F32/F16/BF16 weights,
each a register-only loop of the path's own instructions).

Tokens are a fixed synthetic sequence, so expert routing is the same in every run; a
warm-up run precedes the timed ones; the tokenizer and the sampler are not measured.
-m, -p, -n, -t and --isa take comma-separated lists and every combination is run.

--expert-bits 2,3,4 runs every test of an MWQ model (mole quantize or gen-model --type
mwq24/mwq58) with its experts read at each width, narrowest first, in an "expert bits"
column; bytes/token counts the base and the bit-planes read at that width, and peak RSS
is the peak up to that width. Models without MWQ experts run once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if hebf.budgets != "" {
				ts, err := threadList(threads)
				if err != nil {
					return err
				}
				ns, err := intList("-n", gens, 1)
				if err != nil {
					return err
				}
				if err := firstErr(
					atLeast("--parallel", hebf.parallel, 0, "0 (no throughput test) or more sequences"),
					atLeast("--warm", hebf.warm, 0, "0 or more decode steps"),
				); err != nil {
					return err
				}
				if len(ts) == 0 || len(ns) == 0 {
					return errors.New("-t and -n: give at least one value each")
				}
				// Each sequence's KV cache holds the warm-up and the timed tokens.
				fmt.Fprintf(cmd.ErrOrStderr(), "mole: context %d (--warm %d + -n %d + 2)\n", hebf.warm+ns[0]+2, hebf.warm, ns[0])
				return runHEBFBench(cmd, hebf, models, ns[0], ts[0], output, svgPath)
			}
			o := bench.Options{Reps: reps, Log: cmd.ErrOrStderr()}
			var err error
			if o.Models = splitList(models); len(o.Models) == 0 {
				return fmt.Errorf("-m: name at least one model file")
			}
			if o.Prompts, err = intList("-p", prompts, 0); err != nil {
				return err
			}
			if o.Gens, err = intList("-n", gens, 0); err != nil {
				return err
			}
			if o.Threads, err = threadList(threads); err != nil {
				return err
			}
			if len(o.Threads) == 0 {
				return errors.New("-t: give at least one thread count (0 = GOMAXPROCS)")
			}
			for _, s := range splitList(isas) {
				i, err := engine.ParseISA(s)
				if err != nil {
					return fmt.Errorf("--isa: %w", err)
				}
				if !engine.ISASupported(i) {
					return fmt.Errorf("--isa %s: this CPU or build lacks it", i)
				}
				o.ISAs = append(o.ISAs, i)
			}
			if o.ExpertBits, err = intList("--expert-bits", expertBits, 1); err != nil {
				return err
			}
			if reps < 1 {
				return fmt.Errorf("-r %d: want at least 1 repetition", reps)
			}
			mode, err := engine.ParseLoadMode(load)
			if err != nil {
				return fmt.Errorf("--load: %w", err)
			}
			switch ppMode {
			case "batched":
			case "serial":
				o.Serial = true
			default:
				return fmt.Errorf("--pp-mode %q: want batched or serial", ppMode)
			}
			var write func(*bench.Report, io.Writer) error
			switch output {
			case "md":
				write = (*bench.Report).WriteMarkdown
			case "json":
				write = (*bench.Report).WriteJSON
			case "csv":
				write = (*bench.Report).WriteCSV
			default:
				return fmt.Errorf("-o %q: want md, json or csv", output)
			}
			// One KV cache per model holds the longest test, as llama-bench sizes n_ctx.
			benchCtx := 1
			for _, v := range append(slices.Clone(o.Prompts), o.Gens...) {
				benchCtx = max(benchCtx, v)
			}
			o.Open = func(path string) (*engine.Model, func(), error) {
				lm, err := loadModelMode(path, o.Threads[0], mode)
				if err != nil {
					return nil, nil, err
				}
				note := ""
				if t := lm.model.Config.CtxLen; t > 0 && benchCtx > t {
					note = fmt.Sprintf(", beyond the model's trained %d (speed only: the tokens are synthetic)", t)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "mole: %s: context %d (the largest -p or -n)%s\n", lm.name, benchCtx, note)
				return lm.model, lm.Close, nil
			}
			// The SVG's file is created before the benchmarks, so that an unwritable
			// path fails now and not after them.
			svg, err := createSVG(cmd.Context(), svgPath)
			if err != nil {
				return err
			}
			defer svg.abort()
			rep, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if err := svg.write(rep.WriteSVG); err != nil {
				return err
			}
			return write(rep, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&models, "model", "m", "", "GGUF files or Hugging Face folders, comma-separated")
	f.StringVarP(&prompts, "n-prompt", "p", "512", "prompt lengths for pp tests, comma-separated (0: none)")
	f.StringVarP(&gens, "n-gen", "n", "128", "generation lengths for tg tests, comma-separated (0: none)")
	f.IntVarP(&reps, "repetitions", "r", 5, "timed runs of each test (after one warm-up)")
	f.StringVarP(&threads, "threads", "t", "0", threadsHelp+", comma-separated")
	f.StringVar(&isas, "isa", "", "kernel paths, comma-separated: avx512, avxvnni, avx2, neon, generic (default: the best the CPU has)")
	f.StringVarP(&output, "output", "o", "md", "output format: md, json or csv")
	f.StringVar(&svgPath, "svg", "", "also draw tokens/s against threads, with the roofline, into this SVG file")
	f.StringVar(&ppMode, "pp-mode", "batched", "how pp tests run a prompt: batched (engine.Batch steps) or serial (one Forward per token)")
	f.StringVar(&expertBits, "expert-bits", "", "widths at which MWQ experts are read, comma-separated (default: the widest stored)")
	f.StringVar(&load, "load", engine.LoadMmap.String(), "where weights live: mmap or copy (as for mole run)")
	hebf.register(f)
	return cmd
}

// defaultThreads is what -t 0 means, here as in every command: every CPU this process
// may use (llama-bench's default too).
func defaultThreads() int { return max(1, runtime.GOMAXPROCS(0)) }

// threadList parses bench's -t list; 0 means GOMAXPROCS, as -t 0 does everywhere.
func threadList(s string) ([]int, error) {
	ts, err := intList("-t", s, 0)
	for i, t := range ts {
		if t == 0 {
			ts[i] = defaultThreads()
		}
	}
	return ts, err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// intList parses a comma-separated list of integers of at least lo.
func intList(flag, s string, lo int) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		v, err := strconv.Atoi(p)
		if err != nil || v < lo {
			return nil, fmt.Errorf("%s: %q is not an integer >= %d", flag, p, lo)
		}
		out = append(out, v)
	}
	return out, nil
}

// svgFile is an optional --svg output, created up front (engine.CreateAtomic) and
// written once the benchmark has a report; nil when no SVG was asked for.
type svgFile struct{ f *engine.AtomicFile }

func createSVG(ctx context.Context, path string) (*svgFile, error) {
	if path == "" {
		return nil, nil
	}
	f, err := engine.CreateAtomic(ctx, path)
	if err != nil {
		return nil, err
	}
	return &svgFile{f}, nil
}

func (s *svgFile) write(draw func(io.Writer) error) error {
	if s == nil {
		return nil
	}
	if err := draw(s.f); err != nil {
		return fmt.Errorf("write %s: %w", s.f.Path(), err)
	}
	return s.f.Commit()
}

func (s *svgFile) abort() {
	if s != nil {
		s.f.Abort()
	}
}
