package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/explorer"
	"github.com/agoranet/agora/internal/keyring"
	"github.com/agoranet/agora/internal/netlimit"
	"github.com/agoranet/agora/node"
)

// nodeFlags are the agora.toml settings that flags can override.
type nodeFlags struct {
	moniker, apiLaddr, rpcLaddr, p2pLaddr, peers, logFormat, indexer string
	timeoutCommit                                                    time.Duration
	mempoolSize                                                      int
	apiMaxConns, rpcMaxConns                                         int
	apiBodyTimeout, maxBlockAge                                      time.Duration
	keepBlocks, explorerKeepBlocks                                   int64
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
	fs.IntVar(&f.apiMaxConns, "api.max_connections", 0, "JSON API connections open at once (default: its share of the descriptor budget)")
	fs.DurationVar(&f.apiBodyTimeout, "api.body_timeout", 0, "time a JSON API client has to send a request body (default 30s)")
	fs.IntVar(&f.rpcMaxConns, "rpc.max_open_connections", 0, "CometBFT RPC connections open at once (default: its share of the descriptor budget)")
	fs.DurationVar(&f.maxBlockAge, "health.max_block_age", 0, "/healthz reports the chain stalled after this long without a block (default 10 block times, at least 10s)")
	fs.Int64Var(&f.keepBlocks, "retention.keep_blocks", 0, "keep only the last N blocks, their results and tx index entries (default 0: keep all)")
	fs.Int64Var(&f.explorerKeepBlocks, "explorer.keep_blocks", 0, "explorer keeps block and tx detail of only the last N blocks, and all its sums (default 0: keep all)")
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
	if fs.Changed("api.max_connections") {
		c.API.Limits.MaxConnections = f.apiMaxConns
	}
	if fs.Changed("api.body_timeout") {
		c.API.Limits.BodyTimeout = f.apiBodyTimeout
	}
	if fs.Changed("rpc.max_open_connections") {
		c.RPC.MaxOpenConnections = f.rpcMaxConns
	}
	if fs.Changed("health.max_block_age") {
		c.Health.MaxBlockAge = f.maxBlockAge
	}
	if fs.Changed("retention.keep_blocks") {
		c.Retention.KeepBlocks = f.keepBlocks
	}
	if fs.Changed("explorer.keep_blocks") {
		c.Explorer.KeepBlocks = f.explorerKeepBlocks
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
		// The beacon window must fit in an epoch (chain/epochs beacon.go).
		params.BeaconWindow = min(params.BeaconWindow, params.EpochLength)
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
	// Only init takes --keyring: `agora up` always uses the test keyring.
	cmd.Flags().StringVar(&o.keyringBackend, "keyring", keyring.BackendFile, "keyring backend: file (encrypted) or test (plain, devnets only)")
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
			return runNode(cmd.Context(), g, cfg, 2, nil) // the API and CometBFT's RPC
		},
	}
	nf.register(cmd.Flags())
	return cmd
}

// runNode starts a node and blocks until a signal or ctx ends it. ready, if
// set, runs once the node is started.
// runNode runs the node until a signal; shares is the number of servers
// (the node's API and RPC among them) that share the process's descriptors.
func runNode(ctx context.Context, g *globals, cfg node.Config, shares int, ready func(context.Context, *node.Node, *slog.Logger) (func(), error)) error {
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
	budget := netlimit.Setup(logger, shares)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.New(g.home, cfg, logger)
	if err != nil {
		return err
	}
	budget.Log(logger)
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
