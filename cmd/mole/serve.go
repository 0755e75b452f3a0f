package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mole-llm/mole/engine/server"
)

func newServeCmd() *cobra.Command {
	var (
		modelPath string
		host      string
		port      int
		cfg       server.Config
		threads   int
		alias     string
		budget    budgetFlags // --mem-budget (membudget.go)
	)
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Serve the model over an OpenAI-compatible HTTP API",
		Long: `Serve the model over an OpenAI-compatible HTTP API on loopback (use --host to listen
elsewhere): POST /v1/chat/completions and /v1/completions (streaming or not), GET /v1/models,
/health and /metrics (Prometheus; llama.cpp's metric names where they mean the same).

Up to --parallel requests decode together in one batched step (continuous batching), each
with its own KV cache of --ctx tokens; up to --queue more wait, and past that requests get
503 with Retry-After. SIGINT or SIGTERM shuts down: streams in flight end with an error event.

Sampling defaults are llama.cpp's (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05); a
request sets temperature, top_p, seed, stop, max_tokens and the extensions top_k, min_p,
repeat_penalty and repeat_last_n.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// SIGINT is already wired by main; SIGTERM is how service managers stop a server.
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM)
			defer stop()
			lm, err := loadModel(modelPath, threads)
			if err != nil {
				return err
			}
			defer lm.Close()
			if d, err := applyMemBudget(lm.model, budget, ""); err != nil {
				return err
			} else if d != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "mole: %s\n", d)
			}
			cfg.Model = lm.model
			cfg.ModelName = alias
			if cfg.ModelName == "" {
				cfg.ModelName = modelID(lm.name)
			}
			if cfg.Ctx <= 0 {
				cfg.Ctx = min(lm.model.Config.CtxLen, defaultCtx)
			}
			ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				return err
			}
			srv := server.New(cfg)
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
			c := srv.Config()
			fmt.Fprintf(cmd.ErrOrStderr(), "mole: serving %s (%d threads, %d parallel, context %d, queue %d)\n",
				c.ModelName, lm.model.Threads(), c.Parallel, c.Ctx, c.Queue)
			fmt.Fprintf(cmd.OutOrStdout(), "mole: listening on http://%s\n", ln.Addr())

			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			select {
			case err := <-errc:
				srv.Shutdown(context.Background())
				return err
			case <-ctx.Done():
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "mole: shutting down")
			// The scheduler ends in-flight generations first, so that the handlers write
			// their error events and return; then the HTTP server drains the connections.
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&modelPath, "model", "m", "", "GGUF file or Hugging Face folder (default: the embedded model)")
	f.StringVar(&host, "host", "127.0.0.1", "address to listen on")
	f.IntVar(&port, "port", 8080, "port to listen on (0: any free port)")
	f.IntVarP(&cfg.Parallel, "parallel", "p", 4, "sequences decoded together, each with its own KV cache")
	f.IntVarP(&cfg.Ctx, "ctx", "c", 0, fmt.Sprintf("context length per sequence (0 = the model's, at most %d)", defaultCtx))
	f.IntVar(&cfg.Queue, "queue", 0, "requests waiting for a slot before 503 (0 = 8 per slot)")
	f.StringVar(&cfg.APIKey, "api-key", "", "require this key as \"Authorization: Bearer KEY\" on /v1/ endpoints")
	f.Int64Var(&cfg.MaxBody, "max-body", 4<<20, "largest request body in bytes (413 past it)")
	f.IntVarP(&threads, "threads", "t", 0, "worker threads (0 = all CPUs)")
	budget.register(f)
	f.StringVar(&alias, "alias", "", "model id reported by /v1/models (default: derived from the model's name)")
	f.BoolVar(&cfg.NoCachePrompt, "no-cache-prompt", false, "evaluate every prompt in full instead of reusing the prefix a free slot's KV cache already holds")
	return cmd
}

// modelID turns a model's path or name into the id clients pass as "model".
func modelID(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' || name[i] == '\\' {
			name = name[i+1:]
			break
		}
	}
	if i := len(name) - len(" (embedded)"); i > 0 && name[i:] == " (embedded)" {
		name = name[:i]
	}
	return name
}
