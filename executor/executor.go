// Package executor is a provider's compute-job role: it watches the job
// market (chain/jobs) for orders in bidding that fit its limits, bids on
// them with the provider's account key, and runs each lease it wins on
// engine/wasm:
//
//   - it takes the owner's uploads of the order's module and inputs (blob
//     paths, protocol/jobs UploadHeader: the order's owner, one of the
//     order's blobs, an order leased to this provider, at most MaxUpload
//     bytes);
//   - it runs the job as protocol/jobs describes it (no arguments, inputs
//     under /in by index, the order's seed, gas and memory limits), one
//     checkpoint every checkpoint_interval steps, each committed in order
//     (commit_checkpoint), the last with the result list's blob ID; a
//     deterministic failure is committed as protocol/jobs FailureOutput says;
//   - it keeps the serialized state of every checkpoint on disk and serves
//     it (protocol/jobs StatePath), and any step of a lease under dispute
//     by restoring the nearest earlier checkpoint and stepping;
//   - it defends disputes against its checkpoints: the bisect moves, from
//     its own states;
//   - after a restart it resumes each running lease from its last committed
//     checkpoint (the chain says which, the disk holds its state), so
//     nothing accepted is lost.
//
// CPU is capped by MaxConcurrent (a job runs on one goroutine: at most that
// many cores), memory by MaxPages per job (at most MaxConcurrent × MaxPages
// × 64 KiB of linear memory); leases beyond MaxConcurrent wait in a queue
// of at most Queue, and the executor stops bidding when it is full.
package executor

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/internal/blobstore"
)

// Config is an executor's setup.
type Config struct {
	ChainRPC string
	Key      ed25519.PrivateKey // the provider's account key: bids and checkpoints
	DataDir  string             // blobs and job states
	// Price is the bid, uagr per million gas; MaxCollateral the most
	// collateral a bid locks (an order asking more is skipped).
	Price         uint64
	MaxCollateral uint64
	MaxConcurrent int    // jobs running at once (default 1)
	Queue         int    // won leases waiting beyond those (default 4)
	MaxGas        uint64 // the largest gas limit bid on (default 10^11)
	MaxPages      uint32 // the largest memory limit bid on, 64 KiB pages (default 4096)
	MaxUpload     uint64 // the largest module or input taken, bytes (default 256 MiB)
	// MinBlocks: an order is bid on only if its deadline is at least this
	// many blocks after its bid window (time to run; default 20).
	MinBlocks int64
	Tick      time.Duration // chain polling period (default 500ms)
	// KeepResults is how many blocks a lease's results (and a
	// compute-to-data run's sealed results) are kept after it ended, for
	// its owner to fetch (default 100,000); GCInterval how often unused
	// blobs are collected (default 1 minute; see gc.go).
	KeepResults int64
	GCInterval  time.Duration
	Interpreter bool // wazero's interpreter instead of its compiler
	// CacheDir keeps compiled modules on disk, so a restart (or a
	// validator in the same process sharing the directory) does not
	// compile them again (default DataDir/wasm-cache; "-": none).
	CacheDir string

	// Standalone serving (a jobs-only provider): Listen is the address of
	// the executor's own server; with Register the executor bonds and
	// registers the account as a provider with the wasm capability and
	// Endpoint (default http://Listen). Inside a provider process, leave
	// Listen empty and mount Handler on the provider's server instead.
	Listen   string
	Endpoint string
	Register bool
	Bond     uint64 // provider bond to keep when registering (default the chain minimum)

	// Tamper is a test-only fault: when it returns true for (lease, step),
	// the executor flips the last byte of the job's memory after that step,
	// so its later checkpoints are wrong while it still answers disputes
	// honestly from its own (tampered) states.
	Tamper func(lease, step uint64) bool
	// OtherData is a test-only fault: when it returns true for a lease,
	// the executor runs the job on other inputs and data (each file's
	// bytes reversed): a trainer that trains on other data than the order
	// names.
	OtherData func(lease uint64) bool
	// OnStart, a benchmark hook, is called as a lease's job is about to
	// run its first instruction (its instance created from step 0).
	OnStart func(lease uint64)
}

// Executor is a running executor.
type Executor struct {
	cfg     Config
	log     *slog.Logger
	chain   *client.Client
	signer  *client.Signer
	addr    types.Address
	chainID string
	params  types.Params
	store   *blobstore.Store
	// datasets holds the datasets hosted here, apart from store: no
	// generic blob route serves them (data.go).
	datasets *blobstore.Store
	engine   *wasm.Engine
	metrics  *metrics
	reg      *prometheus.Registry
	blobs    *blobstore.Server

	sem chan struct{} // MaxConcurrent slots

	mu      sync.Mutex
	lastGC  time.Time // the loop's last garbage collection
	leases  map[uint64]*lease
	bid     map[uint64]bool   // orders bid on (or decided against)
	moved   map[uint64]uint32 // dispute → moves already answered
	modules map[string]*wasm.Module
	// uploaded is closed (and replaced) when an upload lands, waking the
	// leases waiting for their blobs at once rather than at the next tick.
	uploaded chan struct{}
	// dataFiles caches the /data files of the datasets run last (a
	// dataset's tar is read once, not per run).
	dataFiles []cachedData

	srv    *http.Server
	ln     net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{}
}

type metrics struct {
	running, queued prometheus.Gauge
	gas             prometheus.Counter
	checkpoints     prometheus.Counter
	bids            *prometheus.CounterVec
	disputeMoves    prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	o := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "agora", Subsystem: "executor", Name: name, Help: help}
	}
	m := &metrics{
		running:      prometheus.NewGauge(prometheus.GaugeOpts(o("jobs_running", "Jobs executing now."))),
		queued:       prometheus.NewGauge(prometheus.GaugeOpts(o("jobs_queued", "Won leases waiting for their blobs or a free slot."))),
		gas:          prometheus.NewCounter(prometheus.CounterOpts(o("gas_executed_total", "Gas executed (re-executions for disputes included)."))),
		checkpoints:  prometheus.NewCounter(prometheus.CounterOpts(o("checkpoints_committed_total", "Checkpoints committed on chain."))),
		bids:         prometheus.NewCounterVec(prometheus.CounterOpts(o("bids_total", "Bids by outcome (sent, refused).")), []string{"result"}),
		disputeMoves: prometheus.NewCounter(prometheus.CounterOpts(o("dispute_moves_total", "Bisect moves sent as a dispute's defender."))),
	}
	if reg != nil {
		reg.MustRegister(m.running, m.queued, m.gas, m.checkpoints, m.bids, m.disputeMoves)
	}
	return m
}

// New prepares an executor; Start connects it to the chain and runs it.
// reg receives its metrics (the provider's registry when mounted).
func New(cfg Config, logger *slog.Logger, reg *prometheus.Registry) (*Executor, error) {
	if cfg.Key == nil {
		return nil, errors.New("executor: no key")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("executor: no data directory")
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 1
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 4
	}
	if cfg.MaxGas == 0 {
		cfg.MaxGas = 100_000_000_000
	}
	if cfg.MaxPages == 0 {
		cfg.MaxPages = wasm.DefaultMemoryPages
	}
	if cfg.MaxUpload == 0 {
		cfg.MaxUpload = 256 << 20
	}
	if cfg.MinBlocks == 0 {
		cfg.MinBlocks = 20
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 500 * time.Millisecond
	}
	if cfg.KeepResults <= 0 {
		cfg.KeepResults = 100_000
	}
	if cfg.GCInterval <= 0 {
		cfg.GCInterval = time.Minute
	}
	if cfg.Price == 0 {
		return nil, errors.New("executor: a price per million gas is required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	c, err := client.New(cfg.ChainRPC)
	if err != nil {
		return nil, err
	}
	st, err := blobstore.Open(filepath.Join(cfg.DataDir, "blobs"))
	if err != nil {
		return nil, fmt.Errorf("executor: %w", err)
	}
	ds, err := blobstore.Open(filepath.Join(cfg.DataDir, "datasets"))
	if err != nil {
		return nil, fmt.Errorf("executor: %w", err)
	}
	e := &Executor{
		datasets: ds,
		cfg:      cfg, log: logger.With("role", "executor"), chain: c, signer: c.NewSigner(cfg.Key),
		addr:  types.AddressFromPubKey(cfg.Key.Public().(ed25519.PublicKey)),
		store: st, metrics: newMetrics(reg), reg: reg, sem: make(chan struct{}, cfg.MaxConcurrent),
		leases: map[uint64]*lease{}, bid: map[uint64]bool{}, moved: map[uint64]uint32{}, modules: map[string]*wasm.Module{},
		done: make(chan struct{}), uploaded: make(chan struct{}),
	}
	e.blobs = &blobstore.Server{Store: st, Authorize: e.authorize, MaxUpload: cfg.MaxUpload, Log: e.log}
	return e, nil
}

// Address is the provider's account address.
func (e *Executor) Address() types.Address { return e.addr }

// Store is the executor's blob store (uploads and results).
func (e *Executor) Store() *blobstore.Store { return e.store }

// URL is the standalone server's base URL ("" when mounted).
func (e *Executor) URL() string {
	if e.cfg.Endpoint != "" {
		return e.cfg.Endpoint
	}
	if e.ln == nil {
		return ""
	}
	return "http://" + e.ln.Addr().String()
}

// Start reads the chain, registers when standalone, serves when Listen is
// set, and starts the market loop (resuming the running leases).
func (e *Executor) Start(ctx context.Context) error {
	var err error
	if e.chainID, err = e.chain.ChainID(ctx); err != nil {
		return fmt.Errorf("executor: %w", err)
	}
	if e.params, err = e.chain.WaitParams(ctx); err != nil {
		return fmt.Errorf("executor: %w", err)
	}
	if e.params.Jobs == nil {
		return errors.New("executor: this chain has no job market (its genesis has no params.jobs)")
	}
	if e.engine, err = wasm.NewEngine(context.Background(), wasm.Options{Interpreter: e.cfg.Interpreter, CacheDir: e.cacheDir()}); err != nil {
		return fmt.Errorf("executor: %w", err)
	}
	if e.cfg.Listen != "" {
		if e.ln, err = net.Listen("tcp", e.cfg.Listen); err != nil {
			return fmt.Errorf("executor listen on %s: %w", e.cfg.Listen, err)
		}
	}
	if e.cfg.Register {
		if err := e.register(ctx); err != nil {
			if e.ln != nil {
				e.ln.Close()
			}
			return err
		}
	}
	if e.ln != nil {
		mux := http.NewServeMux()
		e.Mount(mux)
		mux.Handle("GET /metrics", promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
		e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go e.srv.Serve(e.ln)
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go e.loop(loopCtx)
	e.log.Info("executor started", "address", e.addr, "url", e.URL(), "price", e.cfg.Price, "max_concurrent", e.cfg.MaxConcurrent)
	return nil
}

// register bonds up to the target and registers (or updates) the account
// as a provider offering the wasm capability and no model.
func (e *Executor) register(ctx context.Context) error {
	want := max(e.cfg.Bond, e.params.MinProviderStake)
	var pv api.ProviderView
	err := e.chain.Query(ctx, api.ProviderPath(e.addr), 0, &pv)
	if err != nil && !client.IsNotFound(err) {
		return err
	}
	if pv.Bonded < want {
		if _, err := e.signer.Send(ctx, &types.MsgBondProvider{Amount: want - pv.Bonded}); err != nil {
			return fmt.Errorf("bond provider stake: %w", err)
		}
	}
	info := &types.ProviderInfo{Endpoint: e.URL(), Capabilities: []string{"wasm"}, Hardware: &types.Hardware{}}
	if pv.Registered {
		_, err = e.signer.Send(ctx, &types.MsgUpdateProvider{Info: info})
	} else {
		_, err = e.signer.Send(ctx, &types.MsgRegisterProvider{Info: info})
	}
	if err != nil {
		return fmt.Errorf("register provider: %w", err)
	}
	return nil
}

// Stop stops bidding and serving, lets each job reach the end of its
// current step (a stopped job resumes from its last committed checkpoint
// on the next start) and releases the runtime.
func (e *Executor) Stop() error {
	if e.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		e.srv.Shutdown(ctx)
		cancel()
	}
	if e.cancel != nil {
		e.cancel()
		<-e.done
	}
	e.wg.Wait()
	ctx := context.Background()
	e.mu.Lock()
	for _, m := range e.modules {
		m.Close(ctx)
	}
	e.modules = map[string]*wasm.Module{}
	e.mu.Unlock()
	if e.engine != nil {
		return e.engine.Close(ctx)
	}
	return nil
}

// loop polls the chain: bids, picks up won leases, ends lost ones, answers
// disputes.
func (e *Executor) loop(ctx context.Context) {
	defer close(e.done)
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	for {
		if err := e.tick(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("executor: chain poll failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (e *Executor) tick(ctx context.Context) error {
	st, err := e.chain.Status(ctx)
	if err != nil {
		return err
	}
	height := st.SyncInfo.LatestBlockHeight
	ls, err := e.chain.JobLeasesByProvider(ctx, e.addr)
	if err != nil {
		return err
	}
	for _, l := range ls {
		e.mu.Lock()
		lz := e.leases[l.ID]
		e.mu.Unlock()
		switch {
		case lz == nil && l.Status == "running":
			e.startLease(ctx, l)
		case lz != nil && l.Status != "running":
			lz.end(l.Status)
		}
		if l.OpenDispute != 0 {
			e.defend(ctx, l)
		}
		if l.CollateralReleased && l.OpenDispute == 0 {
			// Nobody can challenge the lease any more: its states are
			// of no use (the results stay, for the owner to fetch).
			e.dropStates(l.ID)
		}
	}
	err = e.bidOrders(ctx, height)
	// Garbage after the bids (a bid window is a few blocks: it must not
	// wait on a sweep of the disk), once a GCInterval, the first one a
	// GCInterval after the start.
	if now := time.Now(); e.lastGC.IsZero() {
		e.lastGC = now
	} else if now.Sub(e.lastGC) >= e.cfg.GCInterval {
		e.lastGC = now
		st, gcErr := e.CollectGarbage(ctx, height, now)
		if gcErr != nil {
			e.log.Warn("executor: garbage collection", "err", gcErr)
		} else if st.Blobs+st.Datasets+st.Sealed > 0 {
			e.log.Info("executor: unused blobs deleted", "blobs", st.Blobs, "datasets", st.Datasets, "sealed", st.Sealed, "bytes", st.Bytes)
		}
	}
	return err
}

// active counts the leases this executor holds and has not finished.
func (e *Executor) active() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, l := range e.leases {
		if !l.finished() {
			n++
		}
	}
	return n
}

// bidOrders bids on the orders in bidding that fit.
func (e *Executor) bidOrders(ctx context.Context, height int64) error {
	orders, err := e.chain.JobOrdersByStatus(ctx, "bidding")
	if err != nil {
		return err
	}
	for _, o := range orders {
		e.mu.Lock()
		seen := e.bid[o.ID]
		e.mu.Unlock()
		if seen || height > o.BidWindowEnd {
			continue
		}
		if why := e.unfit(ctx, o); why != "" {
			e.log.Debug("not bidding", "order", o.ID, "why", why)
			e.mu.Lock()
			e.bid[o.ID] = true
			e.mu.Unlock()
			continue
		}
		if e.active() >= e.cfg.MaxConcurrent+e.cfg.Queue {
			continue // full now: perhaps before the window ends
		}
		bids, err := e.chain.JobBids(ctx, o.ID)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(bids, func(b api.JobBidView) bool { return bytes.Equal(b.Provider, e.addr) }) {
			e.mu.Lock()
			e.bid[o.ID] = true // a previous run's bid
			e.mu.Unlock()
			continue
		}
		e.mu.Lock()
		e.bid[o.ID] = true
		e.mu.Unlock()
		if _, err := e.signer.Send(ctx, &types.MsgBidJob{OrderId: o.ID, Price: e.cfg.Price, Collateral: o.Collateral}); err != nil {
			e.metrics.bids.WithLabelValues("refused").Inc()
			e.log.Warn("bid refused", "order", o.ID, "err", err)
			continue
		}
		e.metrics.bids.WithLabelValues("sent").Inc()
		e.log.Info("bid", "order", o.ID, "price", e.cfg.Price, "collateral", o.Collateral)
		if o.DatasetID != 0 {
			// Only this host may bid: the lease is ours, so compile a
			// module already held (allowed modules are reused) while the
			// bid window runs.
			if mod, _ := blobIDs(o); e.store.Has(mod) {
				go e.module(ctx, o)
			}
		}
	}
	return nil
}

// feeReserve is what a bid leaves in the account besides the collateral:
// the fees of the lease's checkpoints.
const feeReserve = 1_000_000

// unfit says why the executor does not bid on o, or "".
func (e *Executor) unfit(ctx context.Context, o api.JobOrderView) string {
	if why := outOfLimits(e.cfg, e.addr, o); why != "" {
		return why
	}
	if o.DatasetID != 0 {
		if why := e.datasetUnfit(ctx, o); why != "" {
			return why
		}
	}
	acc, err := e.chain.Account(ctx, e.addr)
	if err != nil {
		return "balance: " + err.Error()
	}
	if acc.Balance < o.Collateral+feeReserve {
		return fmt.Sprintf("balance %d cannot lock collateral %d and keep %d for fees", acc.Balance, o.Collateral, feeReserve)
	}
	return ""
}

// outOfLimits says which of the executor's limits o exceeds, or "".
func outOfLimits(cfg Config, self types.Address, o api.JobOrderView) string {
	switch {
	case bytes.Equal(o.Owner, self):
		return "own order"
	case o.GasLimit > cfg.MaxGas:
		return fmt.Sprintf("gas limit %d above %d", o.GasLimit, cfg.MaxGas)
	case o.MemoryPages > cfg.MaxPages:
		return fmt.Sprintf("memory %d pages above %d", o.MemoryPages, cfg.MaxPages)
	case o.MaxPrice < cfg.Price:
		return fmt.Sprintf("max price %d below ours %d", o.MaxPrice, cfg.Price)
	case o.Collateral > cfg.MaxCollateral:
		return fmt.Sprintf("collateral %d above our cap %d", o.Collateral, cfg.MaxCollateral)
	case o.Deadline < o.BidWindowEnd+cfg.MinBlocks:
		return fmt.Sprintf("deadline %d leaves fewer than %d blocks after bidding", o.Deadline, cfg.MinBlocks)
	}
	return ""
}

// cacheDir is where compiled modules are kept ("" for none).
func (e *Executor) cacheDir() string {
	switch e.cfg.CacheDir {
	case "-":
		return ""
	case "":
		return filepath.Join(e.cfg.DataDir, "wasm-cache")
	}
	return e.cfg.CacheDir
}

// leaseDir is where a lease's checkpoint states are kept.
func (e *Executor) leaseDir(id uint64) string {
	return filepath.Join(e.cfg.DataDir, "leases", fmt.Sprint(id))
}

func (e *Executor) statePath(lease, step uint64) string {
	return filepath.Join(e.leaseDir(lease), fmt.Sprintf("%020d.state", step))
}

// storedSteps lists the steps of a lease's stored states, ascending.
func (e *Executor) storedSteps(lease uint64) []uint64 {
	ents, _ := os.ReadDir(e.leaseDir(lease))
	var out []uint64
	for _, en := range ents {
		var s uint64
		if _, err := fmt.Sscanf(en.Name(), "%020d.state", &s); err == nil && filepath.Ext(en.Name()) == ".state" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// dropStates removes a settled lease's checkpoint states.
func (e *Executor) dropStates(lease uint64) {
	dir := e.leaseDir(lease)
	if _, err := os.Stat(dir); err != nil {
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		e.log.Warn("remove a settled lease's states", "lease", lease, "err", err)
		return
	}
	e.log.Debug("removed a settled lease's states", "lease", lease)
}
