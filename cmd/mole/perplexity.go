package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mole-llm/mole/engine"
)

// defaultPerplexityCtx is llama-perplexity's default window, so results compare.
const defaultPerplexityCtx = 512

func newPerplexityCmd() *cobra.Command {
	var (
		mf           modelFlags
		file         string
		ctx          ctxFlags
		chunks       int
		kldBase, kld string
	)
	cmd := &cobra.Command{
		Use:   "perplexity [-m MODEL] -f FILE [-c N] [--chunks K]",
		Short: "Measure perplexity on a text file",
		Long: `Measure perplexity on a text file. The file is tokenized once, without BOS, and cut into
consecutive windows of -c tokens (default: 512, or the model's trained context if shorter;
beyond the trained context only with --ctx-extend), the first --chunks windows when given;
a shorter last window is scored too. Each window runs from a fresh cache. When the model uses a BOS
token, a window c is fed as [BOS] + c[:-1] and all of c is scored; otherwise every token
with a predecessor in its window is scored. Progress goes to stderr; the last line on
stdout is "perplexity: X".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := firstErr(
				ctx.validate(),
				atLeast("--chunks", chunks, 0, "0 (all windows) or more"),
				mf.validate(),
			); err != nil {
				return err
			}
			if ctx.size == 1 {
				return flagError("--ctx-size", ctx.size, "at least 2 tokens (a window scores each token after its first)")
			}
			if file == "" {
				return errors.New("perplexity needs a text file: -f FILE")
			}
			if kldBase != "" && kld != "" {
				return errors.New("--kl-divergence-base saves a reference and --kl-divergence compares with one: give one of them")
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return err // *PathError names the file
			}
			lm, err := mf.open(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer lm.Close()
			m := lm.model
			stderr := cmd.ErrOrStderr()
			ctxLen, err := ctx.resolve(m.Config.CtxLen, defaultPerplexityCtx, stderr)
			if err != nil {
				return err
			}
			if err := checkKVMemory(&m.Config, ctxLen, 1); err != nil {
				return err
			}
			ids := m.Tok.Encode(string(data), false, false)
			s := m.NewState(ctxLen)
			fmt.Fprintf(stderr, "mole: %s: %d tokens, context %d (windows of %d tokens); %s\n", file, len(ids), s.Cap(), ctxLen, lm.describe())
			var observe func([]float32, int32)
			var kw *kldWriter
			var kr *kldReader
			if kldBase != "" {
				if kw, err = newKLDWriter(kldBase, m.Config.Vocab); err != nil {
					return err
				}
				observe = kw.observe
			}
			if kld != "" {
				if kr, err = newKLDReader(kld, m.Config.Vocab); err != nil {
					return err
				}
				observe = kr.observe
			}
			r, err := m.Perplexity(cmd.Context(), s, ids, engine.PerplexityOptions{
				Observe:    observe,
				Window:     ctxLen,
				MaxWindows: chunks,
				Progress: func(done, total int, meanNLL float64) {
					fmt.Fprintf(stderr, "mole: [%d/%d] mean NLL %.4f\n", done, total, meanNLL)
				},
			})
			if kw != nil {
				if e := kw.close(err == nil); err == nil {
					err = e
				}
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if kr != nil {
				if err := kr.report(out); err != nil {
					return fmt.Errorf("--kl-divergence %s: %w", kld, err)
				}
			}
			fmt.Fprintf(out, "tokens scored: %d in %d windows\n", r.Scored, r.Windows)
			fmt.Fprintf(out, "mean NLL: %.6f\n", r.MeanNLL)
			fmt.Fprintf(out, "perplexity: %.6f\n", r.Perplexity)
			return nil
		},
	}
	mf.register(cmd)
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "text file to evaluate")
	ctx.register(f, fmt.Sprintf("window length in tokens, each window a fresh context (0 = %d, or the model's trained length if shorter)", defaultPerplexityCtx))
	f.IntVar(&chunks, "chunks", 0, "evaluate only the first K windows (0 = all)")
	f.StringVar(&kldBase, "kl-divergence-base", "", "save this model's log-probabilities of every scored token to FILE (the reference for --kl-divergence)")
	f.StringVar(&kld, "kl-divergence", "", "report the KL divergence and top-token agreement against a --kl-divergence-base FILE")
	return cmd
}
