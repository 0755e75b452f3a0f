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

// benchOptions are bench's flags.
type benchOptions struct {
	models, prompts, gens, threads, isas string
	expertBits                           string
	reps                                 int
	output, svgPath, load, ppMode        string
	hebf                                 hebfBenchFlags // --mem-budget (hebfbench.go)
}

func newBenchCmd() *cobra.Command {
	o := &benchOptions{}
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
			return runBench(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.models, "model", "m", "", "GGUF files or Hugging Face folders, comma-separated")
	f.StringVarP(&o.prompts, "n-prompt", "p", "512", "prompt lengths for pp tests, comma-separated (0: none)")
	f.StringVarP(&o.gens, "n-gen", "n", "128", "generation lengths for tg tests, comma-separated (0: none)")
	f.IntVarP(&o.reps, "repetitions", "r", 5, "timed runs of each test (after one warm-up)")
	f.StringVarP(&o.threads, "threads", "t", "0", threadsHelp+", comma-separated")
	f.StringVar(&o.isas, "isa", "", "kernel paths, comma-separated: avx512, avxvnni, avx2, neon, generic (default: the best the CPU has)")
	f.StringVarP(&o.output, "output", "o", "md", "output format: md, json or csv")
	f.StringVar(&o.svgPath, "svg", "", "also draw tokens/s against threads, with the roofline, into this SVG file")
	f.StringVar(&o.ppMode, "pp-mode", "batched", "how pp tests run a prompt: batched (engine.Batch steps) or serial (one Forward per token)")
	f.StringVar(&o.expertBits, "expert-bits", "", "widths at which MWQ experts are read, comma-separated (default: the widest stored)")
	f.StringVar(&o.load, "load", engine.LoadMmap.String(), "where weights live: mmap or copy (as for mole run)")
	o.hebf.register(f)
	return cmd
}

// runBench runs the llama-bench tests (or, with --mem-budget, the expert-cache benchmark)
// and writes the report, and the SVG when asked.
func runBench(cmd *cobra.Command, o *benchOptions) error {
	if o.hebf.budgets != "" {
		return runBenchHEBF(cmd, o)
	}
	bo, write, err := o.parse(cmd)
	if err != nil {
		return err
	}
	// The SVG's file is created before the benchmarks, so that an unwritable
	// path fails now and not after them.
	svg, err := createSVG(cmd.Context(), o.svgPath)
	if err != nil {
		return err
	}
	defer svg.abort()
	rep, err := bench.Run(cmd.Context(), bo)
	if err != nil {
		return err
	}
	if err := svg.write(rep.WriteSVG); err != nil {
		return err
	}
	return write(rep, cmd.OutOrStdout())
}

// runBenchHEBF checks the flags the expert-cache benchmark reads (the first -t and -n)
// and runs it.
func runBenchHEBF(cmd *cobra.Command, o *benchOptions) error {
	hebf := o.hebf
	ts, err := threadList(o.threads)
	if err != nil {
		return err
	}
	ns, err := intList("-n", o.gens, 1)
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
	return runHEBFBench(cmd, hebf, o.models, ns[0], ts[0], o.output, o.svgPath)
}

// parse turns the flags into bench.Options, checking each, and returns the
// writer of the -o format.
func (o *benchOptions) parse(cmd *cobra.Command) (bench.Options, func(*bench.Report, io.Writer) error, error) {
	bo := bench.Options{Reps: o.reps, Log: cmd.ErrOrStderr()}
	var err error
	if bo.Models = splitList(o.models); len(bo.Models) == 0 {
		return bo, nil, fmt.Errorf("-m: name at least one model file")
	}
	if bo.Prompts, err = intList("-p", o.prompts, 0); err != nil {
		return bo, nil, err
	}
	if bo.Gens, err = intList("-n", o.gens, 0); err != nil {
		return bo, nil, err
	}
	if bo.Threads, err = threadList(o.threads); err != nil {
		return bo, nil, err
	}
	if len(bo.Threads) == 0 {
		return bo, nil, errors.New("-t: give at least one thread count (0 = GOMAXPROCS)")
	}
	if bo.ISAs, err = isaList(o.isas); err != nil {
		return bo, nil, err
	}
	if bo.ExpertBits, err = intList("--expert-bits", o.expertBits, 1); err != nil {
		return bo, nil, err
	}
	if o.reps < 1 {
		return bo, nil, fmt.Errorf("-r %d: want at least 1 repetition", o.reps)
	}
	mode, err := engine.ParseLoadMode(o.load)
	if err != nil {
		return bo, nil, fmt.Errorf("--load: %w", err)
	}
	switch o.ppMode {
	case "batched":
	case "serial":
		bo.Serial = true
	default:
		return bo, nil, fmt.Errorf("--pp-mode %q: want batched or serial", o.ppMode)
	}
	write, err := reportWriter(o.output)
	if err != nil {
		return bo, nil, err
	}
	bo.Open = benchOpener(cmd.ErrOrStderr(), bo, mode)
	return bo, write, nil
}

// isaList parses --isa, keeping only kernel paths this CPU and build can run.
func isaList(s string) ([]engine.ISA, error) {
	var isas []engine.ISA
	for _, s := range splitList(s) {
		i, err := engine.ParseISA(s)
		if err != nil {
			return nil, fmt.Errorf("--isa: %w", err)
		}
		if !engine.ISASupported(i) {
			return nil, fmt.Errorf("--isa %s: this CPU or build lacks it", i)
		}
		isas = append(isas, i)
	}
	return isas, nil
}

// reportWriter is the writer of bench's -o format.
func reportWriter(output string) (func(*bench.Report, io.Writer) error, error) {
	switch output {
	case "md":
		return (*bench.Report).WriteMarkdown, nil
	case "json":
		return (*bench.Report).WriteJSON, nil
	case "csv":
		return (*bench.Report).WriteCSV, nil
	}
	return nil, fmt.Errorf("-o %q: want md, json or csv", output)
}

// benchOpener returns bench.Options.Open: it loads a model with the first thread count
// in mode, and says on log the context the tests use.
func benchOpener(log io.Writer, bo bench.Options, mode engine.LoadMode) func(string) (*engine.Model, func(), error) {
	// One KV cache per model holds the longest test, as llama-bench sizes n_ctx.
	benchCtx := 1
	for _, v := range append(slices.Clone(bo.Prompts), bo.Gens...) {
		benchCtx = max(benchCtx, v)
	}
	return func(path string) (*engine.Model, func(), error) {
		lm, err := loadModelMode(path, bo.Threads[0], mode)
		if err != nil {
			return nil, nil, err
		}
		note := ""
		if t := lm.model.Config.CtxLen; t > 0 && benchCtx > t {
			note = fmt.Sprintf(", beyond the model's trained %d (speed only: the tokens are synthetic)", t)
		}
		fmt.Fprintf(log, "mole: %s: context %d (the largest -p or -n)%s\n", lm.name, benchCtx, note)
		return lm.model, lm.Close, nil
	}
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
