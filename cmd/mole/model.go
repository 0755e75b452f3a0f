package main

import (
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/mole-llm/mole/engine"
	"github.com/mole-llm/mole/engine/defaultmodel"
	"github.com/mole-llm/mole/engine/tokenizer"
)

// modelOpens counts the models openFiles has started to open, so tests can check that a
// rejected flag stopped a command before any model work.
var modelOpens atomic.Int64

// openFiles opens path, or the embedded default model when path is "". Errors name the path.
func openFiles(path string) (*engine.File, string, error) {
	modelOpens.Add(1)
	if path == "" {
		lm, err := engine.OpenHFFiles(defaultmodel.Name, defaultmodel.Files())
		if err != nil {
			return nil, "", fmt.Errorf("embedded model %s: %w", defaultmodel.Name, err)
		}
		return lm, defaultmodel.Name, nil
	}
	lm, err := engine.OpenFile(path)
	if err != nil {
		if !strings.Contains(err.Error(), path) {
			err = fmt.Errorf("%s: %w", path, err)
		}
		return nil, "", err
	}
	return lm, path, nil
}

// loadedModel is an opened and bound model with how long that took.
type loadedModel struct {
	files    *engine.File
	model    *engine.Model
	name     string
	loadTime time.Duration
	// restore undoes --isa when the model is closed, so that commands run in-process
	// (tests, a future REPL) do not leak the kernel path into the next one.
	restore func()
	mwq     string // the MWQ widths in use, for describe ("" when not MWQ)
}

// modelFlags are the flags that choose a model and how it runs: -m, -t/--threads,
// --load, --isa, --expert-bits and --mem-budget. Every command that loads a model to run
// it registers them with register (or registerBasic) and opens the model with open, so
// the same flag means the same thing everywhere.
type modelFlags struct {
	path    string
	threads int
	load    string
	isa     string
	// expertBits is --expert-bits: the width MWQ experts are read at (expertbits.go).
	expertBits string
	budget     budgetFlags // --mem-budget (membudget.go)
	// basic is set by registerBasic: --expert-bits and --mem-budget do not apply.
	basic bool
}

// threadsHelp is -t's help wherever it takes one count.
const threadsHelp = "worker threads (0 = GOMAXPROCS, the CPUs this process may use)"

// register adds the flags to cmd.
func (mf *modelFlags) register(cmd *cobra.Command) {
	mf.registerBasic(cmd)
	mf.basic = false
	fs := cmd.Flags()
	fs.StringVar(&mf.expertBits, "expert-bits", "", expertBitsHelp)
	mf.budget.register(fs)
}

// registerBasic adds -m, -t, --load and --isa only, for commands that measure or describe
// the model as stored (profile), where a width or a memory budget would change what they
// measure.
func (mf *modelFlags) registerBasic(cmd *cobra.Command) {
	mf.basic = true
	fs := cmd.Flags()
	fs.StringVarP(&mf.path, "model", "m", "", "GGUF file or Hugging Face folder (default: the embedded model)")
	// GOMAXPROCS, not the core count: it follows the cgroup quota and the affinity mask,
	// where cpuid on a VM may report hundreds of cores the process cannot use.
	fs.IntVarP(&mf.threads, "threads", "t", 0, threadsHelp)
	fs.StringVar(&mf.load, "load", engine.LoadMmap.String(),
		"where weights live: mmap (the file's pages in place: quick start, shared page cache) or copy (read once into private huge-page memory)")
	fs.StringVar(&mf.isa, "isa", "", "force a kernel path: avx512, avxvnni, avx2, neon or generic (default: the best the CPU has, or MOLE_ISA)")
}

// validate checks the flags that need no model, so that a bad value fails before a
// possibly long load.
func (mf *modelFlags) validate() error {
	if err := atLeast("--threads", mf.threads, 0, "0 (GOMAXPROCS) or more"); err != nil {
		return err
	}
	if _, err := engine.ParseLoadMode(mf.load); err != nil {
		return fmt.Errorf("--load: %w", err)
	}
	if mf.isa != "" {
		if _, err := engine.ParseISA(mf.isa); err != nil {
			return fmt.Errorf("--isa: %w", err)
		}
	}
	return nil
}

// open applies --isa, opens the model with --load, binds it with --threads workers and
// prints warnings (an --isa or MOLE_ISA path this CPU lacks) to warn.
func (mf *modelFlags) open(warn io.Writer) (*loadedModel, error) {
	if err := mf.validate(); err != nil {
		return nil, err
	}
	mode, _ := engine.ParseLoadMode(mf.load)
	restore := func() {}
	if mf.isa != "" {
		want, err := engine.ParseISA(mf.isa)
		if err != nil {
			return nil, fmt.Errorf("--isa: %w", err)
		}
		prev, err := engine.SetISA(want)
		if err != nil {
			fmt.Fprintf(warn, "mole: warning: --isa %s: this CPU or build lacks it; using %s\n", want, engine.ActiveISA())
		} else {
			restore = func() { engine.SetISA(prev) }
		}
	} else if w := engine.ISAWarning(); w != "" {
		fmt.Fprintf(warn, "mole: warning: %s\n", w)
	}
	lm, err := loadModelMode(mf.path, mf.threads, mode)
	if err != nil {
		restore()
		return nil, err
	}
	lm.restore = restore
	if mf.basic {
		return lm, nil
	}
	if lm.mwq, err = applyExpertBits(lm.model, mf.expertBits); err != nil {
		lm.Close()
		return nil, err
	}
	if d, err := applyMemBudget(lm.model, mf.budget, mf.expertBits); err != nil {
		lm.Close()
		return nil, err
	} else if d != "" {
		lm.mwq = d // the budget's description names the widths
	}
	return lm, nil
}

// loadModel opens path (or the embedded model) with its weights in place and threads
// workers (0: GOMAXPROCS).
func loadModel(path string, threads int) (*loadedModel, error) {
	return loadModelMode(path, threads, engine.LoadMmap)
}

func loadModelMode(path string, threads int, mode engine.LoadMode) (*loadedModel, error) {
	t0 := time.Now()
	lm, name, err := openFiles(path)
	if err != nil {
		return nil, err
	}
	m, err := lm.Bind(engine.OpenOptions{Load: mode, Threads: threads})
	if err != nil {
		lm.Close()
		if !strings.Contains(err.Error(), name) {
			err = fmt.Errorf("%s: %w", name, err)
		}
		return nil, err
	}
	if m.Tok == nil {
		m.Close()
		lm.Close()
		return nil, fmt.Errorf("%s: the model files carry no tokenizer", name)
	}
	return &loadedModel{files: lm, model: m, name: name, loadTime: time.Since(t0)}, nil
}

// describe is the one-line summary of how the model runs, for stderr.
func (l *loadedModel) describe() string {
	d := fmt.Sprintf("%d threads, kernels %s, weights %s", l.model.Threads(), engine.ActiveISA(), l.files.LoadMode())
	if l.mwq != "" {
		d += ", " + l.mwq
	}
	return d
}

func (l *loadedModel) Close() {
	l.model.ClearMemBudget()
	l.model.Close()
	l.files.Close()
	if l.restore != nil {
		l.restore()
	}
}

// loadTokenizer builds only the tokenizer of path, which is all `mole tokenize` needs and
// which works even for architectures the engine cannot run.
func loadTokenizer(path string) (*tokenizer.Tokenizer, func(), error) {
	lm, name, err := openFiles(path)
	if err != nil {
		return nil, nil, err
	}
	tok, err := lm.Tokenizer()
	if err != nil {
		lm.Close()
		return nil, nil, fmt.Errorf("%s: tokenizer: %w", name, err)
	}
	return tok, func() { lm.Close() }, nil
}
