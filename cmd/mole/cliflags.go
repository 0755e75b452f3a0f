package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mole-llm/mole/engine"
)

// Flag spellings shared by every command, so that a llama.cpp user's habits carry over:
// -m model, -t threads, -c context, -n tokens to predict, -p prompt, -f file, -s seed.
// bench is the one exception: it keeps llama-bench's -p/-n (prompt and generation
// lengths), which its users know.

// flagAliases maps alternative long spellings to the flag they mean. pflag's shorthands
// are one letter, so llama.cpp's multi-letter ones (-np) and mole's older names (--ctx)
// are accepted as long flags normalised to the canonical name; help lists only that.
var flagAliases = map[string]string{
	"ctx": "ctx-size", // mole's earlier name
	"np":  "parallel", // llama-server's -np
}

func normalizeFlag(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if to, ok := flagAliases[name]; ok {
		name = to
	}
	return pflag.NormalizedName(name)
}

// llamaArgs rewrites llama.cpp's multi-letter single-dash flags (-np 4) into the long form
// pflag understands (--np 4), which normalizeFlag then maps; pflag would otherwise read
// -np as -n -p. Arguments after "--" are left alone.
func llamaArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if a == "-np" || strings.HasPrefix(a, "-np=") {
			a = "-" + a
		}
		out = append(out, a)
	}
	return out
}

// shorthandHints explain a one-letter flag a command lacks where users are likely to
// try it: serve's -p meant --parallel before -p became the prompt everywhere else.
var shorthandHints = map[string]string{
	"serve 'p'": "sequences decoded together are -np N or --parallel N",
}

// flagErrorHint adds a hint to pflag's "unknown shorthand flag: 'p' in -p" where
// shorthandHints has one.
func flagErrorHint(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "unknown shorthand flag: "); ok && len(rest) >= 3 {
		if h, ok := shorthandHints[cmd.Name()+" "+rest[:3]]; ok {
			return fmt.Errorf("%s (%s)", msg, h)
		}
	}
	return err
}

// flagError is the one-line message for a flag value outside its range:
// "--top-p 2: want a number between 0 and 1 (1 = off)".
func flagError(flag string, v any, want string) error {
	return fmt.Errorf("%s %v: want %s", flag, v, want)
}

// atLeast checks an integer flag against its lower bound; want says what is accepted.
func atLeast(flag string, v, lo int, want string) error {
	if v < lo {
		return flagError(flag, v, want)
	}
	return nil
}

// firstErr returns the first non-nil error, so a command checks all its flags in one
// expression before any model work.
func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// samplerFlags maps the llama.cpp server names that engine.OptionError carries to the
// CLI's flag spellings.
var samplerFlags = map[string]string{
	"temperature":    "--temp",
	"top_k":          "--top-k",
	"top_p":          "--top-p",
	"min_p":          "--min-p",
	"repeat_penalty": "--repeat-penalty",
	"repeat_last_n":  "--repeat-last-n",
}

// validateSampler checks sampling options with the engine's ranges (the same the HTTP
// server applies) and names the offending flag as the user spelled it.
func validateSampler(so engine.SamplerOptions) error {
	err := so.Validate()
	var oe *engine.OptionError
	if errors.As(err, &oe) {
		name, ok := samplerFlags[oe.Field]
		if !ok {
			name = "--" + strings.ReplaceAll(oe.Field, "_", "-")
		}
		return flagError(name, oe.Value, oe.Want)
	}
	return err
}

// samplingFlags are llama.cpp's sampling flags, -n/--n-predict and -s/--seed, which run
// uses for its generation and serve for the requests that leave a field out.
type samplingFlags struct {
	so       engine.SamplerOptions
	seed     int64
	nPredict int
}

// register adds the flags with llama.cpp's defaults; the -n default and the help of -n
// and -s are the command's.
func (s *samplingFlags) register(fs *pflag.FlagSet, nPredict int, nHelp, seedHelp string) {
	s.so = engine.DefaultSamplerOptions()
	fs.Float32Var(&s.so.Temperature, "temp", s.so.Temperature, "temperature; 0 = greedy")
	fs.IntVar(&s.so.TopK, "top-k", s.so.TopK, "keep the K most likely tokens (0 = off)")
	fs.Float32Var(&s.so.TopP, "top-p", s.so.TopP, "nucleus sampling threshold, 0 to 1 (1 = off)")
	fs.Float32Var(&s.so.MinP, "min-p", s.so.MinP, "drop tokens below this fraction of the top token's probability, 0 to 1 (0 = off)")
	fs.Float32Var(&s.so.RepeatPenalty, "repeat-penalty", s.so.RepeatPenalty, "penalty for tokens among the last --repeat-last-n, > 0 (1 = off)")
	fs.IntVar(&s.so.RepeatLastN, "repeat-last-n", s.so.RepeatLastN, "how many recent tokens the repeat penalty considers (0 = off, -1 = the whole context)")
	fs.Int64VarP(&s.seed, "seed", "s", -1, seedHelp)
	fs.IntVarP(&s.nPredict, "n-predict", "n", nPredict, nHelp)
}

// validate checks the flags with the engine's ranges, before any model is loaded.
func (s *samplingFlags) validate() error {
	if err := firstErr(
		atLeast("--n-predict", s.nPredict, -1, "-1 (until the context is full), 0 or more"),
		validateSampler(s.so),
	); err != nil {
		return err
	}
	if s.seed < -1 {
		return flagError("--seed", s.seed, "-1 (random) or a number >= 0")
	}
	return nil
}

// ctxFlags are -c/--ctx-size and --ctx-extend: the KV cache capacity per sequence, up to
// the length the model was trained on unless extending past it is asked for explicitly.
type ctxFlags struct {
	size   int
	extend bool
}

// ctxExtendHelp documents --ctx-extend for every command that has it.
const ctxExtendHelp = "allow -c beyond the model's trained context length (positions past it were never seen in training; quality may degrade)"

func (c *ctxFlags) register(fs *pflag.FlagSet, help string) {
	fs.IntVarP(&c.size, "ctx-size", "c", 0, help+"; --ctx is an alias")
	fs.BoolVar(&c.extend, "ctx-extend", false, ctxExtendHelp)
}

// validate checks what can be checked before a model is loaded.
func (c *ctxFlags) validate() error {
	return atLeast("--ctx-size", c.size, 0, "0 (the default) or a number of tokens")
}

// resolve returns the context to use for a model trained on trained tokens: -c, or def
// capped at trained when -c is 0. A -c beyond trained is an error without --ctx-extend
// and a one-line warning with it.
func (c *ctxFlags) resolve(trained, def int, warn io.Writer) (int, error) {
	n := c.size
	if n == 0 {
		if trained > 0 {
			return min(trained, def), nil
		}
		return def, nil
	}
	if trained > 0 && n > trained {
		if !c.extend {
			return 0, fmt.Errorf("--ctx-size %d: the model was trained on a context of %d tokens; add --ctx-extend to go beyond it", n, trained)
		}
		fmt.Fprintf(warn, "mole: warning: context %d is beyond the model's trained context of %d tokens (--ctx-extend): quality may degrade past position %d\n", n, trained, trained)
	}
	return n, nil
}

// checkKVMemory refuses a context whose KV caches (float32 keys and values of every layer,
// for seqs sequences) would not fit in the memory available now: allocating them would
// end the process without a message, where an error can say what to lower.
func checkKVMemory(c *engine.Config, ctx, seqs int) error {
	perPos := int64(2*c.NLayer*c.NKVHead*c.HeadDim+c.NHead) * 4
	need := perPos * int64(ctx) * int64(seqs)
	avail, err := engine.AvailableMemory()
	if err != nil || need <= avail {
		return nil
	}
	per := ""
	if seqs > 1 {
		per = fmt.Sprintf(" for %d sequences", seqs)
	}
	return fmt.Errorf("--ctx-size %d: the KV cache%s needs %s, more than the %s available; lower -c", ctx, per, engine.FormatSize(need), engine.FormatSize(avail))
}

// lastByteWriter remembers the last byte written, so that generated text can be ended
// with a newline only when it does not already end with one.
type lastByteWriter struct {
	w    io.Writer
	last byte
	n    int64
}

func (l *lastByteWriter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if n > 0 {
		l.last = p[n-1]
		l.n += int64(n)
	}
	return n, err
}

// endLine writes a newline unless nothing was written or the output already ends a line,
// so the shell prompt starts on its own line.
func (l *lastByteWriter) endLine() {
	if l.n > 0 && l.last != '\n' {
		io.WriteString(l.w, "\n")
	}
}
