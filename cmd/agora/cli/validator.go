package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/health"
	"github.com/agoranet/agora/internal/keyring"
	"github.com/agoranet/agora/internal/netlimit"
	"github.com/agoranet/agora/validator"
)

func validatorCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "validator", Short: "Verification work beside a validator node"}
	var nodeAddr, output, from, backend string
	var doReport bool
	var models []string
	var epoch uint64
	audit := &cobra.Command{
		Use:   "audit --epoch N --model FILE.gguf",
		Short: "Audit an epoch: fetch each provider's sampled openings, check them against the committed roots, re-execute them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := client.New(nodeAddr)
			if err != nil {
				return err
			}
			a, err := validator.NewAuditor(c, models)
			if err != nil {
				return err
			}
			defer a.Close()
			fs, err := a.AuditEpoch(ctxOr(cmd.Context()), epoch)
			if err != nil {
				return err
			}
			if doReport {
				if from == "" {
					return fmt.Errorf("--report needs --from (the validator operator's key)")
				}
				priv, err := keyFrom(g.home, backend, from)
				if err != nil {
					return err
				}
				n, err := validator.Report(ctxOr(cmd.Context()), c.NewSigner(priv), fs)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.errOut, "%d fault report(s) committed\n", n)
			}
			if fs == nil {
				fs = []validator.Finding{}
			}
			return printer{w: g.out, json: output == "json"}.print(fs, func(w io.Writer) {
				if len(fs) == 0 {
					fmt.Fprintf(w, "epoch %d: no commitments to audit\n", epoch)
				}
				for _, f := range fs {
					verdict := "ok"
					if !f.OK {
						verdict = f.Fault
					}
					fmt.Fprintf(w, "epoch %d provider %s receipt %d: %s %s\n", f.Epoch, f.Provider, f.Index, verdict, f.Reason)
				}
			})
		},
	}
	audit.Flags().StringVar(&nodeAddr, "node", defaultNode, "node RPC address")
	audit.Flags().Uint64Var(&epoch, "epoch", 0, "epoch to audit (its seed must exist)")
	audit.Flags().StringSliceVar(&models, "model", nil, "GGUF model files this auditor can re-execute (repeatable)")
	audit.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	audit.Flags().BoolVar(&doReport, "report", false, "submit fault verdicts on chain (MsgReportFault)")
	audit.Flags().StringVar(&from, "from", "", "validator operator key that signs the reports")
	audit.Flags().StringVar(&backend, "keyring", "file", "keyring backend: file or test")
	cmd.AddCommand(audit, validatorStartCmd(g))
	return cmd
}

func validatorStartCmd(g *globals) *cobra.Command {
	var cfgPath string
	c := ValidatorConfig{Node: defaultNode, Keyring: keyring.BackendFile, Listen: "127.0.0.1:8070", RegistryMaxBytes: 8 << 30}
	start := &cobra.Command{
		Use:   "start --model FILE.gguf [--from KEY]",
		Short: "Audit every epoch as its seed appears and report the faults found; audit, challenge and referee compute jobs (the worker beside a validator node)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fc := ValidatorConfig{}
			if err := loadTOML(cfgPath, filepath.Join(g.home, "config", "validator.toml"), &fc); err != nil {
				return err
			}
			mergeConfig(cmd.Flags(), &c, fc)
			logger, err := newLogger(firstNonEmpty(g.logLevel, c.LogLevel), "text", g.errOut)
			if err != nil {
				return err
			}
			chain, err := client.New(c.Node)
			if err != nil {
				return err
			}
			var signer *client.Signer
			if c.Key != "" {
				priv, err := keyFrom(g.home, c.Keyring, c.Key)
				if err != nil {
					return err
				}
				signer = chain.NewSigner(priv)
			} else {
				logger.Warn("no --from key: faults are logged, not reported on chain")
			}
			ln, err := net.Listen("tcp", c.Listen)
			if err != nil {
				return fmt.Errorf("%s (--listen): %w", c.Listen, err)
			}
			auditor, err := validator.NewAuditor(chain, c.Models)
			if err != nil {
				ln.Close()
				return err
			}
			defer auditor.Close()
			if c.RegistryMaxBytes > 0 {
				auditor.FetchRegistered(filepath.Join(g.home, "validator", "registry-models"), c.RegistryMaxBytes)
			}
			reg := registry()
			jv, err := validator.NewJobVerifier(cmd.Context(), chain, signer, validator.JobOptions{
				BlobDir: firstNonEmpty(c.JobBlobDir, filepath.Join(g.home, "validator", "blobs")), MaxSteps: c.JobMaxSteps,
				CacheDir: filepath.Join(g.home, "validator", "wasm-cache"),
			}, reg, logger.With("module", "validator-jobs"))
			if err != nil {
				ln.Close()
				return err
			}
			defer jv.Close(context.Background())
			w := validator.NewWorker(chain, auditor, signer, reg, logger.With("module", "validator")).WithJobs(jv)
			netlimit.Setup(logger, 1).Log(logger)
			// /healthz says whether the chain the worker audits is alive.
			mon := health.New(health.FromStatus(chain.Status), 30*time.Second, "the validator worker's 30s")
			mon.Register(reg)
			mux := http.NewServeMux()
			mux.Handle("GET /healthz", mon)
			mux.Handle("/", w.Handler(reg))
			srv, ln := netlimit.Server(ln, mux, netlimit.Limits{WriteTimeout: time.Minute})
			done := make(chan struct{})
			var cancel context.CancelFunc
			return runDaemon(cmd.Context(), func(ctx context.Context) error {
				ctx, cancel = context.WithCancel(ctx)
				go srv.Serve(ln)
				go mon.Run(ctx)
				go func() { defer close(done); w.Run(ctx) }()
				logger.Info("validator worker started", "node", c.Node, "listen", "http://"+ln.Addr().String(), "models", len(c.Models), "reporting", signer != nil)
				return nil
			}, func() error {
				cancel()
				<-done
				ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
				defer stop()
				logger.Info("validator worker stopped")
				return srv.Shutdown(ctx)
			})
		},
	}
	fs := start.Flags()
	fs.StringVar(&cfgPath, "config", "", "validator.toml (default HOME/config/validator.toml when present)")
	fs.StringVar(&c.Node, "node", c.Node, "node RPC address")
	fs.StringVar(&c.Key, "from", "", "validator operator key that signs fault reports (empty: audit without reporting)")
	fs.StringVar(&c.Keyring, "keyring", c.Keyring, "keyring backend: file or test")
	fs.StringVar(&c.Listen, "listen", c.Listen, "address serving /metrics and /v1/audits")
	fs.StringSliceVar(&c.Models, "model", nil, "GGUF model files this worker can re-execute (repeatable)")
	fs.StringVar(&c.JobBlobDir, "job-blob-dir", "", "where fetched job modules and inputs are kept (default HOME/validator/blobs)")
	fs.Uint64Var(&c.RegistryMaxBytes, "registry-max-bytes", c.RegistryMaxBytes, "fetch a model registered on chain (a network-trained one) that a sampled receipt names, up to this size (0: never)")
	fs.Uint64Var(&c.JobMaxSteps, "job-max-steps", 0, "most job steps re-executed for one audit, bisection move or recomputed state (0: 1048576)")
	return start
}
