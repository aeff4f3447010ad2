package node

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/testutil/poll"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	rpclocal "github.com/cometbft/cometbft/rpc/client/local"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/explorer"
)

func testKey(label string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte("agora-test-key/" + label))
	return ed25519.NewKeyFromSeed(s[:])
}

func keyAddr(k ed25519.PrivateKey) types.Address {
	return types.AddressFromPubKey(k.Public().(ed25519.PublicKey))
}

// initTestNode writes a single-validator node home on free loopback ports,
// with fast blocks, cfg adjusted by mut.
func initTestNode(t *testing.T, mut func(*Config)) (string, Config) {
	t.Helper()
	var ports []int
	for i := 0; i < 3; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	cfg := DefaultConfig()
	cfg.P2P.Laddr = fmt.Sprintf("tcp://127.0.0.1:%d", ports[0])
	cfg.RPC.Laddr = fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	cfg.API.Laddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
	cfg.Consensus.TimeoutCommit = 10 * time.Millisecond
	cfg.Consensus.TimeoutPropose = 2 * time.Second
	cfg.Instrumentation.CometBFTMetrics = false
	mut(&cfg)
	home := filepath.Join(t.TempDir(), "node")
	params := types.DefaultParams()
	op := testKey("operator")
	g := GenesisOptions{ChainID: "agora-test", Params: params, Accounts: []types.GenesisAccount{
		{Address: keyAddr(op), Balance: 1_000_000_000_000},
		{Address: keyAddr(testKey("user")), Balance: 1_000_000_000_000},
	}}
	spec := ValidatorSpec{Home: home, Moniker: "node0", Operator: keyAddr(op), Bonded: params.MinValidatorStake * 10, Config: cfg}
	if _, err := InitNetwork(g, []ValidatorSpec{spec}); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	return home, cfg
}

func startTestNode(t *testing.T, home string, cfg Config) *Node {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := New(home, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	return n
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRetentionPrunesBlocks: a node keeping the last 20 blocks, after many
// more, no longer has the old blocks, their results or their txs in the tx
// index, keeps the recent ones, goes on committing with its state and
// queries intact, and restarts on its pruned store. Its explorer answers
// "pruned" for the old detail and keeps its sums.
func TestRetentionPrunesBlocks(t *testing.T) {
	const keep = 20
	home, cfg := initTestNode(t, func(c *Config) {
		c.Retention.KeepBlocks = keep
		c.Explorer.KeepBlocks = keep
	})
	n := startTestNode(t, home, cfg)
	poll.True(t, time.Minute, "the first blocks", func() bool { return n.app.Height() >= 2 })
	ctx := context.Background()
	c, err := client.New(cfg.RPC.Laddr)
	if err != nil {
		t.Fatal(err)
	}
	user := c.NewSigner(testKey("user"))
	to := keyAddr(testKey("recipient"))
	var sent []*client.TxResult
	for i := 0; i < 3; i++ {
		res, err := user.Send(ctx, &types.MsgSend{To: to, Amount: 1000})
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, res)
	}
	old := sent[0]
	bs := n.Comet().BlockStore()
	// Pruning runs in CometBFT's background pruner; wait until it went far
	// past the txs' blocks.
	poll.True(t, 3*time.Minute, "the block store to be pruned past height 100", func() bool {
		return bs.Base() > 100
	})
	rpc, err := rpchttp.New(cfg.RPC.Laddr)
	if err != nil {
		t.Fatal(err)
	}
	latest := bs.Height()
	if base, r := bs.Base(), n.app.RetainHeight(); base > r || r > n.app.Height()-keep+1 {
		t.Fatalf("block store base %d, app retain height %d at height %d: want base <= retain <= height-%d+1", base, r, n.app.Height(), keep)
	}
	for _, h := range []int64{1, old.Height} {
		if _, err := rpc.Block(ctx, &h); err == nil || !strings.Contains(err.Error(), "lowest height is") {
			t.Fatalf("block %d after pruning: %v", h, err)
		}
	}
	recent := latest - 2
	if b, err := rpc.Block(ctx, &recent); err != nil || b.Block.Height != recent {
		t.Fatalf("recent block %d: %v", recent, err)
	}
	if _, err := rpc.BlockResults(ctx, &recent); err != nil {
		t.Fatalf("recent block results: %v", err)
	}
	poll.True(t, time.Minute, "the old block's results and tx to be pruned", func() bool {
		_, rerr := rpc.BlockResults(ctx, &old.Height)
		_, terr := c.Tx(ctx, old.Hash)
		return rerr != nil && terr != nil
	})
	// State and queries are untouched.
	if acc, err := c.Account(ctx, to); err != nil || acc.Balance != 3000 {
		t.Fatalf("recipient after pruning: %+v %v", acc, err)
	}
	apiURL := "http://" + cfg.API.Laddr
	if st, body := getBody(t, apiURL+"/v1/account/"+to.String()); st != 200 || !strings.Contains(body, `"balance": 3000`) {
		t.Fatalf("API account: %d %s", st, body)
	}
	// The explorer: old detail pruned (and said so), sums intact.
	poll.True(t, time.Minute, "the explorer to prune", func() bool { return n.explorer.Pruned() >= old.Height })
	if st, body := getBody(t, fmt.Sprintf("%s/explorer/api/block/%d", apiURL, old.Height)); st != 404 || !strings.Contains(body, "pruned: this node keeps the last 20 blocks") {
		t.Fatalf("explorer, pruned block: %d %s", st, body)
	}
	if st, body := getBody(t, apiURL+"/explorer/api/tx/"+strings.ToLower(old.Hash)); st != 404 || !strings.Contains(body, "pruned: this node keeps the last 20 blocks") {
		t.Fatalf("explorer, pruned tx: %d %s", st, body)
	}
	// Its txs are ours and one beacon tx per epoch seeded by the validators'
	// VRF; it may be mid-way through a beacon window, so poll until it is not.
	fees := sent[0].Fee + sent[1].Fee + sent[2].Fee
	poll.Until(t, time.Minute, "explorer totals after pruning", func() (bool, string) {
		tot, err := n.explorer.Totals()
		if err != nil {
			return false, err.Error()
		}
		beacons := 0
		for e := 0; ; e++ {
			var v api.EpochView
			if err := c.Query(ctx, fmt.Sprintf("/epoch/%d", e), 0, &v); err != nil || v.SeedHeight > int64(tot.Blocks) {
				break
			}
			if v.SeedSource == "vrf" {
				beacons++
			}
		}
		return tot.Txs == uint64(3+beacons) && tot.Fees == fees, fmt.Sprintf("%+v, %d beacon txs", tot, beacons)
	})

	// Restart on the pruned store: it resumes and keeps committing.
	base := bs.Base()
	n.Stop()
	n = startTestNode(t, home, cfg)
	bs = n.Comet().BlockStore()
	if bs.Base() < base {
		t.Fatalf("base %d after restart, was %d", bs.Base(), base)
	}
	// New clients: CometBFT's stopped RPC server still answers on the old
	// clients' kept-alive connections (from the closed stores).
	if c, err = client.New(cfg.RPC.Laddr); err != nil {
		t.Fatal(err)
	}
	if rpc, err = rpchttp.New(cfg.RPC.Laddr); err != nil {
		t.Fatal(err)
	}
	user = c.NewSigner(testKey("user"))
	res, err := user.Send(ctx, &types.MsgSend{To: to, Amount: 1000})
	if err != nil {
		t.Fatalf("a tx after restart: %v", err)
	}
	if acc, err := c.Account(ctx, to); err != nil || acc.Balance != 4000 {
		t.Fatalf("recipient after restart: %+v %v", acc, err)
	}
	poll.True(t, 3*time.Minute, "pruning to go on after the restart", func() bool { return bs.Base() > res.Height })
	if _, err := rpc.Block(ctx, &res.Height); err == nil {
		t.Fatalf("block %d survived pruning after the restart", res.Height)
	}
}

// TestRetentionWaitsForExplorer: blocks the explorer has not indexed yet are
// never pruned. With its follower paused, the retain height stops at the
// first unindexed block however far the chain goes; resumed, the explorer
// indexes that very block and pruning moves on.
func TestRetentionWaitsForExplorer(t *testing.T) {
	const keep = 10
	home, cfg := initTestNode(t, func(c *Config) { c.Retention.KeepBlocks = keep })
	n := startTestNode(t, home, cfg)
	poll.True(t, time.Minute, "the explorer to index 15 blocks", func() bool { return n.explorer.Height() >= 15 })
	n.stopExplorer() // pause the follower; the index stays open
	<-n.explorerDone
	indexed := n.explorer.Height()
	poll.True(t, 3*time.Minute, "the chain to go 6 windows past the explorer", func() bool {
		return n.app.Height() > indexed+6*keep
	})
	if r := n.app.RetainHeight(); r != indexed+1 {
		t.Fatalf("retain height %d with the explorer at %d: want %d", r, indexed, indexed+1)
	}
	bs := n.Comet().BlockStore()
	if base := bs.Base(); base > indexed+1 {
		t.Fatalf("block store base %d: pruned blocks the explorer has not indexed (at %d)", base, indexed)
	}
	src := rpclocal.New(n.cmt)
	ctx := context.Background()
	next := indexed + 1
	if _, err := explorer.Fetch(ctx, src, next); err != nil {
		t.Fatalf("the explorer's next block %d: %v", next, err)
	}
	// Resume: the explorer catches up from where it stopped, then pruning
	// passes it.
	fctx, cancel := context.WithCancel(context.Background())
	n.stopExplorer, n.explorerDone = cancel, make(chan struct{})
	go func() {
		defer close(n.explorerDone)
		explorer.Follow(fctx, n.explorer, src, 50*time.Millisecond, n.log)
	}()
	poll.True(t, 3*time.Minute, "pruning past the explorer's old height", func() bool {
		return bs.Base() > next+keep && n.explorer.Height() > bs.Base()
	})
	if tot, err := n.explorer.Totals(); err != nil || tot.Blocks != n.explorer.Height() {
		t.Fatalf("explorer totals after resuming: %+v %v", tot, err)
	}
}

func TestRetentionConfig(t *testing.T) {
	for _, c := range []struct {
		node, explorer int64
		err            string
	}{
		{0, 0, ""},
		{10, 0, ""},
		{0, 100_000, ""},
		{-1, 0, "retention.keep_blocks = -1: want 0 (keep all blocks) or at least 10"},
		{5, 0, "retention.keep_blocks = 5: want 0 (keep all blocks) or at least 10"},
		{0, 9, "explorer.keep_blocks = 9: want 0 (keep all blocks) or at least 10"},
	} {
		cfg := DefaultConfig()
		cfg.Retention.KeepBlocks, cfg.Explorer.KeepBlocks = c.node, c.explorer
		err := cfg.Validate()
		if c.err == "" && err != nil || c.err != "" && (err == nil || err.Error() != c.err) {
			t.Errorf("keep %d/%d: %v, want %q", c.node, c.explorer, err, c.err)
		}
	}
}
