// Package testnet starts real in-process Agora networks on 127.0.0.1 with
// free ports, for end-to-end tests.
package testnet

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/node"
)

// Network is a set of validator nodes sharing a genesis.
type Network struct {
	t       testing.TB
	ChainID string
	Params  types.Params
	Homes   []string
	Configs []node.Config
	Nodes   []*node.Node // nil while a node is stopped
	// Operators are the validators' operator keys; Accounts are funded users.
	Operators []ed25519.PrivateKey
	Accounts  []ed25519.PrivateKey
}

// Options shape a test network.
type Options struct {
	Validators    int
	Accounts      int    // funded user accounts
	Balance       uint64 // each account's genesis balance
	BlockTime     time.Duration
	Params        *types.Params
	LogLevel      slog.Level
	ValidatorBond uint64
	MempoolSize   int // txs the mempool holds (0: the node default)
}

// Key derives a deterministic test key from a label.
func Key(label string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("agora-test-key/" + label))
	return ed25519.NewKeyFromSeed(seed[:])
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1.
func FreePorts(t testing.TB, n int) []int {
	var lns []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// New writes a network in a temp dir and starts every node.
func New(t testing.TB, o Options) *Network {
	t.Helper()
	if o.Validators == 0 {
		o.Validators = 1
	}
	if o.Balance == 0 {
		o.Balance = 1_000_000_000_000
	}
	if o.BlockTime == 0 {
		o.BlockTime = 200 * time.Millisecond
	}
	params := types.DefaultParams()
	if o.Params != nil {
		params = *o.Params
	}
	if o.ValidatorBond == 0 {
		o.ValidatorBond = params.MinValidatorStake * 10
	}
	dir := t.TempDir()
	nw := &Network{t: t, ChainID: "agora-test", Params: params}
	g := node.GenesisOptions{ChainID: nw.ChainID, Params: params}
	for i := 0; i < o.Accounts; i++ {
		k := Key(fmt.Sprintf("account-%d", i))
		nw.Accounts = append(nw.Accounts, k)
		g.Accounts = append(g.Accounts, types.GenesisAccount{Address: addr(k), Balance: o.Balance})
	}
	ports := FreePorts(t, 3*o.Validators)
	var specs []node.ValidatorSpec
	for i := 0; i < o.Validators; i++ {
		k := Key(fmt.Sprintf("operator-%d", i))
		nw.Operators = append(nw.Operators, k)
		g.Accounts = append(g.Accounts, types.GenesisAccount{Address: addr(k), Balance: o.Balance})
		cfg := node.DefaultConfig()
		cfg.P2P.Laddr = fmt.Sprintf("tcp://127.0.0.1:%d", ports[3*i])
		cfg.RPC.Laddr = fmt.Sprintf("tcp://127.0.0.1:%d", ports[3*i+1])
		cfg.API.Laddr = fmt.Sprintf("127.0.0.1:%d", ports[3*i+2])
		cfg.Consensus.TimeoutCommit = o.BlockTime
		cfg.Consensus.TimeoutPropose = 2 * time.Second
		cfg.Instrumentation.CometBFTMetrics = false
		if o.MempoolSize > 0 {
			cfg.Mempool.Size = o.MempoolSize
		}
		home := node.NodeHome(dir, i)
		specs = append(specs, node.ValidatorSpec{Home: home, Moniker: fmt.Sprintf("node%d", i), Operator: addr(k), Bonded: o.ValidatorBond, Config: cfg})
		nw.Homes = append(nw.Homes, home)
	}
	if _, err := node.InitNetwork(g, specs); err != nil {
		t.Fatalf("init network: %v", err)
	}
	for _, h := range nw.Homes {
		cfg, err := node.LoadConfig(h)
		if err != nil {
			t.Fatal(err)
		}
		nw.Configs = append(nw.Configs, cfg)
	}
	nw.Nodes = make([]*node.Node, o.Validators)
	for i := range nw.Homes {
		nw.Start(i, o.LogLevel)
	}
	t.Cleanup(nw.StopAll)
	return nw
}

func addr(k ed25519.PrivateKey) types.Address {
	return types.AddressFromPubKey(k.Public().(ed25519.PublicKey))
}

// Addr returns the address of key k.
func Addr(k ed25519.PrivateKey) types.Address { return addr(k) }

// Start (re)starts node i.
func (nw *Network) Start(i int, level slog.Level) {
	nw.t.Helper()
	if level == 0 {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", i)
	n, err := node.New(nw.Homes[i], nw.Configs[i], logger)
	if err != nil {
		nw.t.Fatalf("node %d: %v", i, err)
	}
	if err := n.Start(); err != nil {
		nw.t.Fatalf("node %d: %v", i, err)
	}
	nw.Nodes[i] = n
}

// Stop stops node i.
func (nw *Network) Stop(i int) {
	if nw.Nodes[i] != nil {
		if err := nw.Nodes[i].Stop(); err != nil {
			nw.t.Logf("stop node %d: %v", i, err)
		}
		nw.Nodes[i] = nil
	}
}

// StopAll stops every running node.
func (nw *Network) StopAll() {
	for i := range nw.Nodes {
		nw.Stop(i)
	}
}

// Client returns a client of node i's RPC.
func (nw *Network) Client(i int) *client.Client {
	c, err := client.New(nw.Configs[i].RPC.Laddr)
	if err != nil {
		nw.t.Fatal(err)
	}
	return c
}

// Height returns node i's latest height committed by both CometBFT and the app.
func (nw *Network) Height(i int) int64 {
	return min(nw.Nodes[i].Comet().BlockStore().Height(), nw.Nodes[i].App().Height())
}

// WaitHeight waits until node i reaches height h.
func (nw *Network) WaitHeight(i int, h int64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		if nw.Nodes[i] != nil && nw.Height(i) >= h {
			return nil
		}
		select {
		case <-ctx.Done():
			got := int64(-1)
			if nw.Nodes[i] != nil {
				got = nw.Height(i)
			}
			return fmt.Errorf("node %d did not reach height %d within %s (at %d)", i, h, timeout, got)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
