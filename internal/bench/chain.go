// Package bench holds the `agora bench` benchmarks.
package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ctypes "github.com/cometbft/cometbft/rpc/core/types"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/node"
)

// ChainOptions configure the chain throughput benchmark.
type ChainOptions struct {
	Duration    time.Duration
	Warmup      time.Duration
	Senders     int
	Accounts    int
	Concurrency int
	Batch       int
	BlockTime   time.Duration
	Dir         string
	Indexer     string
	NoExplorer  bool // the explorer's indexer off (it is on in a default node)
	JSON        bool
	CPUProfile  string
	Out         io.Writer
}

// ChainResult is what the benchmark measured.
type ChainResult struct {
	Machine          string  `json:"machine"`
	DurationSeconds  float64 `json:"duration_seconds"`
	CommittedTxs     int     `json:"committed_txs"`
	TxPerSecond      float64 `json:"tx_per_second"`
	Blocks           int     `json:"blocks"`
	MeanBlockSeconds float64 `json:"mean_block_seconds"`
	MaxBlockTxs      int     `json:"max_block_txs"`
	P50Millis        float64 `json:"p50_broadcast_to_commit_ms"`
	P99Millis        float64 `json:"p99_broadcast_to_commit_ms"`
	Accounts         int     `json:"accounts_in_state"`
	RSSMiB           float64 `json:"rss_mib_after"`
	FailedTxs        int     `json:"failed_txs"`
	Exhausted        bool    `json:"presigned_exhausted"`
}

func benchKey(i int) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("agora-bench-sender/" + strconv.Itoa(i)))
	return ed25519.NewKeyFromSeed(seed[:])
}

func recipient(i int) types.Address {
	h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("agora-bench-recipient/"), uint64(i)))
	return types.Address(h[:20])
}

// RunChain starts a fresh single-validator node and drives signed transfers
// into it through its RPC (JSON-RPC batches over HTTP, as any client can),
// measuring committed tx/s, broadcast-to-commit latency and memory.
func RunChain(ctx context.Context, o ChainOptions) (*ChainResult, error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Warmup == 0 {
		o.Warmup = 5 * time.Second
	}
	if o.Batch == 0 {
		o.Batch = 25
	}
	if o.Senders < 1 || o.Concurrency < 1 || o.Duration <= 0 {
		return nil, fmt.Errorf("senders, concurrency and duration must be positive")
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "agora-bench-chain-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	logf := func(format string, a ...any) {
		if !o.JSON {
			fmt.Fprintf(o.Out, format+"\n", a...)
		}
	}

	// Genesis: one validator, Senders funded accounts.
	params := types.DefaultParams()
	g := node.GenesisOptions{ChainID: "agora-bench", Params: params}
	keys := make([]ed25519.PrivateKey, o.Senders)
	for i := range keys {
		keys[i] = benchKey(i)
		g.Accounts = append(g.Accounts, types.GenesisAccount{Address: types.AddressFromPubKey(keys[i].Public().(ed25519.PublicKey)), Balance: 1_000_000_000_000})
	}
	op := benchKey(-1)
	opAddr := types.AddressFromPubKey(op.Public().(ed25519.PublicKey))
	g.Accounts = append(g.Accounts, types.GenesisAccount{Address: opAddr, Balance: 1_000_000_000_000})
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, cfg, err := startNode(dir, g, opAddr, o.BlockTime, o.Indexer, !o.NoExplorer, logger)
	if err != nil {
		return nil, err
	}
	defer n.Stop()

	// Pre-sign the transfers (clients sign on their own machines; doing it
	// here, before the window, keeps signing out of the node's CPU budget).
	total := int(float64(12_000) * (o.Duration + o.Warmup).Seconds())
	logf("bench chain: %d senders, %d RPC workers, batches of %d, block time %s, indexer %s, explorer %v", o.Senders, o.Concurrency, o.Batch, o.BlockTime, o.Indexer, !o.NoExplorer)
	logf("pre-signing %d transfers ...", total)
	fee := params.MinFee("send", 0)
	perWorker := make([][][]byte, o.Concurrency)
	var signed atomic.Int64
	var wg sync.WaitGroup
	sendersPer := (o.Senders + o.Concurrency - 1) / o.Concurrency
	signStart := time.Now()
	for w := 0; w < o.Concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			lo, hi := w*sendersPer, min((w+1)*sendersPer, o.Senders)
			if lo >= hi {
				return
			}
			count := total / o.Concurrency
			txs := make([][]byte, 0, count)
			nonces := make([]uint64, hi-lo)
			for k := 0; k < count; k++ {
				s := lo + k%(hi-lo)
				idx := w + o.Concurrency*k // global tx index, spread over workers
				to := recipient(idx % max(o.Accounts, 1))
				body := &types.TxBody{ChainId: g.ChainID, Nonce: nonces[s-lo], Fee: fee, Msg: &types.TxBody_Send{Send: &types.MsgSend{To: to, Amount: 1}}}
				nonces[s-lo]++
				tx, err := client.SignWithMinFee(keys[s], body, params)
				if err != nil {
					panic(err)
				}
				txs = append(txs, tx)
				if c := signed.Add(1); c%100_000 == 0 {
					logf("  signed %d/%d", c, total)
				}
			}
			perWorker[w] = txs
		}(w)
	}
	wg.Wait()
	logf("signed %d txs in %s", signed.Load(), time.Since(signStart).Round(time.Millisecond))

	c, err := client.New(cfg.RPC.Laddr)
	if err != nil {
		return nil, err
	}
	for n.Comet().BlockStore().Height() < 2 {
		time.Sleep(50 * time.Millisecond)
	}

	// Watch blocks: commit latency per tx, block times.
	var sentAt sync.Map // [32]byte -> time.Time
	type blockObs struct {
		height int64
		txs    int
		seen   time.Time
	}
	var (
		obsMu     sync.Mutex
		blocks    []blockObs
		latencies []time.Duration
	)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		bs := n.Comet().BlockStore()
		last := bs.Height()
		for watchCtx.Err() == nil {
			h := bs.Height()
			for ; last < h; last++ {
				b, _ := bs.LoadBlock(last + 1)
				if b == nil {
					break
				}
				now := time.Now()
				var lat []time.Duration
				for _, tx := range b.Txs {
					if v, ok := sentAt.LoadAndDelete(sha256.Sum256(tx)); ok {
						lat = append(lat, now.Sub(v.(time.Time)))
					}
				}
				obsMu.Lock()
				blocks = append(blocks, blockObs{height: last + 1, txs: len(b.Txs), seen: now})
				latencies = append(latencies, lat...)
				obsMu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	// Load: each worker sends its txs in order, in JSON-RPC batches.
	start := time.Now()
	deadline := start.Add(o.Warmup + o.Duration)
	var failed atomic.Int64
	var exhausted atomic.Bool
	loadCtx, stopLoad := context.WithDeadline(ctx, deadline)
	defer stopLoad()
	for w := 0; w < o.Concurrency; w++ {
		wg.Add(1)
		go func(txs [][]byte) {
			defer wg.Done()
			for i := 0; i < len(txs) && loadCtx.Err() == nil; {
				j := min(i+o.Batch, len(txs))
				batch := c.RPC().NewBatch()
				now := time.Now()
				for _, tx := range txs[i:j] {
					sentAt.Store(sha256.Sum256(tx), now)
					if _, err := batch.BroadcastTxSync(loadCtx, tx); err != nil {
						break
					}
				}
				res, err := batch.Send(loadCtx)
				if err != nil {
					if loadCtx.Err() != nil {
						return
					}
					// A refused tx in a batch (mempool full, ...) fails the
					// batch; back off and resend it (txs already in the
					// mempool are refused as duplicates, which is harmless).
					time.Sleep(20 * time.Millisecond)
					continue
				}
				for _, r := range res {
					switch rb := r.(type) {
					case *ctypes.ResultBroadcastTx:
						if rb.Code != 0 {
							failed.Add(1)
						}
					case error:
						// refused (e.g. mempool full): counted, not retried
						failed.Add(1)
					}
				}
				i = j
			}
			if len(txs) > 0 && loadCtx.Err() == nil {
				exhausted.Store(true)
			}
		}(perWorker[w])
	}
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
loop:
	for {
		select {
		case <-loadCtx.Done():
			break loop
		case <-progress.C:
			obsMu.Lock()
			var cnt int
			for _, b := range blocks {
				cnt += b.txs
			}
			obsMu.Unlock()
			logf("  %4.0fs: height %d, %d txs committed", time.Since(start).Seconds(), n.Comet().BlockStore().Height(), cnt)
		}
	}
	wg.Wait()
	time.Sleep(2 * o.BlockTime)
	stopWatch()
	<-watchDone

	// Committed throughput over the window after warm-up: blocks observed in it.
	winStart, winEnd := start.Add(o.Warmup), deadline
	res := &ChainResult{Machine: machine(), FailedTxs: int(failed.Load()), Exhausted: exhausted.Load()}
	var first, lastSeen time.Time
	for _, b := range blocks {
		if b.seen.Before(winStart) || b.seen.After(winEnd) {
			continue
		}
		if first.IsZero() {
			first = b.seen
		}
		lastSeen = b.seen
		res.CommittedTxs += b.txs
		res.Blocks++
		res.MaxBlockTxs = max(res.MaxBlockTxs, b.txs)
	}
	res.DurationSeconds = winEnd.Sub(winStart).Seconds()
	res.TxPerSecond = float64(res.CommittedTxs) / res.DurationSeconds
	if res.Blocks > 1 {
		res.MeanBlockSeconds = lastSeen.Sub(first).Seconds() / float64(res.Blocks-1)
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	if len(latencies) > 0 {
		res.P50Millis = float64(latencies[len(latencies)/2].Microseconds()) / 1000
		res.P99Millis = float64(latencies[len(latencies)*99/100].Microseconds()) / 1000
	}

	// Correctness: every committed tx succeeded (sender nonces add up).
	var nonceSum uint64
	for i := range keys {
		acc, err := c.Account(ctx, types.AddressFromPubKey(keys[i].Public().(ed25519.PublicKey)))
		if err != nil {
			return nil, err
		}
		nonceSum += acc.Nonce
	}
	var included int
	for _, b := range blocks {
		included += b.txs
	}
	if int(nonceSum) != included {
		res.FailedTxs += included - int(nonceSum)
	}
	snap, err := n.App().Snapshot(0)
	if err == nil {
		snap.Iterate([]byte("acc/"), func(_, _ []byte) bool { res.Accounts++; return true })
	}
	perWorker = nil
	runtime.GC()
	debug.FreeOSMemory()
	res.RSSMiB = rssMiB()

	if o.JSON {
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		return res, enc.Encode(res)
	}
	fmt.Fprintf(o.Out, "\nresult (%s):\n  committed %d txs in %.0f s after %s warm-up: %.0f tx/s\n  blocks: %d, mean interval %.2f s, largest %d txs\n  broadcast -> commit: p50 %.0f ms, p99 %.0f ms\n  accounts in state: %d, RSS after: %.0f MiB\n  failed txs: %d\n",
		res.Machine, res.CommittedTxs, res.DurationSeconds, o.Warmup, res.TxPerSecond, res.Blocks, res.MeanBlockSeconds, res.MaxBlockTxs,
		res.P50Millis, res.P99Millis, res.Accounts, res.RSSMiB, res.FailedTxs)
	if res.Exhausted {
		fmt.Fprintln(o.Out, "  note: the pre-signed txs ran out before the window ended; the rate above is a lower bound")
	}
	return res, nil
}

func rssMiB() float64 {
	bz, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(bz), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

func machine() string {
	model := "unknown CPU"
	if bz, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(bz), "\n") {
			if strings.HasPrefix(line, "model name") {
				if _, v, ok := strings.Cut(line, ":"); ok {
					model = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s", model, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
}
