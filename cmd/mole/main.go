// Command mole runs Mixture-of-Experts language models on the CPU: `mole run` generates
// text, `mole info` describes a model, `mole tokenize` shows token ids and `mole
// perplexity` evaluates a model on a text file. Without -m the embedded default model is
// used, so every command works on a fresh clone.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	// The first ^C cancels ctx: the command stops at its next check and removes its
	// temporary files. Should that take too long, a second ^C kills the process as usual
	// rather than being swallowed too.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitInterrupted is the status of a command stopped by ^C, as a shell reports a process
// killed by SIGINT (128 + 2).
const exitInterrupted = 130

// run executes one command line and returns the exit status. Errors become one line on
// stderr and status 1; a command stopped by ctx (^C) ends with status 130 and no error
// line, having printed what it has (run prints its timing summary). Tests call run
// in-process with their own streams.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	defer func() {
		// A bug must still end as a one-line message and status 1, not a stack dump that
		// hides which input caused it.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "mole: internal error: %v\n", r)
			code = 1
		}
	}()
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(llamaArgs(args))
	if err := root.ExecuteContext(ctx); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return exitInterrupted
		}
		fmt.Fprintln(stderr, "mole:", err)
		return 1
	}
	return 0
}
