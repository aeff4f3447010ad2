// Package node runs an Agora node: CometBFT embedded in-process with the
// Agora state machine behind a local ABCI client (consensus calls serialised,
// CheckTx and queries concurrent), the JSON
// query API and Prometheus metrics.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	cmtnode "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	rpclocal "github.com/cometbft/cometbft/rpc/client/local"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/agoranet/agora/chain/app"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/explorer"
	"github.com/agoranet/agora/internal/dirlock"
	"github.com/agoranet/agora/internal/health"
	"github.com/agoranet/agora/internal/netlimit"
)

// Node is a running Agora node.
type Node struct {
	home   string
	cfg    Config
	log    *slog.Logger
	app    *app.App
	cmt    *cmtnode.Node
	api    *http.Server
	apiLn  net.Listener
	lock   *os.File
	dbs    dbTracker
	reg    *prometheus.Registry
	closed bool

	// health watches consensus for /healthz; stopHealth ends its polling.
	health     *health.Monitor
	stopHealth context.CancelFunc

	explorer     *explorer.Index
	stopExplorer context.CancelFunc
	explorerDone chan struct{}

	retention retention // see retention.go
}

// New opens the node in home with cfg. It takes an exclusive lock on the
// home directory, opens the state, and performs CometBFT's handshake (which
// replays any block the app had not committed before a crash).
func New(home string, cfg Config, logger *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	p := Paths{home}
	if !Initialized(home) {
		return nil, fmt.Errorf("no node in %s: run `agora init --home %s` first", home, home)
	}
	lock, err := lockHome(p.LockFile())
	if err != nil {
		return nil, err
	}
	n := &Node{home: home, cfg: cfg, log: logger, lock: lock, reg: prometheus.NewRegistry()}
	n.health = health.New(n.head, cfg.MaxBlockAge(), "health.max_block_age")
	n.health.Register(n.reg)
	ok := false
	defer func() {
		if !ok {
			n.release()
		}
	}()
	if !cfg.Instrumentation.CometBFTMetrics {
		// Otherwise the default registry (served too) already has them.
		n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}

	tree, err := store.OpenTree(p.StateDir())
	if err != nil {
		return nil, err
	}
	a, err := app.New(tree, logger.With("module", "app"), app.NewMetrics(n.reg))
	if err != nil {
		tree.Close()
		return nil, err
	}
	n.app = a
	a.KeepRecent = cfg.State.KeepRecent

	cc := cfg.cometConfig(home)
	if err := n.prepareRetention(cc); err != nil {
		return nil, err
	}
	if err := cc.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("cometbft config: %w", err)
	}
	nodeKey, err := p2p.LoadNodeKey(p.NodeKeyFile())
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	pv := privval.LoadFilePV(p.PrivValKeyFile(), p.PrivValStateFile())
	if err := setBeaconKey(a, pv, logger); err != nil {
		return nil, err
	}
	cmtLog := cometLogger{l: slog.New(quietHandler{logger.Handler()}).With("module", "cometbft"), onFailure: n.health.Fail}
	cmt, err := cmtnode.NewNode(context.Background(), cc, pv, nodeKey,
		proxy.NewConsensusSyncLocalClientCreator(a),
		cmtnode.DefaultGenesisDocProviderFunc(cc),
		n.dbs.provider,
		cmtnode.DefaultMetricsProvider(cc.Instrumentation),
		cmtLog,
	)
	if err != nil {
		return nil, fmt.Errorf("start cometbft: %w", err)
	}
	n.cmt = cmt
	// The pending-nonce query waits out a commit's check-state rebuild.
	a.SetMempoolLocker(cmt.Mempool())
	ok = true
	return n, nil
}

// head is the latest block this node committed, for the health monitor.
func (n *Node) head(context.Context) (health.Head, error) {
	bs := n.cmt.BlockStore()
	h := health.Head{Height: bs.Height()}
	if meta := bs.LoadBlockMeta(h.Height); meta != nil {
		h.Time = meta.Header.Time
	}
	return h, nil
}

// Health is nil while consensus commits blocks, else why it does not.
func (n *Node) Health() error { return n.health.Check() }

// App returns the state machine.
func (n *Node) App() *app.App { return n.app }

// Comet returns the embedded CometBFT node.
func (n *Node) Comet() *cmtnode.Node { return n.cmt }

// Config returns the node's configuration.
func (n *Node) Config() Config { return n.cfg }

// Start starts consensus, the RPC, p2p and the JSON API.
func (n *Node) Start() error {
	for _, l := range []struct{ addr, flag string }{{n.cfg.RPC.Laddr, "rpc.laddr"}, {n.cfg.P2P.Laddr, "p2p.laddr"}} {
		if err := checkFree(l.addr); err != nil {
			return fmt.Errorf("%s (set %s in agora.toml or --%s): %w", l.addr, l.flag, l.flag, err)
		}
	}
	ln, err := net.Listen("tcp", n.cfg.API.Laddr)
	if err != nil {
		return fmt.Errorf("%s (set api.laddr in agora.toml or --api.laddr): %w", n.cfg.API.Laddr, err)
	}
	n.apiLn = ln
	if err := n.cmt.Start(); err != nil {
		ln.Close()
		return fmt.Errorf("start cometbft: %w", err)
	}
	if n.cfg.Explorer.Enabled {
		if err := n.startExplorer(); err != nil {
			ln.Close()
			n.cmt.Stop()
			n.cmt.Wait()
			return err
		}
	}
	n.startRetention()
	lim := n.cfg.API.Limits
	if lim.WriteTimeout == 0 {
		lim.WriteTimeout = time.Minute // the API streams nothing: a client that does not read is dropped
	}
	n.api, ln = netlimit.Server(ln, n.apiHandler(), lim)
	hctx, stopHealth := context.WithCancel(context.Background())
	n.stopHealth = stopHealth
	go n.health.Run(hctx)
	go func() {
		if err := n.api.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("api server stopped", "err", err)
		}
	}()
	n.log.Info("node started", "chain_id", n.app.ChainID(), "moniker", n.cfg.Moniker,
		"rpc", n.cfg.RPC.Laddr, "p2p", n.cfg.P2P.Laddr, "api", "http://"+ln.Addr().String(),
		"height", n.cmt.BlockStore().Height())
	return nil
}

// Stop shuts the node down: API first, then consensus, then the state store.
func (n *Node) Stop() error {
	if n.closed {
		return nil
	}
	n.closed = true
	var errs []error
	if n.api != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, n.api.Shutdown(ctx))
		cancel()
	}
	if n.stopHealth != nil {
		n.stopHealth()
	}
	n.stopRetention()
	if n.stopExplorer != nil {
		n.retention.setExplorer(nil) // Commit no longer reads it
		n.stopExplorer()
		<-n.explorerDone
		errs = append(errs, n.explorer.Close())
		n.stopExplorer = nil
	}
	if n.cmt != nil && n.cmt.IsRunning() {
		if err := n.cmt.Stop(); err != nil {
			errs = append(errs, err)
		}
		n.cmt.Wait()
	}
	// release closes every database NewNode opened, started or not.
	n.release()
	n.log.Info("node stopped", "home", n.home)
	return errors.Join(errs...)
}

func (n *Node) release() {
	n.dbs.closeAll()
	n.cleanupRetention()
	if n.app != nil {
		n.app.Close()
		n.app = nil
	}
	if n.lock != nil {
		dirlock.Unlock(n.lock)
		n.lock = nil
	}
}

// startExplorer opens the explorer's index and follows the chain into it.
func (n *Node) startExplorer() error {
	x, err := explorer.OpenIndex(Paths{n.home}.ExplorerDir(), n.app.Params().EpochLength)
	if err != nil {
		return err
	}
	x.SetKeepBlocks(n.cfg.Explorer.KeepBlocks)
	// The app's registry: the chain's own messages and its modules' (the
	// job market's), so those are named and described, not "unknown".
	x.SetMsgs(n.app.Msgs())
	n.retention.setExplorer(x)
	ctx, cancel := context.WithCancel(context.Background())
	n.explorer, n.stopExplorer, n.explorerDone = x, cancel, make(chan struct{})
	go func() {
		defer close(n.explorerDone)
		explorer.Follow(ctx, x, rpclocal.New(n.cmt), 500*time.Millisecond, n.log.With("module", "explorer"))
	}()
	return nil
}

// checkFree fails when a tcp://host:port address cannot be listened on.
func checkFree(laddr string) error {
	ln, err := net.Listen("tcp", strings.TrimPrefix(laddr, "tcp://"))
	if err != nil {
		return err
	}
	return ln.Close()
}

// CheckNotRunning fails when another process has the node in home open.
func CheckNotRunning(home string) error {
	p := Paths{home}
	if _, err := os.Stat(p.LockFile()); err != nil {
		return nil // never started
	}
	f, err := lockHome(p.LockFile())
	if err != nil {
		return err
	}
	return dirlock.Unlock(f)
}

// lockHome takes an exclusive advisory lock so two processes never open the
// same node's databases; a second process is told which one holds it.
func lockHome(path string) (*os.File, error) {
	return dirlock.Flock(path, filepath.Dir(filepath.Dir(path)))
}
