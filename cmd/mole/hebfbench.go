package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mole-llm/mole/bench"
	"github.com/mole-llm/mole/engine"
)

// hebfBenchFlags are mole bench's memory-budget flags: with --mem-budget, bench measures
// decoding under each budget and expert-cache policy instead of llama-bench's tests.
type hebfBenchFlags struct {
	budgets, policies, io string
	parallel, warm        int
	resident              bool
}

func (h *hebfBenchFlags) register(f *pflag.FlagSet) {
	f.StringVar(&h.budgets, "mem-budget", "", "measure decoding under memory budgets instead: comma-separated percentages of the expert bytes (15%,30%,100%), sizes (512M), or \"sweep\" (15,20,30,40,50,75,100%); the always-resident weights come on top of a percentage")
	f.StringVar(&h.policies, "cache-policy", "hebf,fcfs,lru4", "with --mem-budget: expert-cache policies to compare, comma-separated")
	f.StringVar(&h.io, "cache-io", "pread", "with --mem-budget: pread (O_DIRECT) or mmap (madvise WILLNEED)")
	f.IntVar(&h.parallel, "parallel", 8, "with --mem-budget: sequences decoding together in the throughput test (0: none)")
	f.IntVar(&h.warm, "warm", 16, "with --mem-budget: decode steps before the timed ones (they fill the cache)")
	f.BoolVar(&h.resident, "resident", true, "with --mem-budget: also run without a budget, for reference")
}

// runHEBFBench is mole bench --mem-budget: one model, -n timed tokens, the first -t.
func runHEBFBench(cmd *cobra.Command, h hebfBenchFlags, model string, gen, threads int, output, svgPath string) error {
	o := bench.HEBFOptions{Model: model, Gen: gen, Warm: h.warm, Parallel: h.parallel, Resident: h.resident, Log: cmd.ErrOrStderr()}
	spec := strings.TrimSpace(h.budgets)
	if spec == "sweep" {
		spec = "15%,20%,30%,40%,50%,75%,100%"
	}
	for _, s := range splitList(spec) {
		if p, ok := strings.CutSuffix(s, "%"); ok {
			v, err := strconv.ParseFloat(p, 64)
			if err != nil || v <= 0 {
				return fmt.Errorf("--mem-budget %s: want a positive percentage", s)
			}
			o.Fractions = append(o.Fractions, v/100)
			continue
		}
		n, err := engine.ParseSize(s)
		if err != nil {
			return fmt.Errorf("--mem-budget: %w", err)
		}
		o.Budgets = append(o.Budgets, n)
	}
	for _, s := range splitList(h.policies) {
		p, err := engine.ParseCachePolicy(s)
		if err != nil {
			return fmt.Errorf("--cache-policy: %w", err)
		}
		o.Policies = append(o.Policies, p)
	}
	var err error
	if o.Backend, err = engine.ParseCacheIO(h.io); err != nil {
		return err
	}
	o.Profile, _ = engine.ReadProfile(engine.ProfilePath(model)) // mole profile, when run
	o.Open = func(path string) (*engine.Model, func(), error) {
		lm, err := loadModelMode(path, threads, engine.LoadMmap)
		if err != nil {
			return nil, nil, err
		}
		return lm.model, lm.Close, nil
	}
	// The SVG's file is created before the benchmarks, so that an unwritable
	// path fails now and not after them.
	svg, err := createSVG(cmd.Context(), svgPath)
	if err != nil {
		return err
	}
	defer svg.abort()
	rep, err := bench.RunHEBF(cmd.Context(), o)
	if err != nil {
		return err
	}
	if err := svg.write(rep.WriteSVG); err != nil {
		return err
	}
	if output == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteMarkdown(cmd.OutOrStdout())
}
