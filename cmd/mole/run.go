package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mole-llm/mole/engine"
)

// defaultCtx caps the context when -c is 0: models trained on 32k+ positions would
// otherwise reserve a KV cache far larger than a CPU session needs (llama.cpp's default
// n_ctx is 4096 for the same reason).
const defaultCtx = 4096

// runOptions are run's flags.
type runOptions struct {
	mf         modelFlags
	sf         samplingFlags
	ctx        ctxFlags
	prompt     string
	file       string
	chat       bool
	system     string
	stops      []string
	rawSpecial bool
}

func newRunCmd() *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run [flags] [-p PROMPT | -f FILE | PROMPT]",
		Short: "Generate text from a prompt (-p TEXT, -f FILE, or PROMPT; \"-\" reads it from stdin)",
		Long: `Generate text from a prompt and stream it to stdout; timings go to stderr.

The prompt is -p TEXT, -f FILE or the PROMPT argument ("-" reads stdin). The context
(-c) is the KV cache capacity: the prompt and the generated tokens together. It may be up
to the length the model was trained on (mole info shows it); beyond that only with
--ctx-extend. ^C stops generation, prints the timing summary and exits with status 130.

Sampling follows llama.cpp's default chain and defaults: repetition penalty, then top-k,
top-p and min-p on the model's distribution, then temperature, then the draw.
--temp 0 is greedy decoding.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGenerate(cmd, args, o)
		},
	}
	o.mf.register(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.prompt, "prompt", "p", "", "prompt text (or give it as the PROMPT argument)")
	f.StringVarP(&o.file, "file", "f", "", "read the prompt from this file (\"-\": stdin)")
	o.sf.register(f, 256, "tokens to generate (-1 = until the context is full)",
		"random seed (-1 = random; the seed used is printed to stderr)")
	o.ctx.register(f, fmt.Sprintf("context size in tokens: the KV cache, prompt and generated text together (0 = the model's trained length, at most %d)", defaultCtx))
	f.BoolVar(&o.chat, "chat", false, "wrap the prompt in the model's chat template as a user message")
	f.StringVar(&o.system, "system", "", "system prompt (implies --chat)")
	f.StringArrayVar(&o.stops, "stop", nil, "stop when this text is generated (repeatable; not printed)")
	f.BoolVar(&o.rawSpecial, "special", true, "parse special-token strings such as <s> in the prompt")
	return cmd
}

// runGenerate checks the flags, reads the prompt, loads the model, generates to stdout
// and prints the timing summary to stderr.
func runGenerate(cmd *cobra.Command, args []string, o *runOptions) error {
	if err := o.check(cmd, args); err != nil {
		return err
	}
	if err := o.readPrompt(cmd, args); err != nil {
		return err
	}
	if o.system != "" {
		o.chat = true
	}
	stderr := cmd.ErrOrStderr()
	so := &o.sf.so
	if o.sf.seed < 0 {
		so.Seed = rand.Uint64()
	} else {
		so.Seed = uint64(o.sf.seed)
	}

	lm, err := o.mf.open(stderr)
	if err != nil {
		return err
	}
	defer lm.Close()
	m := lm.model
	n, err := o.ctx.resolve(m.Config.CtxLen, defaultCtx, stderr)
	if err != nil {
		return err
	}
	if err := checkKVMemory(&m.Config, n, 1); err != nil {
		return err
	}
	ids, err := o.encodePrompt(m, n)
	if err != nil {
		return err
	}
	s := m.NewState(n)

	out := &lastByteWriter{w: cmd.OutOrStdout()}
	opts := engine.GenerateOptions{MaxTokens: o.sf.nPredict, Sampler: *so, Stop: o.stops}
	st, genErr := m.Generate(cmd.Context(), s, ids, opts, func(t string) error {
		_, err := io.WriteString(out, t)
		return err
	})
	out.endLine()
	interrupted := genErr != nil && cmd.Context().Err() != nil && errors.Is(genErr, context.Canceled)
	stop := reason(st, genErr)
	if interrupted {
		stop = "interrupted"
	}
	printRunSummary(stderr, lm, s.Cap(), so.Seed, st, stop)
	return genErr
}

// printRunSummary prints llama.cpp-style timings, and the expert cache's use when the
// model has one.
func printRunSummary(stderr io.Writer, lm *loadedModel, ctx int, seed uint64, st engine.Stats, stop string) {
	m := lm.model
	fmt.Fprintf(stderr, "mole: model %s, %s, context %d, seed %d\n", lm.name, lm.describe(), ctx, seed)
	fmt.Fprintf(stderr, "mole: load time   %10.2f ms\n", ms(lm.loadTime))
	fmt.Fprintf(stderr, "mole: prompt eval %10.2f ms / %4d tokens (%8.2f tokens/s)\n", ms(st.PromptDuration), st.PromptTokens, rate(st.PromptTokens, st.PromptDuration))
	fmt.Fprintf(stderr, "mole: generation  %10.2f ms / %4d tokens (%8.2f tokens/s), stop: %s\n", ms(st.GenDuration), st.GenTokens, rate(st.GenTokens, st.GenDuration), stop)
	if c := m.MemBudget(); c != nil {
		fmt.Fprintf(stderr, "mole: %s\n", describeCache(c))
	}
}

// check validates the flags that need no model.
func (o *runOptions) check(cmd *cobra.Command, args []string) error {
	sources := 0
	for _, given := range []bool{len(args) == 1, cmd.Flags().Changed("prompt"), o.file != ""} {
		if given {
			sources++
		}
	}
	if sources > 1 {
		return errors.New("give the prompt once: -p TEXT, -f FILE or the PROMPT argument")
	}
	return firstErr(
		o.sf.validate(),
		o.ctx.validate(),
		o.mf.validate(),
	)
}

// readPrompt sets o.prompt from the PROMPT argument, -f FILE or stdin ("-"), without the
// newline a file or a pipe ends with.
func (o *runOptions) readPrompt(cmd *cobra.Command, args []string) error {
	if len(args) == 1 {
		o.prompt = args[0]
	}
	switch {
	case o.file != "":
		b, err := readPromptFile(cmd, o.file)
		if err != nil {
			return err
		}
		// As llama.cpp's -f: the newline an editor ends a file with is not prompt.
		o.prompt = strings.TrimSuffix(strings.TrimSuffix(b, "\n"), "\r")
	case o.prompt == "-":
		text, err := textArg(cmd, o.prompt)
		if err != nil {
			return err
		}
		// `echo text | mole run -` should not end the prompt with the newline echo adds.
		o.prompt = strings.TrimSuffix(strings.TrimSuffix(text, "\n"), "\r")
	}
	return nil
}

// encodePrompt tokenizes the prompt (in the chat template with --chat) and checks that it
// fits the context of n tokens.
func (o *runOptions) encodePrompt(m *engine.Model, n int) ([]int32, error) {
	text := o.prompt
	if o.chat {
		var msgs []engine.Message
		if o.system != "" {
			msgs = append(msgs, engine.Message{Role: "system", Content: o.system})
		}
		msgs = append(msgs, engine.Message{Role: "user", Content: o.prompt})
		var err error
		if text, err = engine.ApplyChatTemplate(m.ChatFormat(), msgs, true); err != nil {
			return nil, err
		}
	}
	// Special-token strings in the prompt are parsed, as llama.cpp does; a chat
	// template needs that for its markers.
	ids := m.Tok.Encode(text, m.Tok.AddBOS(), o.chat || o.rawSpecial)
	if len(ids) == 0 {
		return nil, errors.New("empty prompt, and the model has no BOS token to start from")
	}
	if trained := m.Config.CtxLen; len(ids) > n {
		hint := fmt.Sprintf("-c %d or more", len(ids))
		if trained > 0 && len(ids) > trained && !o.ctx.extend {
			hint += fmt.Sprintf(" with --ctx-extend: the model was trained on %d", trained)
		}
		return nil, fmt.Errorf("the prompt has %d tokens, more than the context of %d (%s)", len(ids), n, hint)
	}
	return ids, nil
}

// readPromptFile reads a prompt file, or stdin for "-".
func readPromptFile(cmd *cobra.Command, path string) (string, error) {
	if path == "-" {
		return textArg(cmd, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err // *PathError names the file
	}
	return string(b), nil
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
