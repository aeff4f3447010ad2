package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/explorer"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/internal/keyring"
	"github.com/agoranet/agora/node"
	"github.com/agoranet/agora/provider"
	"github.com/agoranet/agora/validator"
)

// nodeFlags are the agora.toml settings that flags can override.
type nodeFlags struct {
	moniker, apiLaddr, rpcLaddr, p2pLaddr, peers, logFormat, indexer string
	timeoutCommit                                                    time.Duration
	mempoolSize                                                      int
}

func (f *nodeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.moniker, "moniker", "", "node name")
	fs.StringVar(&f.apiLaddr, "api.laddr", "", "JSON API and /metrics listen address, host:port (default 127.0.0.1:1317)")
	fs.StringVar(&f.rpcLaddr, "rpc.laddr", "", "CometBFT RPC listen address (default tcp://127.0.0.1:26657)")
	fs.StringVar(&f.p2pLaddr, "p2p.laddr", "", "P2P listen address (default tcp://127.0.0.1:26656)")
	fs.StringVar(&f.peers, "p2p.persistent_peers", "", "comma-separated id@host:port peers")
	fs.StringVar(&f.logFormat, "log-format", "", "text or json")
	fs.StringVar(&f.indexer, "tx_index.indexer", "", "kv or null")
	fs.DurationVar(&f.timeoutCommit, "consensus.timeout_commit", 0, "pause after each block (block time)")
	fs.IntVar(&f.mempoolSize, "mempool.size", 0, "maximum txs in the mempool")
}

func (f *nodeFlags) apply(fs *pflag.FlagSet, c *node.Config) {
	set := func(name string, dst *string, v string) {
		if fs.Changed(name) {
			*dst = v
		}
	}
	set("moniker", &c.Moniker, f.moniker)
	set("api.laddr", &c.API.Laddr, f.apiLaddr)
	set("rpc.laddr", &c.RPC.Laddr, f.rpcLaddr)
	set("p2p.laddr", &c.P2P.Laddr, f.p2pLaddr)
	set("p2p.persistent_peers", &c.P2P.PersistentPeers, f.peers)
	set("log-format", &c.LogFormat, f.logFormat)
	set("tx_index.indexer", &c.TxIndex.Indexer, f.indexer)
	if fs.Changed("consensus.timeout_commit") {
		c.Consensus.TimeoutCommit = f.timeoutCommit
	}
	if fs.Changed("mempool.size") {
		c.Mempool.Size = f.mempoolSize
	}
}

type initOpts struct {
	chainID, keyringBackend, keyName string
	stake, balance                   uint64
	accounts                         []string
	epochLength                      int64
	nf                               nodeFlags
}

func (o *initOpts) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&o.chainID, "chain-id", "agora-devnet", "chain id")
	fs.StringVar(&o.keyringBackend, "keyring", keyring.BackendFile, "keyring backend: file (encrypted) or test (plain, devnets only)")
	fs.StringVar(&o.keyName, "key-name", "validator", "keyring name of the validator's operator key (created if missing)")
	fs.Uint64Var(&o.stake, "stake", 10_000_000_000, "validator bond at genesis, uagr")
	fs.Uint64Var(&o.balance, "balance", 1_000_000_000_000, "operator's genesis balance, uagr")
	fs.StringSliceVar(&o.accounts, "account", nil, "extra genesis account ADDRESS=UAGR (repeatable)")
	fs.Int64Var(&o.epochLength, "epoch-length", 0, "blocks per epoch (default from params)")
	o.nf.register(fs)
}

func parseAccounts(list []string) ([]types.GenesisAccount, error) {
	var out []types.GenesisAccount
	for _, s := range list {
		a, amt, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("--account %q: want ADDRESS=UAGR", s)
		}
		addr, err := types.ParseAddress(a)
		if err != nil {
			return nil, fmt.Errorf("--account %q: %w", s, err)
		}
		n, err := strconv.ParseUint(amt, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--account %q: amount: %w", s, err)
		}
		out = append(out, types.GenesisAccount{Address: addr, Balance: n})
	}
	return out, nil
}

func getOrAddKey(kr *keyring.Keyring, name string) (keyring.Info, error) {
	info, err := kr.Show(name)
	if err == nil {
		return info, nil
	}
	return kr.Add(name)
}

func runInit(g *globals, o *initOpts, fs *pflag.FlagSet, extra func(*keyring.Keyring) ([]types.GenesisAccount, error)) error {
	if node.Initialized(g.home) {
		return fmt.Errorf("%s already holds a node; use another --home or remove it", g.home)
	}
	kr, err := openKeyring(g.home, o.keyringBackend)
	if err != nil {
		return err
	}
	op, err := getOrAddKey(kr, o.keyName)
	if err != nil {
		return fmt.Errorf("operator key: %w", err)
	}
	accounts, err := parseAccounts(o.accounts)
	if err != nil {
		return err
	}
	if extra != nil {
		more, err := extra(kr)
		if err != nil {
			return err
		}
		accounts = append(accounts, more...)
	}
	accounts = append([]types.GenesisAccount{{Address: op.Address, Balance: o.balance}}, accounts...)
	params := types.DefaultParams()
	if o.epochLength > 0 {
		params.EpochLength = o.epochLength
	}
	cfg := node.DefaultConfig()
	o.nf.apply(fs, &cfg)
	moniker := cfg.Moniker
	if !fs.Changed("moniker") {
		moniker, _ = os.Hostname()
		if moniker == "" {
			moniker = "agora-node"
		}
	}
	_, err = node.InitNetwork(node.GenesisOptions{ChainID: o.chainID, Params: params, Accounts: accounts},
		[]node.ValidatorSpec{{Home: g.home, Moniker: moniker, Operator: op.Address, Bonded: o.stake, Config: cfg}})
	if err != nil {
		return err
	}
	fmt.Fprintf(g.out, "Initialized node %q for chain %s in %s\n  validator operator: %s (key %q, %s keyring)\n  genesis: %s\n  config:  %s\n",
		moniker, o.chainID, g.home, op.Address, o.keyName, o.keyringBackend, node.Paths{Home: g.home}.GenesisFile(), node.Paths{Home: g.home}.ConfigFile())
	if extra == nil { // plain `agora init`; `agora up` starts everything itself
		fmt.Fprintf(g.out, "Start it with: agora start --home %s\n", g.home)
	}
	return nil
}

func initCmd(g *globals) *cobra.Command {
	o := &initOpts{}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a node home: node key, validator key, operator account, genesis and config",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInit(g, o, cmd.Flags(), nil)
		},
	}
	o.register(cmd)
	return cmd
}

func startCmd(g *globals) *cobra.Command {
	var nf nodeFlags
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run a node (CometBFT + Agora state machine + JSON API) until SIGINT/SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := node.LoadConfig(g.home)
			if err != nil {
				return err
			}
			nf.apply(cmd.Flags(), &cfg)
			return runNode(cmd.Context(), g, cfg, nil)
		},
	}
	nf.register(cmd.Flags())
	return cmd
}

// runNode starts a node and blocks until a signal or ctx ends it. ready, if
// set, runs once the node is started.
func runNode(ctx context.Context, g *globals, cfg node.Config, ready func(context.Context, *node.Node, *slog.Logger) (func(), error)) error {
	level := cfg.LogLevel
	if g.logLevel != "" {
		level = g.logLevel
	}
	logger, err := newLogger(level, cfg.LogFormat, g.errOut)
	if err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	tuneGC()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.New(g.home, cfg, logger)
	if err != nil {
		return err
	}
	if err := n.Start(); err != nil {
		n.Stop()
		return err
	}
	cleanup := func() {}
	if ready != nil {
		c, err := ready(ctx, n, logger)
		if err != nil {
			n.Stop()
			return err
		}
		if c != nil {
			cleanup = c
		}
	}
	<-ctx.Done()
	logger.Info("shutting down")
	cleanup()
	return n.Stop()
}

func testnetCmd(g *globals) *cobra.Command {
	var (
		n        int
		out      string
		chainID  string
		basePort int
		stake    uint64
		balance  uint64
	)
	cmd := &cobra.Command{
		Use:   "testnet",
		Short: "Write an N-validator network on 127.0.0.1 (node K: ports base+10K p2p, +1 rpc, +2 api)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 || n > 64 {
				return fmt.Errorf("--validators must be between 1 and 64")
			}
			if out == "" {
				return fmt.Errorf("--out DIR is required")
			}
			params := types.DefaultParams()
			var specs []node.ValidatorSpec
			var accounts []types.GenesisAccount
			for k := 0; k < n; k++ {
				home := node.NodeHome(out, k)
				kr, err := keyring.Open(home, keyring.BackendTest, nil)
				if err != nil {
					return err
				}
				op, err := getOrAddKey(kr, "validator")
				if err != nil {
					return err
				}
				accounts = append(accounts, types.GenesisAccount{Address: op.Address, Balance: balance})
				specs = append(specs, node.ValidatorSpec{
					Home: home, Moniker: fmt.Sprintf("node%d", k), Operator: op.Address, Bonded: stake,
					Config: node.TestnetPorts(k, basePort),
				})
				specs[k].Config.Instrumentation.CometBFTMetrics = true
			}
			if _, err := node.InitNetwork(node.GenesisOptions{ChainID: chainID, Params: params, Accounts: accounts}, specs); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Wrote a %d-validator network for chain %s in %s.\nStart each node (one terminal each):\n", n, chainID, out)
			for k := range specs {
				fmt.Fprintf(g.out, "  agora start --home %s    # rpc %s, api http://%s\n", specs[k].Home, specs[k].Config.RPC.Laddr, specs[k].Config.API.Laddr)
			}
			fmt.Fprintf(g.out, "Each operator key is %q in its node's test keyring (--keyring test --home DIR/nodeK).\n", "validator")
			return nil
		},
	}
	cmd.Flags().IntVar(&n, "validators", 4, "number of validators")
	cmd.Flags().StringVar(&out, "out", "", "output directory")
	cmd.Flags().StringVar(&chainID, "chain-id", "agora-testnet", "chain id")
	cmd.Flags().IntVar(&basePort, "base-port", 26656, "first port")
	cmd.Flags().Uint64Var(&stake, "stake", 10_000_000_000, "each validator's bond, uagr")
	cmd.Flags().Uint64Var(&balance, "balance", 1_000_000_000_000, "each operator's balance, uagr")
	return cmd
}

func upCmd(g *globals) *cobra.Command {
	o := &initOpts{}
	var gwAddr, provAddr, modelPath string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a whole local network in one process: node, validator worker, provider with a built-in model, gateway, explorer",
		Long: "Start a local single-validator chain with its audit worker, a provider serving the built-in demo model\n" +
			"(or --model FILE.gguf), an OpenAI-compatible gateway and the explorer, all in this process. The first run\n" +
			"creates the home (test keyring, funded accounts, the demo model); later runs resume from it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := cmd.Flags()
			if err := node.CheckNotRunning(g.home); err != nil {
				return err
			}
			for _, a := range []struct{ addr, flag string }{{gwAddr, "gateway.laddr"}, {provAddr, "provider.laddr"}} {
				if err := portFree(a.addr); err != nil {
					return fmt.Errorf("%s is busy (--%s): %w", a.addr, a.flag, err)
				}
			}
			if !node.Initialized(g.home) {
				fmt.Fprintf(g.out, "Creating a local network in %s ...\n", g.home)
				o.keyringBackend = keyring.BackendTest
				if err := runInit(g, o, fs, func(kr *keyring.Keyring) ([]types.GenesisAccount, error) {
					var out []types.GenesisAccount
					for _, name := range []string{"demo", "provider"} {
						k, err := getOrAddKey(kr, name)
						if err != nil {
							return nil, err
						}
						out = append(out, types.GenesisAccount{Address: k.Address, Balance: o.balance})
					}
					return out, nil
				}); err != nil {
					return err
				}
			}
			if modelPath == "" {
				modelPath = filepath.Join(g.home, "models", "agora-demo.gguf")
				if _, err := os.Stat(modelPath); err != nil {
					fmt.Fprintf(g.out, "Writing the built-in demo model to %s ...\n", modelPath)
					os.MkdirAll(filepath.Dir(modelPath), 0o755)
					if err := native.WriteRandomModel(modelPath, native.GenOptions{Dim: 128, Layers: 4, Heads: 4, KVHeads: 2, Vocab: 4096, Context: 1024, Seed: 1, Type: gguf.Q8_0, Name: "agora-demo"}); err != nil {
						return err
					}
				}
			}
			cfg, err := node.LoadConfig(g.home)
			if err != nil {
				return err
			}
			o.nf.apply(fs, &cfg)
			return runNode(cmd.Context(), g, cfg, func(ctx context.Context, n *node.Node, logger *slog.Logger) (func(), error) {
				kr, err := keyring.Open(g.home, keyring.BackendTest, nil)
				if err != nil {
					return nil, err
				}
				provKey, err := kr.PrivKey("provider")
				if err != nil {
					return nil, fmt.Errorf("up needs the test-keyring key %q: %w", "provider", err)
				}
				demoKey, err := kr.PrivKey("demo")
				if err != nil {
					return nil, fmt.Errorf("up needs the test-keyring key %q: %w", "demo", err)
				}
				fmt.Fprintf(g.out, "Waiting for the first block ...\n")
				for n.App().Height() < 1 {
					select {
					case <-ctx.Done():
						return nil, ctx.Err()
					case <-time.After(100 * time.Millisecond):
					}
				}
				fmt.Fprintf(g.out, "Loading the model and registering the provider ...\n")
				b, err := provider.NewNativeBackend([]string{modelPath}, native.Options{})
				if err != nil {
					return nil, err
				}
				p, err := provider.New(provider.Config{ChainRPC: cfg.RPC.Laddr, Key: provKey, Listen: provAddr, DataDir: filepath.Join(g.home, "data", "provider"),
					PriceIn: 10, PriceOut: 20, Concurrency: 2}, b, logger.With("module", "provider"), nil)
				if err != nil {
					b.Close()
					return nil, err
				}
				if err := p.Start(ctx); err != nil {
					b.Close()
					return nil, err
				}
				gw, err := gateway.New(gateway.Config{ChainRPC: cfg.RPC.Laddr, Key: demoKey, Listen: gwAddr, DataDir: filepath.Join(g.home, "data", "gateway")}, logger.With("module", "gateway"), nil)
				if err != nil {
					p.Stop()
					b.Close()
					return nil, err
				}
				if err := gw.Start(ctx); err != nil {
					p.Stop()
					b.Close()
					return nil, err
				}
				// The validator worker audits each epoch with the same model
				// and reports faults with the validator's operator key.
				opKey, err := kr.PrivKey(o.keyName)
				if err != nil {
					gw.Stop()
					p.Stop()
					b.Close()
					return nil, fmt.Errorf("up needs the test-keyring key %q: %w", o.keyName, err)
				}
				chain, err := client.New(cfg.RPC.Laddr)
				var auditor *validator.Auditor
				if err == nil {
					auditor, err = validator.NewAuditor(chain, []string{modelPath})
				}
				if err != nil {
					gw.Stop()
					p.Stop()
					b.Close()
					return nil, err
				}
				wctx, stopWorker := context.WithCancel(ctx)
				workerDone := make(chan struct{})
				go func() {
					defer close(workerDone)
					validator.NewWorker(chain, auditor, chain.NewSigner(opKey), nil, logger.With("module", "validator")).Run(wctx)
				}()
				model := strings.TrimSuffix(filepath.Base(modelPath), filepath.Ext(modelPath))
				fmt.Fprintf(g.out, `
Agora is up (chain %[1]s): a validator with its audit worker, a provider serving %[2]q, and a gateway.

  curl %[3]s/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"model":"%[2]s","messages":[{"role":"user","content":"Hello!"}],"max_tokens":32}'

  OpenAI SDK (Python):  OpenAI(base_url="%[3]s/v1", api_key="unused")
  explorer:             %[6]s
  receipts:             curl %[3]s/v1/receipts
  chain status:         curl http://%[4]s/v1/status
  keys:                 agora keys list --keyring test --home %[5]s

Press Ctrl-C to stop; run it again to resume.
`, n.App().ChainID(), model, gw.URL(), cfg.API.Laddr, g.home, explorerURL(cfg))
				return func() {
					stopWorker()
					<-workerDone
					auditor.Close()
					gw.Stop()
					p.Stop()
					b.Close()
				}, nil
			})
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&gwAddr, "gateway.laddr", "127.0.0.1:8080", "gateway listen address")
	cmd.Flags().StringVar(&provAddr, "provider.laddr", "127.0.0.1:8090", "provider listen address")
	cmd.Flags().StringVar(&modelPath, "model", "", "GGUF model to serve (default: the built-in demo model, written on first run)")
	cmd.Flags().Lookup("chain-id").DefValue = "agora-local"
	cmd.Flags().Set("chain-id", "agora-local")
	return cmd
}

// explorerURL is where the node serves the explorer.
func explorerURL(cfg node.Config) string {
	if !cfg.Explorer.Enabled {
		return "disabled ([explorer] enabled = false in agora.toml)"
	}
	return "http://" + cfg.API.Laddr + explorer.Prefix
}

func portFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}
