package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/executor"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/internal/keyring"
	"github.com/agoranet/agora/internal/netlimit"
	"github.com/agoranet/agora/protocol/zkinfer"
	"github.com/agoranet/agora/provider"
	"github.com/agoranet/agora/storer"
)

// ProviderConfig is provider.toml; flags override it.
type ProviderConfig struct {
	Node     string   `toml:"node"`
	Key      string   `toml:"key"`
	Keyring  string   `toml:"keyring"`
	Listen   string   `toml:"listen"`
	Endpoint string   `toml:"endpoint"`
	Models   []string `toml:"models"`
	// ZK ([[zk]]): zk models whose inferences this provider proves
	// (dir, and model: default DIR/model.json).
	ZK []provider.ZKModel `toml:"zk"`
	// An OpenAI-compatible backend instead of native models.
	Backend        string   `toml:"backend"`
	BackendModels  []string `toml:"backend_models"`
	BackendKey     string   `toml:"backend_api_key"`
	BackendContext int      `toml:"backend_context"`
	PriceInput     uint64   `toml:"price_input_per_1k"`
	PriceOutput    uint64   `toml:"price_output_per_1k"`
	Concurrency    int      `toml:"concurrency"`
	Queue          int      `toml:"queue"`
	Threads        int      `toml:"threads"`
	Credit         uint64   `toml:"credit"`
	PricePolicy    string   `toml:"price_policy"` // fixed or adaptive
	PriceFloor     uint64   `toml:"price_floor_pct"`
	PriceCeil      uint64   `toml:"price_ceiling_pct"`
	CPU            string   `toml:"cpu"`
	GPU            string   `toml:"gpu"`
	LogLevel       string   `toml:"log_level"`
	// Limits ([limits]) are the server's connection cap and timeouts;
	// MaxBlockAge is how long without a block before /healthz says 503.
	Limits      netlimit.Limits `toml:"limits"`
	MaxBlockAge time.Duration   `toml:"max_block_age"`

	// how far a request's authentication timestamp may be from this clock
	AuthWindow time.Duration `toml:"auth_window"` // e.g. "2m"
	// DrainTimeout: how long a stop lets requests in flight finish
	// ("10s"); then they are cut short, billing what they generated.
	DrainTimeout time.Duration `toml:"drain_timeout"`

	// Jobs ([jobs]): compute jobs (--wasm), run by the executor in the
	// provider's process, on its listener.
	Jobs JobsConfig `toml:"jobs"`
	// Storage ([storage]): storage deals (--storage), kept and proved by
	// the storer in the provider's process, on its listener.
	Storage StorageConfig `toml:"storage"`
}

// StorageConfig is provider.toml's [storage]: which deals the storer takes.
type StorageConfig struct {
	Enabled       bool   `toml:"enabled"`         // --storage
	MaxTotal      uint64 `toml:"max_total_bytes"` // the most bytes of deals held at once
	MaxCollateral uint64 `toml:"max_collateral"`  // the most collateral one deal locks
	MinPrice      uint64 `toml:"min_price"`       // the least price per epoch taken
}

// JobsConfig is provider.toml's [jobs]: what the executor bids on and how
// much of the machine it uses.
type JobsConfig struct {
	Enabled       bool   `toml:"enabled"`             // --wasm
	Price         uint64 `toml:"price_per_mgas"`      // uagr per million gas
	MaxCollateral uint64 `toml:"max_collateral"`      // the most collateral a bid locks
	Concurrency   int    `toml:"max_concurrent"`      // jobs at once (one core each)
	Queue         int    `toml:"queue"`               // won leases waiting beyond those
	MaxGas        uint64 `toml:"max_gas"`             // the largest gas limit bid on
	MaxPages      uint32 `toml:"max_memory_pages"`    // the largest memory limit bid on (64 KiB pages)
	MaxUpload     uint64 `toml:"max_upload_bytes"`    // the largest module or input taken
	MinBlocks     int64  `toml:"min_deadline_blocks"` // blocks an order's deadline must leave after bidding
	KeepResults   int64  `toml:"keep_results_blocks"` // blocks a finished lease's results are kept for its owner (then collected)
}

// GatewayConfig is gateway.toml; flags override it.
type GatewayConfig struct {
	Node          string            `toml:"node"`
	Key           string            `toml:"key"`
	Keyring       string            `toml:"keyring"`
	Listen        string            `toml:"listen"`
	APIKeys       []string          `toml:"api_keys"`
	Accounts      map[string]string `toml:"accounts"` // API key → keyring name of its paying account
	Deposit       uint64            `toml:"deposit"`
	ChannelBlocks int64             `toml:"channel_blocks"`
	LogLevel      string            `toml:"log_level"`
	// Limits ([limits]) are the server's connection cap and timeouts;
	// MaxBlockAge is how long without a block before /healthz says 503.
	Limits       netlimit.Limits `toml:"limits"`
	MaxBlockAge  time.Duration   `toml:"max_block_age"`
	DrainTimeout time.Duration   `toml:"drain_timeout"` // as the provider's
}

// ValidatorConfig is validator.toml; flags override it.
type ValidatorConfig struct {
	Node     string   `toml:"node"`
	Key      string   `toml:"key"` // operator key that signs fault reports ("" audits without reporting)
	Keyring  string   `toml:"keyring"`
	Listen   string   `toml:"listen"` // /metrics and /v1/audits
	Models   []string `toml:"models"`
	LogLevel string   `toml:"log_level"`
	// Compute jobs: where fetched modules and inputs are kept (default
	// HOME/validator/blobs) and the most steps re-executed for one audit,
	// one bisection move or one recomputed state.
	JobBlobDir  string `toml:"job_blob_dir"`
	JobMaxSteps uint64 `toml:"job_max_steps"`
	// Models registered on chain (chain/models) that a sampled receipt
	// names and this worker does not hold are fetched from their trainer
	// into HOME/validator/registry-models, up to this many bytes each (0:
	// never).
	RegistryMaxBytes uint64 `toml:"registry_max_bytes"`
}

// loadTOML fills cfg from path (or, when path is empty, from def if it exists).
func loadTOML(path, def string, cfg any) error {
	if path == "" {
		if _, err := os.Stat(def); err != nil {
			return nil
		}
		path = def
	}
	if _, err := toml.DecodeFile(path, cfg); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// keyFrom opens the keyring and returns the named private key.
func keyFrom(home, backend, name string) (ed25519.PrivateKey, error) {
	kr, err := openKeyring(home, backend)
	if err != nil {
		return nil, err
	}
	k, err := kr.PrivKey(name)
	return k, keyHint(home, backend, name, err)
}

// runDaemon runs start, waits for SIGINT/SIGTERM, then runs stop.
func runDaemon(ctx context.Context, start func(context.Context) error, stop func() error) error {
	ctx, cancel := signal.NotifyContext(ctxOr(ctx), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return stop()
}

func registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func providerCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "provider", Short: "Serve models to the network and get paid"}
	var cfgPath string
	var zkFlags []string
	c := ProviderConfig{Node: defaultNode, Key: "provider", Keyring: keyring.BackendFile, Listen: "127.0.0.1:8090", Concurrency: 1, Queue: 16}
	start := &cobra.Command{
		Use:   "start",
		Short: "Register on chain and serve the OpenAI API to gateways (native GGUF models)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fc := ProviderConfig{}
			if err := loadTOML(cfgPath, filepath.Join(g.home, "config", "provider.toml"), &fc); err != nil {
				return err
			}
			mergeConfig(cmd.Flags(), &c, fc)
			for _, z := range zkFlags {
				c.ZK = append(c.ZK, provider.ParseZKModel(z))
			}
			jobsOnly := len(c.Models) == 0 && c.Backend == "" && len(c.ZK) == 0
			if jobsOnly && !c.Jobs.Enabled && !c.Storage.Enabled {
				return errors.New("nothing to serve: give --model FILE.gguf or DIR (repeatable), --backend URL with --backend-model NAME, --zk DIR (a registered zk model), --wasm (compute jobs) or --storage (storage deals)")
			}
			if c.PricePolicy != "" && c.PricePolicy != "fixed" && c.PricePolicy != "adaptive" {
				return fmt.Errorf("--price-policy %q: want fixed or adaptive", c.PricePolicy)
			}
			if c.Backend != "" && len(c.BackendModels) == 0 {
				return errors.New("--backend needs at least one --backend-model NAME")
			}
			logger, err := newLogger(firstNonEmpty(g.logLevel, c.LogLevel), "text", g.errOut)
			if err != nil {
				return err
			}
			key, err := keyFrom(g.home, c.Keyring, c.Key)
			if err != nil {
				return fmt.Errorf("provider key %q: %w", c.Key, err)
			}
			netlimit.Setup(logger, 1).Log(logger)
			reg := registry()
			var ex *executor.Executor
			if c.Jobs.Enabled {
				// Jobs only: the executor serves on the listener and
				// registers itself; beside models, the provider does both
				// and mounts the executor's routes.
				// Without models and with storage, the storer serves and
				// registers, and mounts the executor's routes.
				standalone := jobsOnly && !c.Storage.Enabled
				listen := ""
				if standalone {
					listen = c.Listen
				}
				ex, err = executor.New(executor.Config{ChainRPC: c.Node, Key: key, DataDir: filepath.Join(g.home, "data", "executor"),
					Price: c.Jobs.Price, MaxCollateral: c.Jobs.MaxCollateral, MaxConcurrent: c.Jobs.Concurrency, Queue: c.Jobs.Queue,
					MaxGas: c.Jobs.MaxGas, MaxPages: c.Jobs.MaxPages, MaxUpload: c.Jobs.MaxUpload, MinBlocks: c.Jobs.MinBlocks, KeepResults: c.Jobs.KeepResults,
					Listen: listen, Endpoint: c.Endpoint, Register: standalone}, logger, reg)
				if err != nil {
					return err
				}
			}
			var st *storer.Storer
			if c.Storage.Enabled {
				sc := storer.Config{ChainRPC: c.Node, Key: key, DataDir: filepath.Join(g.home, "data", "storer"),
					MaxTotal: c.Storage.MaxTotal, MaxCollateral: c.Storage.MaxCollateral, MinPrice: c.Storage.MinPrice}
				if jobsOnly { // storage (and maybe jobs) without models: the storer serves
					sc.Listen, sc.Endpoint, sc.Register = c.Listen, c.Endpoint, true
					if ex != nil {
						sc.ExtraCapabilities, sc.Mount = []string{"wasm"}, ex.Mount
					}
				}
				if st, err = storer.New(sc, logger, reg); err != nil {
					return err
				}
			}
			if jobsOnly && st != nil {
				return runDaemon(cmd.Context(), func(ctx context.Context) error {
					if ex != nil {
						if err := ex.Start(ctx); err != nil {
							return err
						}
					}
					if err := st.Start(ctx); err != nil {
						if ex != nil {
							ex.Stop()
						}
						return err
					}
					fmt.Fprintf(g.out, "provider %s storing deals at %s (up to %d bytes)\n", st.Address(), st.URL(), c.Storage.MaxTotal)
					if ex != nil {
						fmt.Fprintf(g.out, "  and compute jobs (%d uagr per million gas)\n", c.Jobs.Price)
					}
					return nil
				}, func() error {
					err := st.Stop()
					if ex != nil {
						err = errors.Join(err, ex.Stop())
					}
					return err
				})
			}
			if jobsOnly {
				return runDaemon(cmd.Context(), func(ctx context.Context) error {
					if err := ex.Start(ctx); err != nil {
						return err
					}
					fmt.Fprintf(g.out, "provider %s running compute jobs at %s (%d uagr per million gas)\n", ex.Address(), ex.URL(), c.Jobs.Price)
					return nil
				}, ex.Stop)
			}
			var b provider.Backend
			if c.Backend != "" {
				ob, err := provider.NewOpenAIBackend(c.Backend, c.BackendKey, c.BackendModels, c.BackendContext)
				if err != nil {
					return err
				}
				defer ob.Close()
				b = ob
			} else {
				files, err := modelFiles(c.Models)
				if err != nil {
					return err
				}
				if len(files) > 0 {
					fmt.Fprintf(g.errOut, "loading %d model(s) ...\n", len(files))
				}
				nb, err := provider.NewNativeBackend(files, native.Options{Threads: c.Threads})
				if err != nil {
					return err
				}
				defer nb.Close()
				b = nb
			}
			pc := provider.Config{
				ChainRPC: c.Node, Key: key, Listen: c.Listen, Endpoint: c.Endpoint, DataDir: filepath.Join(g.home, "data", "provider"),
				PriceIn: c.PriceInput, PriceOut: c.PriceOutput, Concurrency: c.Concurrency, Queue: c.Queue, Credit: c.Credit,
				CPU: c.CPU, GPU: c.GPU, AuthWindow: c.AuthWindow, DrainTimeout: c.DrainTimeout,
				Pricing: provider.Pricing{Adaptive: c.PricePolicy == "adaptive", FloorPct: c.PriceFloor, CeilingPct: c.PriceCeil},
				Limits:  c.Limits, MaxBlockAge: c.MaxBlockAge, ZK: c.ZK,
			}
			if ex != nil {
				pc.ExtraCapabilities, pc.Mount = []string{"wasm"}, ex.Mount
			}
			if st != nil {
				mount := pc.Mount
				pc.ExtraCapabilities = append(pc.ExtraCapabilities, "storage")
				pc.Mount = func(mux *http.ServeMux) {
					if mount != nil {
						mount(mux)
					}
					st.Mount(mux)
				}
			}
			p, err := provider.New(pc, b, logger, reg)
			if err != nil {
				return err
			}
			return runDaemon(cmd.Context(), func(ctx context.Context) error {
				if ex != nil {
					if err := ex.Start(ctx); err != nil { // before the server: uploads need the chain's id
						return err
					}
				}
				if st != nil {
					if err := st.Start(ctx); err != nil {
						if ex != nil {
							ex.Stop()
						}
						return err
					}
				}
				if err := p.Start(ctx); err != nil {
					if ex != nil {
						ex.Stop()
					}
					if st != nil {
						st.Stop()
					}
					return err
				}
				fmt.Fprintf(g.out, "provider %s serving at %s\n", p.Address(), p.URL())
				if len(c.ZK) > 0 {
					fmt.Fprintf(g.out, "  and %d zk model(s): proven inference at %s%s\n", len(c.ZK), p.URL(), zkinfer.InferPath)
				}
				if ex != nil {
					fmt.Fprintf(g.out, "  and compute jobs (%d uagr per million gas)\n", c.Jobs.Price)
				}
				if st != nil {
					fmt.Fprintf(g.out, "  and storage deals (up to %d bytes)\n", c.Storage.MaxTotal)
				}
				return nil
			}, func() error {
				err := p.Stop()
				if ex != nil {
					err = errors.Join(err, ex.Stop())
				}
				if st != nil {
					err = errors.Join(err, st.Stop())
				}
				return err
			})
		},
	}
	f := start.Flags()
	f.StringVar(&cfgPath, "config", "", "provider.toml (default HOME/config/provider.toml if present)")
	f.StringVar(&c.Node, "node", c.Node, "chain node RPC address")
	f.StringVar(&c.Key, "key", c.Key, "keyring name of the provider's account key")
	f.StringVar(&c.Keyring, "keyring", c.Keyring, "keyring backend: file or test")
	f.StringVar(&c.Listen, "listen", c.Listen, "listen address")
	f.StringVar(&c.Endpoint, "endpoint", "", "public base URL to register (default http://LISTEN)")
	f.StringSliceVar(&c.Models, "model", nil, "GGUF model file to serve, or a directory: every .gguf in it (repeatable)")
	f.StringArrayVar(&zkFlags, "zk", nil, "zk model to prove inferences of: DIR[,MODEL.json] (circuit and keys in DIR, the int8 model default DIR/model.json), registered by this provider with `agora zk register` (repeatable)")
	f.StringVar(&c.Backend, "backend", "", "OpenAI-compatible backend base URL (e.g. http://127.0.0.1:8081/v1) instead of native models")
	f.StringSliceVar(&c.BackendModels, "backend-model", nil, "model served by --backend (repeatable): NAME, or NAME=FILE.gguf for a model validators can verify (the GGUF of the weights the backend serves)")
	f.StringVar(&c.BackendKey, "backend-api-key", "", "bearer key for --backend")
	f.IntVar(&c.BackendContext, "backend-context", 4096, "context length of --backend models")
	f.Uint64Var(&c.PriceInput, "price-input", 0, "uagr per 1,000 prompt tokens")
	f.Uint64Var(&c.PriceOutput, "price-output", 0, "uagr per 1,000 completion tokens")
	f.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "concurrent generations")
	f.IntVar(&c.Queue, "queue", c.Queue, "queued requests before answering 429")
	f.IntVar(&c.Threads, "threads", 0, "matmul threads per generation (default GOMAXPROCS)")
	f.Uint64Var(&c.Credit, "credit", 0, "uagr a channel may owe beyond its best voucher (default 1,000,000)")
	f.DurationVar(&c.AuthWindow, "auth-window", 0, "how far a request's authentication timestamp may be from this clock (default 2m)")
	f.StringVar(&c.PricePolicy, "price-policy", "fixed", "fixed, or adaptive: raise prices when busy and lower them when idle, once per epoch")
	f.Uint64Var(&c.PriceFloor, "price-floor-pct", 50, "adaptive pricing: lowest price, % of the base prices")
	f.Uint64Var(&c.PriceCeil, "price-ceiling-pct", 400, "adaptive pricing: highest price, % of the base prices")
	f.StringVar(&c.CPU, "cpu", "", "CPU description to register")
	f.StringVar(&c.GPU, "gpu", "", "GPU description to register")
	limitFlags(f, &c.Limits, &c.MaxBlockAge)
	f.DurationVar(&c.DrainTimeout, "drain-timeout", 10*time.Second, "on stop, how long requests in flight may finish before they are cut short (each billing what it generated)")
	f.BoolVar(&c.Jobs.Enabled, "wasm", false, "also run compute jobs (WebAssembly): bid on fitting orders, run the leases won (alone, without --model or --backend: a jobs-only provider)")
	f.Uint64Var(&c.Jobs.Price, "job-price", 1000, "compute jobs: bid price, uagr per million gas")
	f.Uint64Var(&c.Jobs.MaxCollateral, "job-max-collateral", 10_000_000, "compute jobs: the most collateral one bid locks, uagr")
	f.IntVar(&c.Jobs.Concurrency, "job-concurrency", 1, "compute jobs run at once (each uses one core)")
	f.IntVar(&c.Jobs.Queue, "job-queue", 4, "compute jobs won and waiting beyond those (no bids while full)")
	f.Uint64Var(&c.Jobs.MaxGas, "job-max-gas", 100_000_000_000, "compute jobs: the largest gas limit to bid on")
	f.Uint32Var(&c.Jobs.MaxPages, "job-max-pages", 4096, "compute jobs: the largest memory limit to bid on, 64 KiB pages (memory use is at most concurrency × this)")
	f.Uint64Var(&c.Jobs.MaxUpload, "job-max-upload", 256<<20, "compute jobs: the largest module or input taken, bytes")
	f.Int64Var(&c.Jobs.KeepResults, "job-keep-results", 100_000, "compute jobs: blocks a finished lease's results (and sealed compute-to-data results) are kept for the owner to fetch; unused blobs are then deleted")
	f.BoolVar(&c.Storage.Enabled, "storage", false, "also take storage deals: keep the blobs clients upload and prove them every epoch (alone, without --model or --backend: a storage-only provider)")
	f.Uint64Var(&c.Storage.MaxTotal, "storage-max-total", 1<<30, "storage deals: the most bytes held at once")
	f.Uint64Var(&c.Storage.MaxCollateral, "storage-max-collateral", 100_000_000, "storage deals: the most collateral one deal locks, uagr")
	f.Uint64Var(&c.Storage.MinPrice, "storage-min-price", 1, "storage deals: the least price per epoch taken, uagr")
	cmd.AddCommand(start)
	return cmd
}

func gatewayCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "gateway", Short: "OpenAI-compatible front for clients"}
	var cfgPath string
	c := GatewayConfig{Node: defaultNode, Key: "client", Keyring: keyring.BackendFile, Listen: "127.0.0.1:8080", Deposit: 10_000_000, ChannelBlocks: 2000}
	start := &cobra.Command{
		Use:   "start",
		Short: "Serve /v1/chat/completions, /v1/completions, /v1/models and /v1/receipts, paying providers from the client account",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fc := GatewayConfig{}
			if err := loadTOML(cfgPath, filepath.Join(g.home, "config", "gateway.toml"), &fc); err != nil {
				return err
			}
			mergeConfig(cmd.Flags(), &c, fc)
			logger, err := newLogger(firstNonEmpty(g.logLevel, c.LogLevel), "text", g.errOut)
			if err != nil {
				return err
			}
			key, err := keyFrom(g.home, c.Keyring, c.Key)
			if err != nil {
				return fmt.Errorf("client key %q: %w", c.Key, err)
			}
			netlimit.Setup(logger, 2).Log(logger) // its clients' connections and its own to providers
			accounts := map[string]ed25519.PrivateKey{}
			for apiKey, name := range c.Accounts {
				k, err := keyFrom(g.home, c.Keyring, name)
				if err != nil {
					return fmt.Errorf("account %q for an API key: %w", name, err)
				}
				accounts[apiKey] = k
			}
			gw, err := gateway.New(gateway.Config{
				ChainRPC: c.Node, Key: key, Listen: c.Listen, DataDir: filepath.Join(g.home, "data", "gateway"),
				APIKeys: c.APIKeys, Accounts: accounts, Deposit: c.Deposit, ChannelBlocks: c.ChannelBlocks,
				Limits: c.Limits, MaxBlockAge: c.MaxBlockAge, DrainTimeout: c.DrainTimeout,
			}, logger, registry())
			if err != nil {
				return err
			}
			return runDaemon(cmd.Context(), func(ctx context.Context) error {
				if err := gw.Start(ctx); err != nil {
					return err
				}
				fmt.Fprintf(g.out, "gateway for client %s at %s/v1\n", gw.Address(), gw.URL())
				return nil
			}, gw.Stop)
		},
	}
	f := start.Flags()
	f.StringVar(&cfgPath, "config", "", "gateway.toml (default HOME/config/gateway.toml if present)")
	f.StringVar(&c.Node, "node", c.Node, "chain node RPC address")
	f.StringVar(&c.Key, "key", c.Key, "keyring name of the paying client account")
	f.StringVar(&c.Keyring, "keyring", c.Keyring, "keyring backend: file or test")
	f.StringVar(&c.Listen, "listen", c.Listen, "listen address")
	f.StringSliceVar(&c.APIKeys, "api-key", nil, "accepted bearer API key paying from --key (repeatable; none: no auth)")
	f.StringToStringVar(&c.Accounts, "account", nil, "API key paying from its own account: APIKEY=KEYNAME (repeatable)")
	f.Uint64Var(&c.Deposit, "deposit", c.Deposit, "uagr deposited in each new channel")
	f.Int64Var(&c.ChannelBlocks, "channel-blocks", c.ChannelBlocks, "channel lifetime in blocks")
	limitFlags(f, &c.Limits, &c.MaxBlockAge)
	f.DurationVar(&c.DrainTimeout, "drain-timeout", 10*time.Second, "on stop, how long requests in flight may finish before streams are cut short (each ending with the receipt for what it got)")
	cmd.AddCommand(start)
	return cmd
}

// mergeConfig applies file values for every flag the user did not set.
func mergeConfig(fs *pflag.FlagSet, dst any, file any) {
	set := func(flag string, apply func()) {
		if !fs.Changed(flag) {
			apply()
		}
	}
	switch d := dst.(type) {
	case *ProviderConfig:
		f := file.(ProviderConfig)
		set("node", func() { d.Node = firstNonEmpty(f.Node, d.Node) })
		set("key", func() { d.Key = firstNonEmpty(f.Key, d.Key) })
		set("keyring", func() { d.Keyring = firstNonEmpty(f.Keyring, d.Keyring) })
		set("listen", func() { d.Listen = firstNonEmpty(f.Listen, d.Listen) })
		set("endpoint", func() { d.Endpoint = firstNonEmpty(f.Endpoint, d.Endpoint) })
		set("model", func() { d.Models = fileList(f.Models, d.Models) })
		set("zk", func() { d.ZK = f.ZK })
		set("price-input", func() { d.PriceInput = fileOr(f.PriceInput, d.PriceInput) })
		set("price-output", func() { d.PriceOutput = fileOr(f.PriceOutput, d.PriceOutput) })
		set("concurrency", func() { d.Concurrency = fileOr(f.Concurrency, d.Concurrency) })
		set("queue", func() { d.Queue = fileOr(f.Queue, d.Queue) })
		set("threads", func() { d.Threads = fileOr(f.Threads, d.Threads) })
		set("credit", func() { d.Credit = fileOr(f.Credit, d.Credit) })
		set("auth-window", func() { d.AuthWindow = fileOr(f.AuthWindow, d.AuthWindow) })
		set("cpu", func() { d.CPU = firstNonEmpty(f.CPU, d.CPU) })
		set("gpu", func() { d.GPU = firstNonEmpty(f.GPU, d.GPU) })
		set("price-policy", func() { d.PricePolicy = firstNonEmpty(f.PricePolicy, d.PricePolicy) })
		set("price-floor-pct", func() { d.PriceFloor = fileOr(f.PriceFloor, d.PriceFloor) })
		set("price-ceiling-pct", func() { d.PriceCeil = fileOr(f.PriceCeil, d.PriceCeil) })
		set("backend", func() { d.Backend = firstNonEmpty(f.Backend, d.Backend) })
		set("backend-model", func() { d.BackendModels = fileList(f.BackendModels, d.BackendModels) })
		set("backend-api-key", func() { d.BackendKey = firstNonEmpty(f.BackendKey, d.BackendKey) })
		set("backend-context", func() { d.BackendContext = fileOr(f.BackendContext, d.BackendContext) })
		mergeLimits(fs, &d.Limits, &d.MaxBlockAge, f.Limits, f.MaxBlockAge)
		set("drain-timeout", func() { d.DrainTimeout = fileOr(f.DrainTimeout, d.DrainTimeout) })
		set("wasm", func() { d.Jobs.Enabled = d.Jobs.Enabled || f.Jobs.Enabled })
		set("job-price", func() { d.Jobs.Price = fileOr(f.Jobs.Price, d.Jobs.Price) })
		set("job-max-collateral", func() { d.Jobs.MaxCollateral = fileOr(f.Jobs.MaxCollateral, d.Jobs.MaxCollateral) })
		set("job-concurrency", func() { d.Jobs.Concurrency = fileOr(f.Jobs.Concurrency, d.Jobs.Concurrency) })
		set("job-queue", func() { d.Jobs.Queue = fileOr(f.Jobs.Queue, d.Jobs.Queue) })
		set("job-max-gas", func() { d.Jobs.MaxGas = fileOr(f.Jobs.MaxGas, d.Jobs.MaxGas) })
		set("job-max-pages", func() { d.Jobs.MaxPages = fileOr(f.Jobs.MaxPages, d.Jobs.MaxPages) })
		set("job-max-upload", func() { d.Jobs.MaxUpload = fileOr(f.Jobs.MaxUpload, d.Jobs.MaxUpload) })
		set("job-keep-results", func() { d.Jobs.KeepResults = fileOr(f.Jobs.KeepResults, d.Jobs.KeepResults) })
		d.Jobs.MinBlocks = fileOr(f.Jobs.MinBlocks, d.Jobs.MinBlocks)
		set("storage", func() { d.Storage.Enabled = d.Storage.Enabled || f.Storage.Enabled })
		set("storage-max-total", func() { d.Storage.MaxTotal = fileOr(f.Storage.MaxTotal, d.Storage.MaxTotal) })
		set("storage-max-collateral", func() { d.Storage.MaxCollateral = fileOr(f.Storage.MaxCollateral, d.Storage.MaxCollateral) })
		set("storage-min-price", func() { d.Storage.MinPrice = fileOr(f.Storage.MinPrice, d.Storage.MinPrice) })
		d.LogLevel = firstNonEmpty(d.LogLevel, f.LogLevel)
	case *ValidatorConfig:
		f := file.(ValidatorConfig)
		set("node", func() { d.Node = firstNonEmpty(f.Node, d.Node) })
		set("from", func() { d.Key = firstNonEmpty(f.Key, d.Key) })
		set("keyring", func() { d.Keyring = firstNonEmpty(f.Keyring, d.Keyring) })
		set("listen", func() { d.Listen = firstNonEmpty(f.Listen, d.Listen) })
		set("model", func() { d.Models = fileList(f.Models, d.Models) })
		set("job-blob-dir", func() { d.JobBlobDir = firstNonEmpty(f.JobBlobDir, d.JobBlobDir) })
		set("job-max-steps", func() { d.JobMaxSteps = fileOr(f.JobMaxSteps, d.JobMaxSteps) })
		set("registry-max-bytes", func() { d.RegistryMaxBytes = fileOr(f.RegistryMaxBytes, d.RegistryMaxBytes) })
		d.LogLevel = firstNonEmpty(d.LogLevel, f.LogLevel)
	case *GatewayConfig:
		f := file.(GatewayConfig)
		set("node", func() { d.Node = firstNonEmpty(f.Node, d.Node) })
		set("key", func() { d.Key = firstNonEmpty(f.Key, d.Key) })
		set("keyring", func() { d.Keyring = firstNonEmpty(f.Keyring, d.Keyring) })
		set("listen", func() { d.Listen = firstNonEmpty(f.Listen, d.Listen) })
		set("api-key", func() { d.APIKeys = fileList(f.APIKeys, d.APIKeys) })
		set("account", func() {
			if len(f.Accounts) > 0 {
				d.Accounts = f.Accounts
			}
		})
		set("deposit", func() { d.Deposit = fileOr(f.Deposit, d.Deposit) })
		set("channel-blocks", func() { d.ChannelBlocks = fileOr(f.ChannelBlocks, d.ChannelBlocks) })
		mergeLimits(fs, &d.Limits, &d.MaxBlockAge, f.Limits, f.MaxBlockAge)
		set("drain-timeout", func() { d.DrainTimeout = fileOr(f.DrainTimeout, d.DrainTimeout) })
		d.LogLevel = firstNonEmpty(d.LogLevel, f.LogLevel)
	}
}

// limitFlags registers a server's limit flags (the TOML's [limits] and
// max_block_age).
func limitFlags(f *pflag.FlagSet, l *netlimit.Limits, maxBlockAge *time.Duration) {
	f.IntVar(&l.MaxConnections, "max-connections", 0, "connections open at once (default: this server's share of the descriptor budget)")
	f.DurationVar(&l.BodyTimeout, "body-timeout", 0, "time a client has to send a request body (default 30s)")
	f.DurationVar(&l.IdleTimeout, "idle-timeout", 0, "idle keep-alive connections are closed after this long (default 60s)")
	f.DurationVar(maxBlockAge, "max-block-age", 0, "/healthz reports the chain stalled after this long without a block (default 30s)")
}

// mergeLimits applies the file's limits for every limit flag not set.
func mergeLimits(fs *pflag.FlagSet, d *netlimit.Limits, dAge *time.Duration, f netlimit.Limits, fAge time.Duration) {
	if !fs.Changed("max-connections") {
		d.MaxConnections = fileOr(f.MaxConnections, d.MaxConnections)
	}
	if !fs.Changed("body-timeout") {
		d.BodyTimeout = fileOr(f.BodyTimeout, d.BodyTimeout)
	}
	if !fs.Changed("idle-timeout") {
		d.IdleTimeout = fileOr(f.IdleTimeout, d.IdleTimeout)
	}
	if !fs.Changed("max-block-age") {
		*dAge = fileOr(fAge, *dAge)
	}
	d.HeaderTimeout = fileOr(f.HeaderTimeout, d.HeaderTimeout)
	d.WriteTimeout = fileOr(f.WriteTimeout, d.WriteTimeout)
}

// fileList returns the file's list when it has one, else the current one.
func fileList(file, cur []string) []string {
	if len(file) > 0 {
		return file
	}
	return cur
}

func firstNonEmpty(a, b string) string {
	if strings.TrimSpace(a) != "" {
		return a
	}
	return b
}

// fileOr returns the file's value when it sets one (non-zero), else the
// current (default) value: a file may lower a default as well as raise it.
func fileOr[T comparable](file, cur T) T {
	var zero T
	if file != zero {
		return file
	}
	return cur
}

// modelFiles expands the provider's model paths: a file stands for itself, a
// directory for every .gguf file in it (sorted by name).
func modelFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", p, err)
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		found, err := filepath.Glob(filepath.Join(p, "*.gguf"))
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("model directory %s has no .gguf file", p)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}
