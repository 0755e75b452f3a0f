package main

import (
	"fmt"
	"io"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mole-llm/mole/engine"
)

func newInfoCmd() *cobra.Command {
	var (
		cpu       bool
		modelPath string
	)
	cmd := &cobra.Command{
		Use:   "info [--cpu] [-m MODEL | MODEL]",
		Short: "Describe a model: architecture, sizes, experts and tensors (default: the embedded model); --cpu: the CPU and kernel path",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cpu {
				printCPU(cmd.OutOrStdout())
				return nil
			}
			path := modelPath
			if len(args) == 1 {
				if path != "" && path != args[0] {
					return fmt.Errorf("give the model once: -m %s or %s", path, args[0])
				}
				path = args[0]
			}
			lm, name, err := openFiles(path)
			if err != nil {
				return err
			}
			defer lm.Close()
			out := cmd.OutOrStdout()
			m, loadErr := lm.Bind(engine.OpenOptions{})
			if loadErr == nil {
				defer m.Close()
			}
			printInfo(out, name, lm, m)
			if loadErr != nil {
				// The file-level description above is still useful for a model mole cannot
				// run (an unknown architecture, a missing tensor), so it is printed first.
				return loadErr
			}
			return nil
		},
	}
	// -m as in every other command; the positional MODEL keeps working.
	cmd.Flags().StringVarP(&modelPath, "model", "m", "", "GGUF file or Hugging Face folder (default: the embedded model)")
	cmd.Flags().BoolVar(&cpu, "cpu", false, "describe the CPU, its features and the kernel path chosen, instead of a model")
	return cmd
}

// printCPU writes what decides speed on this machine: the CPU and its features, the
// kernel path (with MOLE_ISA's warning, if any) and the defaults of -t and --load.
func printCPU(out io.Writer) {
	fmt.Fprintln(out, engine.CPUInfo())
	fmt.Fprintf(out, "threads: %d by default (GOMAXPROCS; -t to change)\n", runtime.GOMAXPROCS(0))
	fmt.Fprintf(out, "weights: --load %s by default (mmap or copy)\n", engine.LoadMmap)
}

// routedExpert matches the tensors of routed experts, stacked (GGUF "ffn_up_exps") or one
// per expert (HF "experts.3.up_proj", "block_sparse_moe.experts.3.w1"). Shared experts
// ("shexp", "shared_expert") do not match: they run for every token.
var routedExpert = regexp.MustCompile(`_exps\.|\.experts\.[0-9]+\.|ffn_(gate|up|down)\.[0-9]+\.`)

func printInfo(out io.Writer, name string, lm *engine.File, m *engine.Model) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(w, "%s:\t%s\n", k, fmt.Sprintf(format, a...)) }

	row("model", "%s", name)
	row("format", "%s", lm.Format())
	var total, routed, bytes int64
	byType := map[engine.DType]int{}
	tensors := lm.Tensors()
	for _, t := range tensors {
		n := t.Elems()
		if t.DType == engine.MWQPlane {
			n = 0 // an MWQ residual plane stores more bits of its base's weights, not new ones
		}
		total += n
		bytes += t.Bytes
		byType[t.DType]++
		if routedExpert.MatchString(t.Name) {
			routed += n
		}
	}
	if m != nil {
		c := m.Config
		row("architecture", "%s", c.Arch)
		row("family", "%s", c.Family)
		active := total
		if c.NExpert > 0 && c.NExpertUsed > 0 {
			// Every token runs NExpertUsed of the NExpert routed experts and all the rest
			// (embeddings included, as in the kjv-moe README's count).
			active = total - routed*int64(c.NExpert-c.NExpertUsed)/int64(c.NExpert)
		}
		row("parameters", "%s total, %s active per token", commas(total), commas(active))
		if c.NExpert > 0 {
			row("experts", "%d, %d used per token (expert width %d)", c.NExpert, c.NExpertUsed, c.NFFExpert)
		} else {
			row("experts", "none (dense, FFN width %d)", c.NFF)
		}
		// MoLE files (convert-mole) record how their experts were factored.
		if method, ok := lm.MetaString("mole.mole.method"); ok {
			before, _ := lm.MetaUint("mole.mole.expert_params")
			after, _ := lm.MetaUint("mole.mole.latent_params")
			groups, _ := lm.MetaUint("mole.mole.groups")
			ranks, _ := lm.MetaString("mole.mole.ranks")
			row("latent experts", "%s, %d basis group(s), ranks gate/up/down per layer %s", method, groups, ranks)
			row("expert parameters", "%s before, %s after (%.1f%%)", commas(int64(before)), commas(int64(after)),
				100*float64(after)/float64(max(before, 1)))
		}
		if c.NFFShared > 0 {
			row("shared expert", "width %d", c.NFFShared)
		}
		row("layers", "%d", c.NLayer)
		row("embedding", "%d", c.NEmbd)
		row("heads", "%d query, %d key/value, head dim %d", c.NHead, c.NKVHead, c.HeadDim)
		row("context", "%d", c.CtxLen)
		row("vocab", "%d", c.Vocab)
		row("rope", "theta %g, %s pairs", c.RopeTheta, map[bool]string{true: "NeoX (i, i+d/2)", false: "interleaved"}[c.RopeNeoX])
		if m.Tok != nil {
			row("chat format", "%s", m.ChatFormat())
		}
		if q := quantInfo(lm); q != "" {
			row("quantization", "%s", q)
		}
	} else {
		row("architecture", "%s", lm.Architecture())
		row("parameters", "%s total", commas(total))
	}
	types := make([]engine.DType, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	slices.Sort(types)
	var parts []string
	for _, t := range types {
		parts = append(parts, fmt.Sprintf("%d %s", byType[t], t))
	}
	row("tensors", "%d (%s), %s bytes", len(tensors), strings.Join(parts, ", "), commas(bytes))
	w.Flush()

	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "name\tdtype\tshape\tbytes\t")
	for _, t := range tensors {
		fmt.Fprintf(w, "%s\t%s\t%v\t%s\t\n", t.Name, t.DType, t.Shape, commas(t.Bytes))
	}
	w.Flush()
}

// commas formats n with thousands separators, which makes parameter counts readable.
func commas(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
