package main

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mole-llm/mole/engine"
)

// defaultCtx caps the context when --ctx is 0: models trained on 32k+ positions would
// otherwise reserve a KV cache far larger than a CPU session needs (llama.cpp's default
// n_ctx is 4096 for the same reason).
const defaultCtx = 4096

func newRunCmd() *cobra.Command {
	var (
		mf         modelFlags
		so         = engine.DefaultSamplerOptions()
		seed       int64
		maxTokens  int
		ctxLen     int
		chat       bool
		system     string
		stops      []string
		rawSpecial bool
	)
	cmd := &cobra.Command{
		Use:   "run [flags] PROMPT",
		Short: "Generate text from a prompt (\"-\" reads the prompt from stdin)",
		Long: `Generate text from a prompt and stream it to stdout; timings go to stderr.

Sampling follows llama.cpp's default chain and defaults: repetition penalty, then top-k,
top-p and min-p on the model's distribution, then temperature, then the draw.
--temp 0 is greedy decoding.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prompt := ""
			if len(args) == 1 {
				prompt = args[0]
			}
			if prompt == "-" {
				text, err := textArg(cmd, prompt)
				if err != nil {
					return err
				}
				// `echo text | mole run -` should not end the prompt with the newline echo adds.
				prompt = strings.TrimSuffix(strings.TrimSuffix(text, "\n"), "\r")
			}
			if system != "" {
				chat = true
			}
			stderr := cmd.ErrOrStderr()
			if seed < 0 {
				so.Seed = rand.Uint64()
			} else {
				so.Seed = uint64(seed)
			}

			lm, err := mf.open(stderr)
			if err != nil {
				return err
			}
			defer lm.Close()
			m := lm.model

			text := prompt
			if chat {
				var msgs []engine.Message
				if system != "" {
					msgs = append(msgs, engine.Message{Role: "system", Content: system})
				}
				msgs = append(msgs, engine.Message{Role: "user", Content: prompt})
				if text, err = engine.ApplyChatTemplate(m.ChatFormat(), msgs, true); err != nil {
					return err
				}
			}
			// Special-token strings in the prompt are parsed, as llama.cpp does; a chat
			// template needs that for its markers.
			ids := m.Tok.Encode(text, m.Tok.AddBOS(), chat || rawSpecial)
			if len(ids) == 0 {
				return errors.New("empty prompt, and the model has no BOS token to start from")
			}

			n := ctxLen
			if n <= 0 {
				n = min(m.Config.CtxLen, defaultCtx)
				if n <= 0 {
					n = defaultCtx
				}
			}
			if len(ids) > n {
				return fmt.Errorf("the prompt has %d tokens, more than the context of %d (raise --ctx)", len(ids), n)
			}
			s := m.NewState(n)

			out := cmd.OutOrStdout()
			opts := engine.GenerateOptions{MaxTokens: maxTokens, Sampler: so, Stop: stops}
			st, genErr := m.Generate(cmd.Context(), s, ids, opts, func(t string) error {
				_, err := io.WriteString(out, t)
				return err
			})
			fmt.Fprintln(stderr)
			fmt.Fprintf(stderr, "mole: model %s, %s, context %d, seed %d\n", lm.name, lm.describe(), n, so.Seed)
			fmt.Fprintf(stderr, "mole: load time   %10.2f ms\n", ms(lm.loadTime))
			fmt.Fprintf(stderr, "mole: prompt eval %10.2f ms / %4d tokens (%8.2f tokens/s)\n", ms(st.PromptDuration), st.PromptTokens, rate(st.PromptTokens, st.PromptDuration))
			fmt.Fprintf(stderr, "mole: generation  %10.2f ms / %4d tokens (%8.2f tokens/s), stop: %s\n", ms(st.GenDuration), st.GenTokens, rate(st.GenTokens, st.GenDuration), reason(st, genErr))
			if c := m.MemBudget(); c != nil {
				fmt.Fprintf(stderr, "mole: %s\n", describeCache(c))
			}
			return genErr
		},
	}
	mf.register(cmd)
	f := cmd.Flags()
	f.Float32Var(&so.Temperature, "temp", so.Temperature, "temperature; 0 = greedy")
	f.IntVar(&so.TopK, "top-k", so.TopK, "keep the K most likely tokens (0 = off)")
	f.Float32Var(&so.TopP, "top-p", so.TopP, "nucleus sampling threshold (1 = off)")
	f.Float32Var(&so.MinP, "min-p", so.MinP, "drop tokens below this fraction of the top token's probability (0 = off)")
	f.Float32Var(&so.RepeatPenalty, "repeat-penalty", so.RepeatPenalty, "penalty for tokens among the last --repeat-last-n (1 = off)")
	f.IntVar(&so.RepeatLastN, "repeat-last-n", so.RepeatLastN, "how many recent tokens the repeat penalty considers")
	f.Int64Var(&seed, "seed", -1, "random seed (-1 = random; the seed used is printed to stderr)")
	f.IntVarP(&maxTokens, "n-predict", "n", 256, "tokens to generate (-1 = until the context is full)")
	f.IntVarP(&ctxLen, "ctx", "c", 0, fmt.Sprintf("context length in tokens (0 = the model's, at most %d)", defaultCtx))
	f.BoolVar(&chat, "chat", false, "wrap the prompt in the model's chat template as a user message")
	f.StringVar(&system, "system", "", "system prompt (implies --chat)")
	f.StringArrayVar(&stops, "stop", nil, "stop when this text is generated (repeatable; not printed)")
	f.BoolVar(&rawSpecial, "special", true, "parse special-token strings such as <s> in the prompt")
	return cmd
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func reason(st engine.Stats, err error) string {
	switch {
	case err != nil:
		return "error"
	case st.StopReason == engine.StopEOG:
		return "end of text or stop string"
	case st.StopReason == engine.StopLength:
		return "length"
	}
	return strings.TrimSpace(st.StopReason)
}
