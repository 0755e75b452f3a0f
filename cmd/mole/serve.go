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
		mf    modelFlags
		sf    samplingFlags
		ctx   ctxFlags
		host  string
		port  int
		cfg   server.Config
		alias string
	)
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Serve the model over an OpenAI-compatible HTTP API",
		Long: `Serve the model over an OpenAI-compatible HTTP API on loopback (use --host to listen
elsewhere): POST /v1/chat/completions and /v1/completions (streaming or not), GET /v1/models,
/health and /metrics (Prometheus; llama.cpp's metric names where they mean the same).

Up to --parallel (-np) requests decode together in one batched step (continuous batching),
each with its own KV cache of -c tokens (up to the model's trained context; beyond it only
with --ctx-extend); up to --queue more wait, and past that requests get 503 with
Retry-After. The address is bound before the model loads, so a port in use fails at once.
SIGINT or SIGTERM shuts down: streams in flight end with an error event.

A request sets temperature, top_p, seed, stop, max_tokens and the extensions top_k, min_p,
repeat_penalty and repeat_last_n; the sampling flags (--temp, --top-k, ..., -n, -s) set
what a request that leaves a field out gets, as llama-server's do. Their defaults are
llama.cpp's (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05; -n -1: until a stop or a
full context; -s -1: a random seed per request).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := firstErr(
				mf.validate(),
				sf.validate(),
				ctx.validate(),
				atLeast("--parallel", cfg.Parallel, 1, "1 or more sequences"),
				atLeast("--queue", cfg.Queue, 0, "0 (8 per slot) or more"),
				atLeast("--port", port, 0, "0 (any free port) to 65535"),
			); err != nil {
				return err
			}
			if port > 65535 {
				return flagError("--port", port, "0 (any free port) to 65535")
			}
			if cfg.MaxBody <= 0 {
				return flagError("--max-body", cfg.MaxBody, "a size in bytes > 0")
			}
			stderr := cmd.ErrOrStderr()
			// SIGINT is already wired by main; SIGTERM is how service managers stop a server.
			sigCtx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM)
			defer stop()
			// Bound before the model loads: a port in use should not be reported only after
			// a load that can take minutes.
			ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				return err
			}
			defer ln.Close()
			lm, err := mf.open(stderr)
			if err != nil {
				return err
			}
			defer lm.Close()
			if cfg.Ctx, err = ctx.resolve(lm.model.Config.CtxLen, defaultCtx, stderr); err != nil {
				return err
			}
			if err := checkKVMemory(&lm.model.Config, cfg.Ctx, cfg.Parallel); err != nil {
				return err
			}
			cfg.Model = lm.model
			cfg.Sampling, cfg.NPredict = &sf.so, sf.nPredict
			if sf.seed >= 0 {
				cfg.Sampling.Seed, cfg.FixedSeed = uint64(sf.seed), true
			}
			cfg.ModelName = alias
			if cfg.ModelName == "" {
				cfg.ModelName = modelID(lm.name)
			}
			srv := server.New(cfg)
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
			c := srv.Config()
			fmt.Fprintf(stderr, "mole: serving %s (%s, %d parallel, context %d, queue %d)\n",
				c.ModelName, lm.describe(), c.Parallel, c.Ctx, c.Queue)
			fmt.Fprintf(cmd.OutOrStdout(), "mole: listening on http://%s\n", ln.Addr())

			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			select {
			case err := <-errc:
				srv.Shutdown(context.Background())
				return err
			case <-sigCtx.Done():
			}
			fmt.Fprintln(stderr, "mole: shutting down")
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
	mf.register(cmd)
	sf.register(cmd.Flags(), -1, "tokens a request without max_tokens generates at most (-1 = until a stop or a full context)",
		"seed of requests without one (-1 = a random seed per request)")
	f := cmd.Flags()
	f.StringVar(&host, "host", "127.0.0.1", "address to listen on")
	f.IntVar(&port, "port", 8080, "port to listen on (0: any free port)")
	f.IntVar(&cfg.Parallel, "parallel", 4, "sequences decoded together, each with its own KV cache; -np is an alias")
	ctx.register(f, fmt.Sprintf("context size per sequence in tokens (0 = the model's trained length, at most %d)", defaultCtx))
	f.IntVar(&cfg.Queue, "queue", 0, "requests waiting for a slot before 503 (0 = 8 per slot)")
	f.StringVar(&cfg.APIKey, "api-key", "", "require this key as \"Authorization: Bearer KEY\" on /v1/ endpoints")
	f.Int64Var(&cfg.MaxBody, "max-body", 4<<20, "largest request body in bytes (413 past it)")
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
