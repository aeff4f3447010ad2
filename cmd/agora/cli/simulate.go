package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/internal/netlimit"
	"github.com/agoranet/agora/internal/oaisim"
)

// simulateCmd serves a GGUF model the way a GPU inference server would —
// OpenAI /v1/completions with log-probs, logits slightly noisy — so the
// tolerance path can be tried without a GPU.
func simulateCmd(g *globals) *cobra.Command {
	var path, name, listen, writer string
	var noise float64
	cmd := &cobra.Command{
		Use:   "simulate --model FILE",
		Short: "Serve a GGUF model like a GPU server would (OpenAI /v1/completions with log-probs, noisy logits), to try the tolerance path",
		Long: "Serve a GGUF model like a GPU inference server would: OpenAI-compatible /v1/completions (prompt as text or\n" +
			"token ids, logprobs as llama.cpp reports them) over the native engine with Gaussian noise of --noise on every\n" +
			"logit, so answers are close to but not bit-identical with a re-execution. Put a provider in front of it with\n" +
			"--backend http://LISTEN/v1 --backend-model NAME=FILE.gguf. --prefill-writer CHEAP.gguf makes it cheat: the cheap\n" +
			"model writes every token and FILE only scores them (validators catch it).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return errors.New("--model FILE.gguf is required")
			}
			if !(noise >= 0) {
				return fmt.Errorf("--noise %v: a standard deviation is not negative", noise)
			}
			logger, err := newLogger(g.logLevel, "text", g.errOut)
			if err != nil {
				return err
			}
			m, err := native.Load(path, native.Options{})
			if err != nil {
				return err
			}
			defer m.Close()
			opts := oaisim.Options{Noise: noise}
			if writer != "" {
				w, err := native.Load(writer, native.Options{})
				if err != nil {
					return err
				}
				defer w.Close()
				opts.Writer = w
			}
			if name == "" {
				name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
			}
			srv, err := oaisim.New(name, m, opts)
			if err != nil {
				return err
			}
			mux := http.NewServeMux()
			mux.Handle("/v1/", srv.Handler())
			mux.Handle("GET /metrics", promhttp.HandlerFor(registry(), promhttp.HandlerOpts{}))
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			netlimit.Setup(logger, 1).Log(logger)
			hs, ln := netlimit.Server(ln, mux, netlimit.Limits{})
			return runDaemon(cmd.Context(), func(context.Context) error {
				go hs.Serve(ln)
				logger.Info("simulated GPU backend serving", "model", name, "url", "http://"+ln.Addr().String()+"/v1", "noise", noise, "prefill_attack", writer != "")
				fmt.Fprintf(g.out, "serving %s at http://%s/v1 (noise σ=%g)\n", name, ln.Addr(), noise)
				return nil
			}, func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				return hs.Shutdown(ctx)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&path, "model", "", "GGUF model to serve")
	f.StringVar(&name, "name", "", "model name to answer to (default: the file name without extension)")
	f.StringVar(&listen, "listen", "127.0.0.1:8081", "listen address")
	f.Float64Var(&noise, "noise", 0.02, "σ of the Gaussian noise added to every logit")
	f.StringVar(&writer, "prefill-writer", "", "a cheaper GGUF (same tokenizer) that writes the tokens while --model scores them: a prefill attack")
	return cmd
}
