package main

import (
	"io"

	"github.com/spf13/cobra"
)

// newRootCmd builds the command tree writing to the given streams, so that tests can run
// it in-process.
func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "mole",
		Short: "Run Mixture-of-Experts language models on the CPU",
		Long: `mole runs Mixture-of-Experts language models (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE,
and dense Llama) from GGUF files or Hugging Face safetensors folders, in pure Go.
Without -m, commands use the small model embedded in the binary.`,
		// Errors are printed once, by run, as a single line; usage is only for --help.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	// --ctx and llama-server's -np are accepted as aliases on every command (cliflags.go).
	root.SetGlobalNormalizationFunc(normalizeFlag)
	root.SetFlagErrorFunc(flagErrorHint)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newRunCmd(), newInfoCmd(), newTokenizeCmd(), newPerplexityCmd(), newServeCmd(), newBenchCmd(), newGenModelCmd(), newQuantizeCmd(), newConvertMoLECmd(), newProfileCmd())
	return root
}
