package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mole-llm/mole/engine"
)

func newProfileCmd() *cobra.Command {
	var (
		mf      modelFlags
		samples int
		reps    int
	)
	cmd := &cobra.Command{
		Use:   "profile -m MODEL",
		Short: "Measure expert-plane load times and expert compute times for --mem-budget",
		Long: `Measure, on this device, what the memory-budget scheduler (--mem-budget) weighs: T_io, the
time to bring one expert plane (gate, up and down of one width step) from the file into
memory, cold, by pread with O_DIRECT (into memory the cache owns), by buffered pread followed
by posix_fadvise(DONTNEED), and by madvise(WILLNEED) on the mapping; and T_comp, the time to
compute one expert for one token at each width. The results are written beside the model as
MODEL.profile.json (atomically); under --mem-budget the scheduler then gives hot experts
planes beyond the width the budget allows everyone only while the layer's estimated loads
stay hidden behind its estimated compute.
The model must be a GGUF file with MWQ experts (mole quantize --type mwq24).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := firstErr(
				mf.validate(),
				atLeast("--samples", samples, 1, "1 or more planes"),
				atLeast("--reps", reps, 1, "1 or more computations"),
			); err != nil {
				return err
			}
			path := mf.path
			if path == "" {
				return errors.New("-m: name the model file to profile")
			}
			lm, err := mf.open(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer lm.Close()
			lay, err := lm.model.ExpertLayout()
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			// The profile's temporary file is created before the measurements, so that
			// an unwritable directory fails now and not after them.
			dst, err := engine.CreateAtomic(cmd.Context(), engine.ProfilePath(path))
			if err != nil {
				return err
			}
			defer dst.Abort()
			io, err := engine.MeasureIO(lay, samples)
			if err != nil {
				return fmt.Errorf("%s: measuring loads: %w", path, err)
			}
			if err := cmd.Context().Err(); err != nil {
				return err
			}
			comp, err := lm.model.ExpertComputeTime(reps)
			if err != nil {
				return err
			}
			p := &engine.DeviceProfile{Model: path, Created: time.Now().UTC().Format(time.RFC3339), IO: io}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "T_io (median of %d cold loads of one plane: gate, up and down)\n\n", samples)
			fmt.Fprintf(out, "| backend | plane | bytes | µs | MB/s |\n|---|---|---:|---:|---:|\n")
			for _, q := range io {
				plane := "base"
				if q.Level > 0 {
					plane = fmt.Sprintf("+1 bit (each of %d)", lay.MaxBits-lay.BaseBits)
				}
				fmt.Fprintf(out, "| %s | %s | %d | %.0f | %.0f |\n", q.Backend, plane, q.Bytes, q.Micros, q.MBps)
			}
			fmt.Fprintf(out, "\nT_comp (one expert, one token, %d threads)\n\n| bits | µs |\n|---:|---:|\n", lm.model.Threads())
			for b, d := range comp {
				if d > 0 {
					p.Comp = append(p.Comp, engine.ComputePoint{Bits: b, Micros: float64(d.Nanoseconds()) / 1e3})
					fmt.Fprintf(out, "| %d | %.1f |\n", b, float64(d.Nanoseconds())/1e3)
				}
			}
			if err := engine.EncodeProfile(dst, p); err != nil {
				return fmt.Errorf("write %s: %w", dst.Path(), err)
			}
			if err := dst.Commit(); err != nil {
				return err
			}
			fmt.Fprintf(out, "\nwrote %s (faster loads here: %s)\n", dst.Path(), p.PreferredBackend())
			return nil
		},
	}
	mf.registerBasic(cmd)
	f := cmd.Flags()
	f.Lookup("model").Usage = "GGUF file with MWQ experts"
	f.IntVar(&samples, "samples", 32, "planes loaded per backend and plane size")
	f.IntVar(&reps, "reps", 50, "expert computations timed per width")
	return cmd
}
