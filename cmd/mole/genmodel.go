package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mole-llm/mole/bench"
)

func newGenModelCmd() *cobra.Command {
	var (
		arch, preset, out, typ string
		seed                   uint64
	)
	cmd := &cobra.Command{
		Use:   "gen-model --preset NAME -o FILE.gguf [flags]",
		Short: "Write a random-weight model of a real model's shape, for benchmarks without a download",
		Long: `Write a GGUF model with random weights in the shape of a real model, with llama.cpp's
tensor names and metadata, so that mole and llama.cpp run the same file at a realistic size.
Weights are small uniform values (variance 1/columns) so that nothing overflows; the
vocabulary is made up (benchmarks do not tokenize). The same flags and seed give the same
bytes. The file appears only when complete; large files show a progress bar on
stderr (on a terminal; a log gets a start and an end line).

Presets:
` + bench.PresetHelp() + `

--arch mixtral writes general.architecture "llama" with expert_count, as llama.cpp's converter
writes Mixtral; qwen2moe adds q/k/v biases and a shared expert as wide as the routed experts a
token uses; qwen3moe per-head q/k norms; olmoe q/k norms over the whole projection; llama a
dense FFN of the expert width.

--type q8, a8w4, mwq24 and mwq58 write mole's own types (docs/format.md) as mole quantize
lays them out: embedding F16, routers F16, norms F32, output head MOLE_Q8, the other
projections in the scheme's type (MWQ: routed experts as a base plus bit-planes, the rest
MOLE_Q8), with random but valid codes, zero points and multipliers and the scheme's
metadata (mole info shows it). llama.cpp refuses these files: their type ids are mole's own.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("-o: name the file to write")
			}
			shape, err := bench.PresetByName(preset)
			if err != nil {
				return fmt.Errorf("--preset: %w", err)
			}
			dt, scheme, err := bench.ParseGenType(typ)
			if err != nil {
				return fmt.Errorf("--type: %w", err)
			}
			if arch == "" {
				arch = shape.Arch
			}
			params, err := bench.ParamCount(shape, arch)
			if err != nil {
				return fmt.Errorf("--arch: %w", err)
			}
			start := time.Now()
			bar := newBar(cmd.ErrOrStderr())
			err = bench.GenerateGGUFContext(cmd.Context(), out, bench.GenOptions{Shape: shape, Arch: arch, Type: dt, Scheme: scheme, Seed: seed,
				Progress: func(done, total int64) { bar.update("writing "+out, done, total) }})
			bar.done(err)
			if err != nil {
				return err
			}
			what := dt.String()
			if scheme != "" {
				what = "mole " + scheme
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "mole: wrote %s: %s %s, %.2f M parameters, %s, seed %d, in %.1f s\n",
				out, preset, arch, float64(params)/1e6, what, seed, time.Since(start).Seconds())
			return nil
		},
	}
	f := cmd.Flags()
	// The list is engine's family table (bench.Archs), so that a new family shows up here.
	archs := bench.Archs
	f.StringVar(&arch, "arch", "", "architecture: "+strings.Join(archs[:len(archs)-1], ", ")+" or "+archs[len(archs)-1]+" (default: the preset's)")
	f.StringVar(&preset, "preset", "bench-moe", "model shape (see above)")
	f.StringVarP(&out, "output", "o", "", "GGUF file to write")
	f.StringVar(&typ, "type", "f16", "weight type: f16, q8_0, q4_0 (also f32, bf16), or mole's q8, a8w4, mwq24, mwq58")
	f.Uint64VarP(&seed, "seed", "s", 1, "random seed; the same seed gives the same file")
	return cmd
}
