package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mole-llm/mole/engine"
)

func newPerplexityCmd() *cobra.Command {
	var (
		mf             modelFlags
		file           string
		ctxLen, chunks int
		kldBase, kld   string
	)
	cmd := &cobra.Command{
		Use:   "perplexity [-m MODEL] -f FILE [--ctx N] [--chunks K]",
		Short: "Measure perplexity on a text file",
		Long: `Measure perplexity on a text file. The file is tokenized once, without BOS, and cut into
consecutive windows of --ctx tokens (the first --chunks windows when given; a shorter last
window is scored too). Each window runs from a fresh cache. When the model uses a BOS
token, a window c is fed as [BOS] + c[:-1] and all of c is scored; otherwise every token
with a predecessor in its window is scored. Progress goes to stderr; the last line on
stdout is "perplexity: X".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return errors.New("perplexity needs a text file: -f FILE")
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
			ids := m.Tok.Encode(string(data), false, false)
			stderr := cmd.ErrOrStderr()
			fmt.Fprintf(stderr, "mole: %s: %d tokens, windows of %d; %s\n", file, len(ids), ctxLen, lm.describe())
			s := m.NewState(ctxLen)
			if kldBase != "" && kld != "" {
				return errors.New("--kl-divergence-base saves a reference and --kl-divergence compares with one: give one of them")
			}
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
	f.IntVarP(&ctxLen, "ctx", "c", 512, "window length in tokens")
	f.IntVar(&chunks, "chunks", 0, "evaluate only the first K windows (0 = all)")
	f.StringVar(&kldBase, "kl-divergence-base", "", "save this model's log-probabilities of every scored token to FILE (the reference for --kl-divergence)")
	f.StringVar(&kld, "kl-divergence", "", "report the KL divergence and top-token agreement against a --kl-divergence-base FILE")
	return cmd
}
