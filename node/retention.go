package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/rpc/grpc/client/privileged"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/explorer"
)

// RetentionConfig bounds the blocks a node keeps.
//
// The app returns RetainHeight = height − keep_blocks + 1 from Commit (never
// past the first block the explorer has not indexed yet), and CometBFT
// prunes the block store below it. CometBFT prunes block results and its tx
// and block indexes only at a "data companion"'s request, over its
// privileged gRPC pruning service; the node is its own companion, on a unix
// socket in its data directory, and asks for the same height.
type RetentionConfig struct {
	// KeepBlocks keeps only the last KeepBlocks blocks, their results and
	// their txs in the tx index. 0 keeps all: the default, because a node
	// that pruned cannot serve the pruned blocks to a peer catching up, and
	// `agora query tx` and proofs of older state need them.
	KeepBlocks int64 `toml:"keep_blocks"`
}

// MinKeepBlocks is the smallest retention window: a few blocks less and a
// client waiting for its tx (which polls the tx index) could miss it.
const MinKeepBlocks = 10

// pruneInterval is how often CometBFT's pruner and the node's companion
// loop look at the retain heights.
const pruneInterval = 2 * time.Second

func (c Config) validateRetention() error {
	for _, k := range []struct {
		name string
		v    int64
	}{{"retention.keep_blocks", c.Retention.KeepBlocks}, {"explorer.keep_blocks", c.Explorer.KeepBlocks}} {
		if k.v < 0 || (k.v > 0 && k.v < MinKeepBlocks) {
			return fmt.Errorf("%s = %d: want 0 (keep all blocks) or at least %d", k.name, k.v, MinKeepBlocks)
		}
	}
	return nil
}

// comet turns CometBFT's pruning on when blocks are not all kept.
func (r RetentionConfig) comet(cc *cmtcfg.Config) {
	if r.KeepBlocks == 0 {
		return
	}
	cc.Storage.Pruning.Interval = pruneInterval
	cc.Storage.Pruning.DataCompanion.Enabled = true
	cc.GRPC.Privileged.PruningService.Enabled = true
	// ListenAddress: set by prepareRetention, which knows the socket path.
}

// retention is the node's side of block retention.
type retention struct {
	sock    string // the privileged gRPC socket ("" with retention off)
	tmpDir  string // a short directory for sock when the home's path is too long
	stop    context.CancelFunc
	done    chan struct{}
	height  prometheus.Gauge
	mu      sync.RWMutex    // guards idx against a Close while Commit reads it
	idx     *explorer.Index // the explorer's index, while it runs
	explore bool            // the explorer is enabled: never prune what it has not indexed
}

// prepareRetention wires the app's retain height and CometBFT's pruning
// service before CometBFT is created.
func (n *Node) prepareRetention(cc *cmtcfg.Config) error {
	rt := &n.retention
	n.app.KeepBlocks = n.cfg.Retention.KeepBlocks
	if n.cfg.Retention.KeepBlocks == 0 {
		return nil
	}
	rt.explore = n.cfg.Explorer.Enabled
	n.app.RetainLimit = rt.limit
	rt.height = prometheus.NewGauge(prometheus.GaugeOpts{Name: "agora_node_retain_height",
		Help: "Blocks below this height may be pruned from the block store, block results and tx index."})
	n.reg.MustRegister(rt.height)
	sock := filepath.Join(Paths{n.home}.DataDir(), "prune.sock")
	if len(sock) > 100 { // a unix socket path has at most 107 bytes
		dir, err := os.MkdirTemp("", "agora-prune-")
		if err != nil {
			return fmt.Errorf("retention: socket directory: %w", err)
		}
		rt.tmpDir, sock = dir, filepath.Join(dir, "prune.sock")
	}
	// A crash leaves the socket file behind; we hold the home's lock.
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("retention: remove stale socket: %w", err)
	}
	rt.sock = sock
	cc.GRPC.Privileged.ListenAddress = "unix://" + sock
	return nil
}

// limit is the highest retain height the explorer allows: the first block
// it has not indexed (0, nothing may be pruned, while it is not running).
func (rt *retention) limit() int64 {
	if !rt.explore {
		return 1 << 62
	}
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	if rt.idx == nil {
		return 0
	}
	return rt.idx.Height() + 1
}

// setExplorer publishes (or, with nil, withdraws before it closes) the
// explorer's index to the retain height's limit.
func (rt *retention) setExplorer(x *explorer.Index) {
	rt.mu.Lock()
	rt.idx = x
	rt.mu.Unlock()
}

// startRetention runs the companion loop: it asks CometBFT to prune block
// results and the tx and block indexes to the retain height the app last
// returned (CometBFT prunes blocks below min(app's, companion's) height).
func (n *Node) startRetention() {
	rt := &n.retention
	if rt.sock == "" {
		return
	}
	n.app.NoteRetained(n.cmt.BlockStore().Base())
	ctx, cancel := context.WithCancel(context.Background())
	rt.stop, rt.done = cancel, make(chan struct{})
	go func() {
		defer close(rt.done)
		log := n.log.With("module", "retention")
		c, err := privileged.New(ctx, "unix://"+rt.sock, privileged.WithInsecure())
		if err != nil {
			log.Error("retention: no pruning service client; block results and the tx index are not pruned", "err", err)
			return
		}
		defer c.Close()
		kv := n.cfg.TxIndex.Indexer == "kv"
		var done int64
		t := time.NewTicker(pruneInterval)
		defer t.Stop()
		for {
			if r := n.app.RetainHeight(); r > done {
				if err := setRetainHeights(ctx, c, uint64(r), kv); err != nil {
					if ctx.Err() == nil {
						log.Warn("set retain heights", "height", r, "err", err)
					}
				} else {
					done = r
					rt.height.Set(float64(r))
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func setRetainHeights(ctx context.Context, c privileged.Client, r uint64, kv bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.SetBlockRetainHeight(ctx, r); err != nil {
		return fmt.Errorf("blocks: %w", err)
	}
	if err := c.SetBlockResultsRetainHeight(ctx, r); err != nil {
		return fmt.Errorf("block results: %w", err)
	}
	if !kv {
		return nil
	}
	if err := c.SetTxIndexerRetainHeight(ctx, r); err != nil {
		return fmt.Errorf("tx index: %w", err)
	}
	if err := c.SetBlockIndexerRetainHeight(ctx, r); err != nil {
		return fmt.Errorf("block index: %w", err)
	}
	return nil
}

// stopRetention ends the companion loop (before CometBFT stops).
func (n *Node) stopRetention() {
	rt := &n.retention
	if rt.stop != nil {
		rt.stop()
		<-rt.done
		rt.stop = nil
	}
}

// cleanupRetention removes the socket's temporary directory, if any.
func (n *Node) cleanupRetention() {
	if n.retention.tmpDir != "" {
		os.RemoveAll(n.retention.tmpDir)
		n.retention.tmpDir = ""
	}
}
