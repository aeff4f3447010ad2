package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/kvlog"
	"github.com/agoranet/agora/node"
)

// RetentionOptions configure the disk-per-block measurement.
type RetentionOptions struct {
	Blocks      int64         // blocks each run produces
	Keep        int64         // the pruned run's keep_blocks (node, explorer and state versions)
	TxsPerBlock int           // transfers broadcast per block (light steady load)
	BlockTime   time.Duration // timeout_commit
	Dir         string
	JSON        bool
	Out         io.Writer
}

// RetentionRun is one run's disk use, in bytes, after the node stopped.
type RetentionRun struct {
	KeepBlocks int64            `json:"keep_blocks"` // 0: keep all
	Blocks     int64            `json:"blocks"`
	Txs        int64            `json:"txs"`
	Base       int64            `json:"block_store_base"`
	Seconds    float64          `json:"seconds"`
	Bytes      map[string]int64 `json:"bytes"` // per store (see retentionStores)
	Total      int64            `json:"total_bytes"`
	// Compacted: the same after a full compaction of each Pebble store,
	// i.e. without the deleted keys' tombstones and overwritten versions
	// that Pebble reclaims only as its compactions reach them.
	Compacted      map[string]int64 `json:"bytes_compacted"`
	TotalCompacted int64            `json:"total_bytes_compacted"`
	Per100k        map[string]int64 `json:"bytes_per_100k_blocks"` // linear extrapolation (keep-all run only)
	Per100kNote    string           `json:"note,omitempty"`
}

// RetentionResult is what the benchmark measured.
type RetentionResult struct {
	Machine string         `json:"machine"`
	Runs    []RetentionRun `json:"runs"`
}

// retentionStores are the node's stores, by the directory under data/.
var retentionStores = []struct{ name, dir, pebble string }{
	{"block store", "blockstore.db", "blockstore.db"},
	{"state (IAVL)", "app", "app/state.db"},
	{"CometBFT state + block results", "state.db", "state.db"},
	{"tx + block index", "tx_index.db", "tx_index.db"},
	{"explorer index", "explorer", "explorer"},
	{"evidence", "evidence.db", "evidence.db"},
	// Not pruned by retention: CometBFT rotates it and caps it at 1 GiB.
	{"consensus WAL", "cs.wal", ""},
}

// RunRetention runs a fresh single-validator node twice, keeping all
// blocks and then only the last Keep, each for Blocks blocks under a light
// steady load, and reports each store's bytes on disk.
func RunRetention(ctx context.Context, o RetentionOptions) (*RetentionResult, error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Blocks < 2*o.Keep || o.Keep < node.MinKeepBlocks {
		return nil, fmt.Errorf("want --keep >= %d and --blocks >= 2 × --keep (got %d and %d)", node.MinKeepBlocks, o.Keep, o.Blocks)
	}
	res := &RetentionResult{Machine: machine()}
	for _, keep := range []int64{0, o.Keep} {
		run, err := retentionRun(ctx, o, keep)
		if err != nil {
			return nil, err
		}
		res.Runs = append(res.Runs, *run)
	}
	if o.JSON {
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		return res, enc.Encode(res)
	}
	fmt.Fprintf(o.Out, "\nmachine: %s\n", res.Machine)
	PrintRetention(o.Out, res, o.Keep)
	all, kept := res.Runs[0], res.Runs[1]
	fmt.Fprintf(o.Out, "blocks %d (txs %d, %.0f s) / %d (txs %d, %.0f s, block store base %d)\n", all.Blocks, all.Txs, all.Seconds, kept.Blocks, kept.Txs, kept.Seconds, kept.Base)
	if all.Per100kNote != "" {
		fmt.Fprintln(o.Out, "note:", all.Per100kNote)
	}
	return res, nil
}

// PrintRetention prints the two runs as a table (as is, then compacted).
func PrintRetention(w io.Writer, res *RetentionResult, keep int64) {
	all, kept := res.Runs[0], res.Runs[1]
	fmt.Fprintf(w, "%-32s %13s %13s %18s %13s %13s\n", "store", "keep all", fmt.Sprintf("keep %d", keep), "keep all/100k blk", "all compact", fmt.Sprintf("%d compact", keep))
	for _, s := range retentionStores {
		fmt.Fprintf(w, "%-32s %13s %13s %18s %13s %13s\n", s.name, mib(all.Bytes[s.name]), mib(kept.Bytes[s.name]), mib(all.Per100k[s.name]), mib(all.Compacted[s.name]), mib(kept.Compacted[s.name]))
	}
	fmt.Fprintf(w, "%-32s %13s %13s %18s %13s %13s\n", "total", mib(all.Total), mib(kept.Total), mib(all.Per100k["total"]), mib(all.TotalCompacted), mib(kept.TotalCompacted))
}

func mib(b int64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

func retentionRun(ctx context.Context, o RetentionOptions, keep int64) (*RetentionRun, error) {
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "agora-bench-retention-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	} else {
		dir = filepath.Join(dir, fmt.Sprintf("keep%d", keep))
	}
	params := types.DefaultParams()
	user, op := benchKey(0), benchKey(-1)
	g := node.GenesisOptions{ChainID: "agora-bench", Params: params, Accounts: []types.GenesisAccount{
		{Address: addrOfKey(user), Balance: 1_000_000_000_000_000},
		{Address: addrOfKey(op), Balance: 1_000_000_000_000},
	}}
	cfg := node.DefaultConfig()
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	cfg.P2P.Laddr = fmt.Sprintf("tcp://127.0.0.1:%d", ports[0])
	cfg.RPC.Laddr = fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	cfg.API.Laddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
	cfg.Consensus.TimeoutCommit = o.BlockTime
	cfg.Instrumentation.CometBFTMetrics = false
	cfg.TxIndex.Indexer = "kv" // the node's default; the explorer is on by default too
	cfg.Retention.KeepBlocks = keep
	cfg.Explorer.KeepBlocks = keep
	cfg.State.KeepRecent = keep
	home := node.NodeHome(dir, 0)
	spec := node.ValidatorSpec{Home: home, Moniker: "bench", Operator: addrOfKey(op), Bonded: params.MinValidatorStake * 10, Config: cfg}
	if _, err := node.InitNetwork(g, []node.ValidatorSpec{spec}); err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := node.New(home, cfg, logger)
	if err != nil {
		return nil, err
	}
	if err := n.Start(); err != nil {
		n.Stop()
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			n.Stop()
		}
	}()
	c, err := client.New(cfg.RPC.Laddr)
	if err != nil {
		return nil, err
	}
	if !o.JSON {
		fmt.Fprintf(o.Out, "bench retention: keep %s, %d blocks, %d transfers per block, block time %s ...\n", keepName(keep), o.Blocks, o.TxsPerBlock, o.BlockTime)
	}
	// The load: TxsPerBlock transfers to fresh addresses each new block,
	// signed ahead with consecutive nonces and broadcast without waiting.
	bs := n.Comet().BlockStore()
	start := time.Now()
	var nonce uint64
	var txs int64
	last := int64(0)
	lastLog := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h := n.App().Height()
		if h >= o.Blocks {
			break
		}
		if h > last {
			last = h
			for i := 0; i < o.TxsPerBlock; i++ {
				body := &types.TxBody{ChainId: g.ChainID, Nonce: nonce, Msg: &types.TxBody_Send{Send: &types.MsgSend{To: recipient(int(nonce)), Amount: 1}}}
				tx, err := client.SignWithMinFee(user, body, params)
				if err != nil {
					return nil, err
				}
				if _, err := c.BroadcastSync(ctx, tx); err != nil {
					return nil, fmt.Errorf("broadcast at height %d: %w", h, err)
				}
				nonce++
				txs++
			}
			if !o.JSON && time.Since(lastLog) > 30*time.Second {
				fmt.Fprintf(o.Out, "  height %d/%d, block store base %d\n", h, o.Blocks, bs.Base())
				lastLog = time.Now()
			}
		}
		time.Sleep(time.Millisecond)
	}
	run := &RetentionRun{KeepBlocks: keep, Blocks: n.App().Height(), Txs: txs, Base: bs.Base(), Seconds: time.Since(start).Seconds(), Bytes: map[string]int64{}}
	stopped = true
	if err := n.Stop(); err != nil {
		return nil, err
	}
	if err := MeasureRetention(node.Paths{Home: home}.DataDir(), run); err != nil {
		return nil, err
	}
	if keep == 0 {
		run.Per100k = map[string]int64{}
		for k, v := range run.Bytes {
			run.Per100k[k] = v * 100_000 / run.Blocks
		}
		run.Per100k["total"] = run.Total * 100_000 / run.Blocks
		if run.Blocks < 100_000 {
			run.Per100kNote = fmt.Sprintf("per 100k blocks is extrapolated linearly from %d blocks", run.Blocks)
		}
	}
	return run, nil
}

// MeasureRetention fills run's sizes from a stopped node's data directory:
// as they are, then after a full compaction of each Pebble store.
func MeasureRetention(data string, run *RetentionRun) error {
	run.Bytes, run.Compacted, run.Total, run.TotalCompacted = map[string]int64{}, map[string]int64{}, 0, 0
	for _, s := range retentionStores {
		b, err := dirBytes(filepath.Join(data, s.dir))
		if err != nil {
			return err
		}
		run.Bytes[s.name] = b
		run.Total += b
	}
	for _, s := range retentionStores {
		if s.pebble != "" {
			if err := compactPebble(filepath.Join(data, s.pebble)); err != nil {
				return fmt.Errorf("compact %s: %w", s.pebble, err)
			}
		}
		b, err := dirBytes(filepath.Join(data, s.dir))
		if err != nil {
			return err
		}
		run.Compacted[s.name] = b
		run.TotalCompacted += b
	}
	return nil
}

// compactPebble compacts a whole Pebble store (absent: nothing to do).
func compactPebble(dir string) error {
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil
	}
	db, err := kvlog.Open(dir)
	if err != nil {
		return err
	}
	if err := db.Compact([]byte{}, bytes.Repeat([]byte{0xff}, 64), true); err != nil {
		db.Close()
		return err
	}
	return db.Close()
}

func keepName(k int64) string {
	if k == 0 {
		return "all"
	}
	return fmt.Sprintf("the last %d", k)
}

func addrOfKey(k ed25519.PrivateKey) types.Address {
	return types.AddressFromPubKey(k.Public().(ed25519.PublicKey))
}

// dirBytes sums the sizes of the files under dir (0 when it is absent).
func dirBytes(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	return total, err
}
