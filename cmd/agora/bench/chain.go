// Package bench holds the `agora bench` benchmarks.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	rpctypes "github.com/cometbft/cometbft/rpc/jsonrpc/types"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/node"
)

// ChainOptions configure the chain throughput benchmark.
type ChainOptions struct {
	Duration    time.Duration // measurement window, after the warm-up
	Warmup      time.Duration
	Accounts    int // sending accounts, funded at genesis
	Recipients  int // distinct recipient addresses (new accounts until this many exist)
	Connections int // concurrent HTTP connections broadcasting
	Batch       int // txs per JSON-RPC batch (one per account; at most 100, the node's limit)
	MaxPending  int // admitted but not yet committed txs the load keeps at most (0: no limit)
	PresignRate int // txs signed ahead per second of load (the load cannot go faster)
	BlockTime   time.Duration
	MempoolSize int
	Dir         string
	Indexer     string
	NoExplorer  bool // the explorer's indexer off (it is on in a default node)
	JSON        bool
	// NodeExe is the agora binary the node runs from (default: this executable).
	NodeExe string
	Out     io.Writer
}

// ChainResult is what the benchmark measured. Counts are over the whole
// run (warm-up, window and drain) unless named for the window.
type ChainResult struct {
	Machine         string  `json:"machine"`
	LoadAverage     string  `json:"load_average_at_start"`
	WindowSeconds   float64 `json:"window_seconds"`
	WarmupSeconds   float64 `json:"warmup_seconds"`
	WindowCommitted int     `json:"window_committed_txs"`
	TxPerSecond     float64 `json:"sustained_tx_per_second"`
	// Timeline is the txs committed in each second of the window (by the
	// time the load generator saw their block).
	Timeline  []int `json:"window_timeline"`
	MinSecond int   `json:"window_min_second"`
	// Min5sRate is the lowest committed tx/s over any 5 s stretch of the
	// window (blocks come ~1.5 s apart under load, so single seconds can be 0).
	Min5sRate        float64 `json:"window_min_5s_tx_per_second"`
	LongestStallSecs float64 `json:"longest_gap_without_commit_seconds"`
	Blocks           int     `json:"window_blocks"`
	MeanBlockSeconds float64 `json:"window_mean_block_seconds"`
	MaxBlockTxs      int     `json:"max_block_txs"`
	P50Millis        float64 `json:"p50_broadcast_to_commit_ms"`
	P99Millis        float64 `json:"p99_broadcast_to_commit_ms"`

	Broadcasts  int64            `json:"broadcasts"`  // items sent, resends included
	Admitted    int64            `json:"admitted"`    // distinct txs the node admitted
	Refused     map[string]int64 `json:"refused"`     // broadcasts refused, by reason
	Resubmitted int64            `json:"resubmitted"` // broadcasts of a tx sent before
	DupAnswers  int64            `json:"dup_answers"` // "already in cache" answers (admitted by an earlier attempt)
	Included    int64            `json:"included"`    // our txs in blocks (counted from the blocks)
	BeaconTxs   int64            `json:"beacon_txs"`  // the proposers' epoch-beacon txs in those blocks (not ours, not counted above)
	Committed   int64            `json:"committed"`   // of them executed with code 0 (the node's count, /metrics)
	FailedInBlk int64            `json:"failed_in_blocks"`
	NonceSum    uint64           `json:"nonce_sum"`    // Σ senders' committed nonces after the drain
	NonceErrors int              `json:"nonce_errors"` // accounts whose nonce is not their admitted count
	Consistent  bool             `json:"consistent"`   // admitted == committed == nonce sum, per account too
	Drained     bool             `json:"drained"`      // every admitted tx committed before the drain timeout
	// LoadRanOutAt is when the first account ran out of pre-signed txs
	// (seconds from the load's start; 0: none did).
	LoadRanOutAt float64 `json:"load_ran_out_at_seconds,omitempty"`

	NodeRSSMaxMiB float64 `json:"node_rss_max_mib"`
	NodeRSSEndMiB float64 `json:"node_rss_end_mib"`
	Accounts      int     `json:"accounts"`
	Connections   int     `json:"connections"`
	Batch         int     `json:"batch"`
}

func benchKey(i int) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("agora-bench-sender/" + strconv.Itoa(i)))
	return ed25519.NewKeyFromSeed(seed[:])
}

func recipient(i int) types.Address {
	h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("agora-bench-recipient/"), uint64(i)))
	return types.Address(h[:20])
}

// benchAccount is one sender's pre-signed txs, broadcast strictly in nonce
// order: tx k+1 is sent only once the node admitted tx k (the mempool does
// not hold a tx whose nonce is ahead of the check state).
type benchAccount struct {
	addr     types.Address
	txs      []string       // base64 of the signed txs, nonce = index
	head     int            // next tx to broadcast (== admitted count)
	sent     []atomic.Int64 // first broadcast of each tx, ns since the load's start (0: not yet)
	dead     bool           // refused for good: the account stops
	admitted atomic.Int64
}

// RunChain writes a fresh single-validator chain with Accounts funded
// senders, starts its node as a child process (`agora start`), and drives
// signed transfers into it through its RPC from this process, the way
// clients would: JSON-RPC batches of broadcast_tx_sync over several HTTP
// connections, each item's answer handled on its own (only refused items are
// resent, in nonce order). Committed txs are counted from the blocks.
func RunChain(ctx context.Context, o ChainOptions) (*ChainResult, error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Warmup <= 0 {
		o.Warmup = 10 * time.Second
	}
	if o.Batch <= 0 {
		o.Batch = 50
	}
	if o.PresignRate <= 0 {
		o.PresignRate = 12_000
	}
	if o.Accounts < 1 || o.Connections < 1 || o.Duration <= 0 || o.Batch > 100 {
		return nil, fmt.Errorf("accounts, connections and duration must be positive, batch at most 100")
	}
	if o.Recipients < 1 {
		o.Recipients = 100_000
	}
	exe := o.NodeExe
	if exe == "" {
		e, err := os.Executable()
		if err != nil {
			return nil, err
		}
		exe = e
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
	res := &ChainResult{Machine: machine(), LoadAverage: loadAverage(), Refused: map[string]int64{},
		Accounts: o.Accounts, Connections: o.Connections, Batch: o.Batch,
		WindowSeconds: o.Duration.Seconds(), WarmupSeconds: o.Warmup.Seconds()}

	// Genesis: one validator, o.Accounts funded senders.
	params := types.DefaultParams()
	g := node.GenesisOptions{ChainID: "agora-bench", Params: params}
	keys := make([]ed25519.PrivateKey, o.Accounts)
	accts := make([]*benchAccount, o.Accounts)
	byAddr := make(map[string]int, o.Accounts)
	for i := range keys {
		keys[i] = benchKey(i)
		addr := types.AddressFromPubKey(keys[i].Public().(ed25519.PublicKey))
		accts[i] = &benchAccount{addr: addr}
		byAddr[string(addr)] = i
		g.Accounts = append(g.Accounts, types.GenesisAccount{Address: addr, Balance: 1_000_000_000_000})
	}
	op := benchKey(-1)
	opAddr := types.AddressFromPubKey(op.Public().(ed25519.PublicKey))
	g.Accounts = append(g.Accounts, types.GenesisAccount{Address: opAddr, Balance: 1_000_000_000_000})

	// Pre-sign (clients sign on their own machines; doing it before the node
	// starts keeps signing out of the node's CPU budget).
	perAccount := (o.PresignRate*int((o.Warmup+o.Duration)/time.Second) + o.Accounts - 1) / o.Accounts
	logf("bench chain: %d accounts, %d connections, batches of %d, max pending %d, block time %s, mempool %d, indexer %s, explorer %v",
		o.Accounts, o.Connections, o.Batch, o.MaxPending, o.BlockTime, o.MempoolSize, o.Indexer, !o.NoExplorer)
	logf("machine: %s; load average %s", res.Machine, res.LoadAverage)
	logf("pre-signing %d transfers (%d per account) ...", perAccount*o.Accounts, perAccount)
	signStart := time.Now()
	fee := params.MinFee("send", 0)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < o.Accounts; i += workers {
				a := accts[i]
				a.txs = make([]string, perAccount)
				a.sent = make([]atomic.Int64, perAccount)
				for k := 0; k < perAccount; k++ {
					to := recipient((k*o.Accounts + i) % o.Recipients)
					body := &types.TxBody{ChainId: g.ChainID, Nonce: uint64(k), Fee: fee, Msg: &types.TxBody_Send{Send: &types.MsgSend{To: to, Amount: 1}}}
					tx, err := client.SignWithMinFee(keys[i], body, params)
					if err != nil {
						panic(err)
					}
					a.txs[k] = base64.StdEncoding.EncodeToString(tx)
				}
			}
		}(w)
	}
	wg.Wait()
	logf("signed in %s", time.Since(signStart).Round(time.Millisecond))

	// The node, in its own process.
	nd, err := spawnNode(exe, dir, g, opAddr, o)
	if err != nil {
		return nil, err
	}
	defer nd.stop()
	rpcURL := strings.Replace(nd.rpc, "tcp://", "http://", 1)
	c, err := client.New(nd.rpc)
	if err != nil {
		return nil, err
	}
	if err := waitHeight(ctx, c, 2, 60*time.Second); err != nil {
		return nil, fmt.Errorf("%w; node output:\n%s", err, nd.output())
	}
	startHeight, err := latestHeight(ctx, c)
	if err != nil {
		return nil, err
	}
	logf("node pid %d, rpc %s, from height %d", nd.cmd.Process.Pid, nd.rpc, startHeight)

	transport := &http.Transport{MaxIdleConnsPerHost: o.Connections + 4, MaxConnsPerHost: o.Connections + 4,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	hc := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	defer transport.CloseIdleConnections()

	var (
		broadcasts, admitted, resubmitted, dups atomic.Int64
		included                                atomic.Int64
		refusedMu                               sync.Mutex
		ranOut                                  atomic.Int64 // ns since start of the first exhaustion
	)
	refuse := func(reason string) {
		refusedMu.Lock()
		res.Refused[reason]++
		refusedMu.Unlock()
	}
	start := time.Now()
	loadEnd := start.Add(o.Warmup + o.Duration)
	loadCtx, stopLoad := context.WithDeadline(ctx, loadEnd)
	defer stopLoad()

	// Blocks: committed txs, latencies, per-second timeline.
	obs := &blockObserver{c: c, hc: hc, rpcURL: rpcURL, start: start, next: startHeight + 1, accts: accts, byAddr: byAddr,
		committed: &included}
	obsCtx, stopObs := context.WithCancel(ctx)
	defer stopObs()
	obsDone := make(chan error, 1)
	go func() { obsDone <- obs.run(obsCtx) }()

	// RSS of the node process, once a second.
	var rssMax atomic.Uint64 // KiB
	sampleRSS := func() uint64 {
		kb := procRSSKiB(nd.cmd.Process.Pid)
		for {
			cur := rssMax.Load()
			if kb <= cur || rssMax.CompareAndSwap(cur, kb) {
				return kb
			}
		}
	}

	// Load: each connection owns the accounts i ≡ w (mod Connections).
	for w := 0; w < o.Connections; w++ {
		var mine []*benchAccount
		for i := w; i < o.Accounts; i += o.Connections {
			mine = append(mine, accts[i])
		}
		if len(mine) == 0 {
			continue
		}
		wg.Add(1)
		go func(mine []*benchAccount) {
			defer wg.Done()
			cursor := 0
			backoff := time.Duration(0)
			var body bytes.Buffer
			batch := make([]*benchAccount, 0, o.Batch)
			for loadCtx.Err() == nil {
				if o.MaxPending > 0 && admitted.Load()-included.Load() >= int64(o.MaxPending) {
					sleepCtx(loadCtx, 5*time.Millisecond)
					continue
				}
				batch = batch[:0]
				for scanned := 0; scanned < len(mine) && len(batch) < o.Batch; scanned++ {
					a := mine[cursor]
					cursor = (cursor + 1) % len(mine)
					if a.dead {
						continue
					}
					if a.head >= len(a.txs) {
						ranOut.CompareAndSwap(0, int64(time.Since(start)))
						continue
					}
					batch = append(batch, a)
				}
				if len(batch) == 0 {
					sleepCtx(loadCtx, 10*time.Millisecond)
					continue
				}
				body.Reset()
				body.WriteByte('[')
				now := int64(time.Since(start))
				for id, a := range batch {
					if id > 0 {
						body.WriteByte(',')
					}
					fmt.Fprintf(&body, `{"jsonrpc":"2.0","id":%d,"method":"broadcast_tx_sync","params":{"tx":"%s"}}`, id, a.txs[a.head])
					if a.sent[a.head].Load() == 0 {
						a.sent[a.head].Store(now)
					} else {
						resubmitted.Add(1)
					}
				}
				body.WriteByte(']')
				broadcasts.Add(int64(len(batch)))
				// The batch in flight when the load ends is answered (ctx, not
				// loadCtx): every broadcast's outcome is known.
				answers, err := postBatch(ctx, hc, rpcURL, body.Bytes(), len(batch))
				retry := false
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					for range batch {
						refuse("transport")
					}
					retry = true
				} else {
					for id, a := range batch {
						switch reason, ok := judge(answers[id]); {
						case ok:
							if reason == "dup" {
								dups.Add(1)
							}
							a.head++
							a.admitted.Add(1)
							admitted.Add(1)
						case reason == "mempool_full" || reason == "rechecking" || reason == "busy":
							refuse(reason)
							retry = true
						default:
							refuse(reason)
							a.dead = true // its later nonces cannot be admitted
						}
					}
				}
				if retry {
					backoff = min(max(2*backoff, 10*time.Millisecond), 500*time.Millisecond)
					sleepCtx(loadCtx, backoff/2+time.Duration(rand.Int64N(int64(backoff))))
				} else {
					backoff = 0
				}
			}
		}(mine)
	}

	// Progress once a second.
	tick := time.NewTicker(time.Second)
	var lastCommitted int64
	for loadCtx.Err() == nil {
		select {
		case <-loadCtx.Done():
		case <-tick.C:
			kb := sampleRSS()
			cm := included.Load()
			refusedMu.Lock()
			var ref int64
			for _, v := range res.Refused {
				ref += v
			}
			refusedMu.Unlock()
			phase := "warm-up"
			if time.Since(start) > o.Warmup {
				phase = "window"
			}
			logf("  %3.0fs %-7s height %d: committed %d (+%d), admitted %d, pending %d, refused %d, node RSS %.0f MiB",
				time.Since(start).Seconds(), phase, obs.height.Load(), cm, cm-lastCommitted, admitted.Load(), admitted.Load()-cm, ref, float64(kb)/1024)
			lastCommitted = cm
		}
	}
	tick.Stop()
	wg.Wait()

	// Drain: wait until every admitted tx is in a block (bounded).
	drainTimeout := 30*time.Second + 4*o.BlockTime
	drainEnd := time.Now().Add(drainTimeout)
	logf("load stopped; waiting (at most %s) for the %d admitted txs to commit ...", drainTimeout, admitted.Load()-included.Load())
	for included.Load() < admitted.Load() && time.Now().Before(drainEnd) && ctx.Err() == nil {
		sampleRSS()
		sleepCtx(ctx, 50*time.Millisecond)
	}
	res.Drained = included.Load() >= admitted.Load()
	res.NodeRSSEndMiB = float64(sampleRSS()) / 1024
	res.NodeRSSMaxMiB = float64(rssMax.Load()) / 1024
	stopObs()
	if err := <-obsDone; err != nil && !errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("block observer: %w", err)
	}

	// Counts.
	res.Broadcasts, res.Admitted, res.Resubmitted, res.DupAnswers = broadcasts.Load(), admitted.Load(), resubmitted.Load(), dups.Load()
	res.Included = included.Load()
	// The node's count of executed txs by result code (all of them ours). A
	// block is in the block store a moment before the app has executed it:
	// wait (bounded) for the count to reach the included txs.
	for attempt := 0; ; attempt++ {
		codes, err := txResultCodes(ctx, hc, "http://"+nd.api+"/metrics")
		if err != nil {
			return nil, err
		}
		// The node counts the proposers' beacon txs too: they are not ours.
		res.BeaconTxs = obs.beacons.Load()
		res.Committed, res.FailedInBlk = -res.BeaconTxs, 0
		for code, n := range codes {
			if code == types.CodeOK.String() {
				res.Committed += n
			} else {
				res.FailedInBlk += n
			}
		}
		if res.Committed+res.FailedInBlk >= res.Included || attempt == 100 || ctx.Err() != nil {
			break
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
	if t := ranOut.Load(); t > 0 {
		res.LoadRanOutAt = time.Duration(t).Seconds()
	}

	// Every sender's committed nonce, read at the last observed height (the
	// observer has seen every block up to it, so the two agree).
	h := obs.height.Load()
	for i, a := range accts {
		var acc struct{ Nonce uint64 }
		if err := queryAt(ctx, c, "/account/"+a.addr.String(), h, &acc); err != nil {
			return nil, fmt.Errorf("account %d at height %d: %w", i, h, err)
		}
		res.NonceSum += acc.Nonce
		if acc.Nonce != uint64(a.admitted.Load()) {
			res.NonceErrors++
		}
	}
	res.Consistent = res.NonceErrors == 0 && res.FailedInBlk == 0 && res.Drained &&
		int64(res.NonceSum) == res.Committed && res.Committed == res.Admitted && res.Included == res.Committed

	// The window.
	obs.summarize(res, o.Warmup, o.Duration)

	if o.JSON {
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		return res, enc.Encode(res)
	}
	printChain(o.Out, res)
	return res, nil
}

func printChain(w io.Writer, r *ChainResult) {
	fmt.Fprintf(w, "\nresult (%s; load average at start %s):\n", r.Machine, r.LoadAverage)
	fmt.Fprintf(w, "  sustained: %d txs committed in the %.0f s window after %.0f s warm-up: %.0f tx/s\n", r.WindowCommitted, r.WindowSeconds, r.WarmupSeconds, r.TxPerSecond)
	fmt.Fprintf(w, "  per second: min %d, lowest 5 s rate %.0f tx/s, longest gap without a commit %.2f s; timeline %v\n", r.MinSecond, r.Min5sRate, r.LongestStallSecs, r.Timeline)
	fmt.Fprintf(w, "  blocks in window: %d, mean interval %.2f s, largest %d txs\n", r.Blocks, r.MeanBlockSeconds, r.MaxBlockTxs)
	fmt.Fprintf(w, "  broadcast -> commit: p50 %.0f ms, p99 %.0f ms\n", r.P50Millis, r.P99Millis)
	reasons := make([]string, 0, len(r.Refused))
	for k, v := range r.Refused {
		reasons = append(reasons, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(reasons)
	fmt.Fprintf(w, "  broadcasts %d: admitted %d (of which %d answered 'already in cache'), refused {%s}, resubmitted %d\n",
		r.Broadcasts, r.Admitted, r.DupAnswers, strings.Join(reasons, ", "), r.Resubmitted)
	fmt.Fprintf(w, "  included in blocks %d (and %d beacon txs), committed ok %d, failed in blocks %d, Σ sender nonces %d, accounts off %d, drained %v: consistent %v\n",
		r.Included, r.BeaconTxs, r.Committed, r.FailedInBlk, r.NonceSum, r.NonceErrors, r.Drained, r.Consistent)
	fmt.Fprintf(w, "  node RSS (its own process): max %.0f MiB, at the end %.0f MiB\n", r.NodeRSSMaxMiB, r.NodeRSSEndMiB)
	if r.LoadRanOutAt > 0 && r.LoadRanOutAt < r.WarmupSeconds+r.WindowSeconds {
		fmt.Fprintf(w, "  note: an account ran out of pre-signed txs at %.1f s, before the window ended: raise --presign-rate\n", r.LoadRanOutAt)
	}
}

// judge reads one batch item's answer: admitted (ok), or why not.
func judge(a rpcAnswer) (reason string, ok bool) {
	if a.Error != nil {
		switch client.ClassifyBroadcast(a.Error) {
		case client.Admitted:
			return "dup", true
		case client.RetryLater:
			msg := a.Error.Error()
			switch {
			case strings.Contains(msg, "mempool is full"):
				return "mempool_full", false
			case strings.Contains(msg, "rechecking"):
				return "rechecking", false
			}
			return "busy", false
		}
		return "refused: " + firstLine(a.Error.Data+" "+a.Error.Message), false
	}
	if a.Result == nil {
		return "no answer", false
	}
	if a.Result.Code != 0 {
		return "code " + types.Code(a.Result.Code).String(), false
	}
	return "", true
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

type rpcAnswer struct {
	ID     int                    `json:"id"`
	Result *struct{ Code uint32 } `json:"result"`
	Error  *rpctypes.RPCError     `json:"error"`
}

// postBatch sends one JSON-RPC batch and returns the answers by id.
func postBatch(ctx context.Context, hc *http.Client, url string, body []byte, n int) ([]rpcAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var answers []rpcAnswer
	if err := json.Unmarshal(raw, &answers); err != nil {
		return nil, fmt.Errorf("batch answer (HTTP %d): %w: %.200s", resp.StatusCode, err, raw)
	}
	out := make([]rpcAnswer, n)
	got := make([]bool, n)
	for _, a := range answers {
		if a.ID >= 0 && a.ID < n {
			out[a.ID], got[a.ID] = a, true
		}
	}
	for i := range got {
		if !got[i] {
			return nil, fmt.Errorf("batch answer has no item %d", i)
		}
	}
	return out, nil
}

// blockObserver follows the chain from the load generator's side: each new
// block and its results, fetched over RPC as any indexer would.
type blockObserver struct {
	c         *client.Client
	hc        *http.Client
	rpcURL    string
	start     time.Time
	next      int64
	accts     []*benchAccount
	byAddr    map[string]int
	committed *atomic.Int64 // our txs included in blocks
	beacons   atomic.Int64  // proposers' beacon txs seen (executed, not ours)
	height    atomic.Int64

	mu        sync.Mutex
	blocks    []observedBlock
	latencies []time.Duration
}

type observedBlock struct {
	height int64
	ok     int
	seen   time.Duration // since the load's start
}

func (b *blockObserver) run(ctx context.Context) error {
	b.height.Store(b.next - 1)
	for ctx.Err() == nil {
		latest, err := latestHeight(ctx, b.c)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			sleepCtx(ctx, 50*time.Millisecond)
			continue
		}
		for ; b.next <= latest; b.next++ {
			seen := time.Since(b.start)
			if err := b.observe(ctx, b.next, seen); err != nil {
				return err
			}
			b.height.Store(b.next)
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
	return ctx.Err()
}

func (b *blockObserver) observe(ctx context.Context, h int64, seen time.Duration) error {
	var blk struct {
		Block struct {
			Data struct {
				Txs [][]byte `json:"txs"`
			} `json:"data"`
		} `json:"block"`
	}
	if err := rpcGet(ctx, b.hc, fmt.Sprintf("%s/block?height=%d", b.rpcURL, h), &blk); err != nil {
		return err
	}
	// Result codes are not fetched per block (block_results costs the node
	// ~12 % of its CPU to encode at this rate); the node's own count of tx
	// results by code (/metrics) is checked against the included txs at the end.
	txs := blk.Block.Data.Txs
	ok := len(txs)
	var lat []time.Duration
	for _, tx := range txs {
		if types.IsBeaconTx(tx) { // the proposer's epoch-beacon carrier, not a transfer
			ok--
			b.beacons.Add(1)
			continue
		}
		d, err := types.DecodeTx(tx)
		if err != nil {
			continue
		}
		if ai, found := b.byAddr[string(d.Signer)]; found {
			a := b.accts[ai]
			if n := d.Body.Nonce; n < uint64(len(a.sent)) {
				if t := a.sent[n].Load(); t > 0 {
					lat = append(lat, seen-time.Duration(t))
				}
			}
		}
	}
	b.committed.Add(int64(ok))
	b.mu.Lock()
	b.blocks = append(b.blocks, observedBlock{height: h, ok: ok, seen: seen})
	b.latencies = append(b.latencies, lat...)
	b.mu.Unlock()
	return nil
}

// summarize fills the window's figures: txs in blocks seen in [warmup,
// warmup+duration], per second, and latencies of every committed tx.
func (b *blockObserver) summarize(r *ChainResult, warmup, duration time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	secs := int(duration / time.Second)
	r.Timeline = make([]int, secs)
	var first, last time.Duration
	prev := warmup
	for _, blk := range b.blocks {
		if blk.seen < warmup || blk.seen >= warmup+duration {
			continue
		}
		if r.Blocks == 0 {
			first = blk.seen
		}
		last = blk.seen
		r.Blocks++
		r.WindowCommitted += blk.ok
		r.MaxBlockTxs = max(r.MaxBlockTxs, blk.ok)
		if s := int((blk.seen - warmup) / time.Second); s < secs {
			r.Timeline[s] += blk.ok
		}
		if blk.ok > 0 {
			r.LongestStallSecs = max(r.LongestStallSecs, (blk.seen - prev).Seconds())
			prev = blk.seen
		}
	}
	r.LongestStallSecs = max(r.LongestStallSecs, (warmup + duration - prev).Seconds())
	r.TxPerSecond = float64(r.WindowCommitted) / duration.Seconds()
	if r.Blocks > 1 {
		r.MeanBlockSeconds = (last - first).Seconds() / float64(r.Blocks-1)
	}
	if len(r.Timeline) > 0 {
		r.MinSecond = r.Timeline[0]
		for _, v := range r.Timeline {
			r.MinSecond = min(r.MinSecond, v)
		}
	}
	for i := 0; i+5 <= len(r.Timeline); i++ {
		sum := 0
		for _, v := range r.Timeline[i : i+5] {
			sum += v
		}
		if i == 0 || float64(sum)/5 < r.Min5sRate {
			r.Min5sRate = float64(sum) / 5
		}
	}
	sort.Slice(b.latencies, func(i, j int) bool { return b.latencies[i] < b.latencies[j] })
	if n := len(b.latencies); n > 0 {
		r.P50Millis = float64(b.latencies[n/2].Microseconds()) / 1000
		r.P99Millis = float64(b.latencies[n*99/100].Microseconds()) / 1000
	}
}

func rpcGet(ctx context.Context, hc *http.Client, url string, out any) error {
	for attempt := 0; ; attempt++ {
		err := rpcGetOnce(ctx, hc, url, out)
		if err == nil || attempt == 20 || ctx.Err() != nil {
			return err
		}
		sleepCtx(ctx, 100*time.Millisecond) // results of a fresh block may lag its height by a moment
	}
}

func rpcGetOnce(ctx context.Context, hc *http.Client, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Result json.RawMessage    `json:"result"`
		Error  *rpctypes.RPCError `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	if env.Error != nil {
		return fmt.Errorf("%s: %w", url, env.Error)
	}
	return json.Unmarshal(env.Result, out)
}

// txResultCodes reads the node's agora_app_txs_total{code=...} counters.
func txResultCodes(ctx context.Context, hc *http.Client, url string) (map[string]int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("node metrics: %w", err)
	}
	defer resp.Body.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "agora_app_txs_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		code := ""
		for _, l := range strings.Split(labels, ",") {
			if k, v, ok := strings.Cut(l, "="); ok && k == "code" {
				code = strings.Trim(v, `"`)
			}
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("node metrics line %q: %w", line, err)
		}
		out[code] += int64(f)
	}
	return out, sc.Err()
}

func latestHeight(ctx context.Context, c *client.Client) (int64, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return 0, err
	}
	return st.SyncInfo.LatestBlockHeight, nil
}

func waitHeight(ctx context.Context, c *client.Client, h int64, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for {
		got, err := latestHeight(ctx, c)
		if err == nil && got >= h {
			return nil
		}
		if time.Now().After(end) || ctx.Err() != nil {
			return fmt.Errorf("node not at height %d within %s (at %d, %v)", h, timeout, got, err)
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
}

// queryAt reads a JSON query at height h, waiting a moment for the app to
// have committed it (CometBFT reports a block before the app's commit ends).
func queryAt(ctx context.Context, c *client.Client, path string, h int64, out any) error {
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = c.Query(ctx, path, h, out); err == nil || !client.IsNotFound(err) {
			return err
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// benchNode is the node child process.
type benchNode struct {
	cmd  *exec.Cmd
	rpc  string
	api  string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

func (n *benchNode) output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.logs.String()
}

func (n *benchNode) stop() {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
	}
}

// spawnNode writes a single-validator chain in dir and starts its node as
// `agora start` in a child process, as an operator would run it.
func spawnNode(exe, dir string, g node.GenesisOptions, op types.Address, o ChainOptions) (*benchNode, error) {
	cfg := node.DefaultConfig()
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	cfg.P2P.Laddr = fmt.Sprintf("tcp://127.0.0.1:%d", ports[0])
	cfg.RPC.Laddr = fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	cfg.API.Laddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
	if o.BlockTime > 0 {
		cfg.Consensus.TimeoutCommit = o.BlockTime
	}
	if o.Indexer != "" {
		cfg.TxIndex.Indexer = o.Indexer
	}
	if o.MempoolSize > 0 {
		cfg.Mempool.Size = o.MempoolSize
	}
	cfg.Explorer.Enabled = !o.NoExplorer
	cfg.Instrumentation.CometBFTMetrics = false
	cfg.LogLevel = "warn"
	home := node.NodeHome(dir, 0)
	spec := node.ValidatorSpec{Home: home, Moniker: "bench", Operator: op, Bonded: g.Params.MinValidatorStake * 10, Config: cfg}
	if _, err := node.InitNetwork(g, []node.ValidatorSpec{spec}); err != nil {
		return nil, err
	}
	n := &benchNode{rpc: cfg.RPC.Laddr, api: cfg.API.Laddr, done: make(chan struct{})}
	n.cmd = exec.Command(exe, "start", "--home", home, "--log-level", "warn")
	out, err := n.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	n.cmd.Stderr = n.cmd.Stdout
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the node (%s start --home %s): %w", exe, home, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n.mu.Lock()
			if n.logs.Len() < 1<<20 {
				n.logs.WriteString(sc.Text() + "\n")
			}
			n.mu.Unlock()
		}
		n.cmd.Wait()
		close(n.done)
	}()
	return n, nil
}

func procRSSKiB(pid int) uint64 {
	bz, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(bz), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				return kb
			}
		}
	}
	return 0
}

func loadAverage() string {
	bz, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(bz))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
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
