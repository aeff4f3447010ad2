// Package provider serves the OpenAI API to gateways from a local backend,
// paid by vouchers on on-chain payment channels, and answers each request
// with a signed receipt that it commits on chain (a Merkle root per epoch)
// before redeeming the vouchers.
package provider

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/health"
	"github.com/agoranet/agora/internal/netlimit"
	"github.com/agoranet/agora/reqauth"
	"github.com/agoranet/agora/zkml"
)

// Config configures a provider.
type Config struct {
	ChainRPC     string
	Key          ed25519.PrivateKey
	Listen       string // host:port
	Endpoint     string // public base URL registered on chain (default http://Listen)
	DataDir      string
	PriceIn      uint64  // uagr per 1,000 prompt tokens
	PriceOut     uint64  // uagr per 1,000 completion tokens
	Pricing      Pricing // fixed (default) or adaptive within bounds
	Concurrency  int     // concurrent generations (default 1)
	Queue        int     // waiting requests beyond that before 429 (default 16)
	Bond         uint64  // provider bond to keep (default: the chain minimum)
	CPU, GPU     string  // hardware description registered on chain
	MemoryBytes  uint64
	Capabilities []string
	DefaultMax   int           // max_tokens when a request gives none (default 256)
	Credit       uint64        // uagr a channel may owe beyond its best voucher (default 1,000,000)
	Tick         time.Duration // chain polling period (default 500ms)
	// Limits are the HTTP server's connection cap and timeouts (no write
	// timeout: completions stream).
	Limits netlimit.Limits
	// MaxBlockAge: /healthz reports the chain stalled once the node has
	// committed no block for this long (default 30s).
	MaxBlockAge time.Duration
	// AuthWindow: a request's X-Agora-Auth timestamp may differ from the
	// provider's clock by this much (default 2 minutes); AuthCapacity bounds
	// the nonces remembered meanwhile (default reqauth.DefaultCapacity).
	AuthWindow   time.Duration
	AuthCapacity int
	// DrainTimeout bounds how long Stop lets requests in flight finish
	// (default 10s); then they are cut short, each billing what it
	// generated (a partial receipt) before the store closes.
	DrainTimeout time.Duration

	// ExtraCapabilities are registered besides the backend's (e.g. "wasm"
	// when the process also runs compute jobs), and Mount adds another
	// service's routes (the executor's) to the provider's server.
	ExtraCapabilities []string
	Mount             func(mux *http.ServeMux)

	// ZK are the zk models this provider proves inferences of (zk.go).
	ZK []ZKModel
	// ZKWeights, for tests only, swaps the weights proofs are made with:
	// a provider proving with other weights than it registered.
	ZKWeights func(*zkml.Model) *zkml.Model
}

// Provider is a running provider.
type Provider struct {
	health     *health.Monitor // the chain's liveness, for /healthz
	stopHealth context.CancelFunc

	cfg     Config
	log     *slog.Logger
	backend Backend
	store   *Store
	chain   *client.Client
	signer  *client.Signer
	addr    types.Address
	chainID string
	params  types.Params
	metrics *metrics
	reg     *prometheus.Registry

	mu       sync.Mutex // guards the fields below
	epoch    uint64
	height   int64
	reserved map[uint64]uint64 // channel → max cost of requests in flight
	billed   map[uint64]uint64 // channel → total of its receipts
	vouchers map[uint64]ChannelState
	verified map[uint64]*types.Voucher // last voucher whose signature checked out
	zk       map[uint64]*zkServed      // zk models served, by registered id (set at Start)
	epCount  map[uint64]uint64         // epoch → receipts issued (next index)
	epTotal  map[uint64]uint64
	epTokens map[uint64]uint64 // epoch → prompt + completion tokens
	missed   map[uint64]bool   // epochs whose commit deadline passed (the loop's)
	answered map[string]int64  // "epoch/index" of answered challenges → height to retry after (loop goroutine only)
	writing  map[uint64]int    // epoch → receipts being written
	chans    map[uint64]api.ChannelView
	chanMu   map[uint64]*sync.Mutex
	authKeys map[uint64]*reqauth.Key // channel → request key (reqauth)

	nextRedeem int64 // height of the next periodic redemption (loop only)

	// prices (guarded by mu): charged now, and published for a later epoch
	priceIn, priceOut uint64
	nextIn, nextOut   uint64
	nextFrom          uint64 // epoch from which next prices apply (0: none pending)
	utilSum, utilN    uint64 // utilisation samples this epoch (permille)
	lastPricedEpoch   uint64

	queue chan struct{}
	sem   chan struct{}

	recorder recorder
	guard    *reqauth.Guard // requests' freshness and nonces; set by Start

	srv    *http.Server
	ln     net.Listener
	cancel context.CancelFunc
	done   chan struct{}

	// Shutdown: stopping refuses new requests (503); cut ends the
	// generations still running when the drain runs out (cutAll).
	stopping atomic.Bool
	cut      context.Context
	cutAll   context.CancelFunc
	requests map[string]*tracked // streams by request id (guarded by mu; cancel.go)

	stopOnce sync.Once
	stopErr  error
}

type metrics struct {
	requests *prometheus.CounterVec
	tokens   *prometheus.CounterVec
	billed   prometheus.Counter
	latency  prometheus.Histogram
	// authRefused counts requests refused for their X-Agora-Auth, by reason.
	authRefused *prometheus.CounterVec
	partial     prometheus.Counter
	// zk answers (zk.go)
	zkProofs       prometheus.Counter
	zkProveSeconds prometheus.Histogram
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "agora", Subsystem: "provider", Name: "requests_total", Help: "Requests by HTTP status."}, []string{"status"}),
		tokens:   prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "agora", Subsystem: "provider", Name: "tokens_total", Help: "Tokens served by kind."}, []string{"kind"}),
		billed:   prometheus.NewCounter(prometheus.CounterOpts{Namespace: "agora", Subsystem: "provider", Name: "billed_uagr_total", Help: "uagr billed in receipts."}),
		latency:  prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "agora", Subsystem: "provider", Name: "request_seconds", Help: "Request duration.", Buckets: prometheus.ExponentialBuckets(0.001, 3, 10)}),
		authRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "agora", Subsystem: "provider", Name: "auth_refused_total",
			Help: "Paid requests refused for their X-Agora-Auth header, by reason (missing, malformed, channel, key, mac, stale, future, before_start, replay, full)."}, []string{"reason"}),
		partial:  prometheus.NewCounter(prometheus.CounterOpts{Namespace: "agora", Subsystem: "provider", Name: "partial_receipts_total", Help: "Receipts for streams cut short (client gone, or stopping): the tokens generated until then."}),
		zkProofs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "agora", Subsystem: "provider", Name: "zk_answers_total", Help: "Proven zk answers served."}),
		zkProveSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "agora", Subsystem: "provider", Name: "zk_answer_seconds", Help: "Time to answer a zk request (proving dominates).",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 10)}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.tokens, m.billed, m.latency, m.authRefused, m.partial, m.zkProofs, m.zkProveSeconds)
	}
	return m
}

// New prepares a provider; Start connects it to the chain and serves.
func New(cfg Config, backend Backend, logger *slog.Logger, reg *prometheus.Registry) (*Provider, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 16
	}
	if cfg.DefaultMax <= 0 {
		cfg.DefaultMax = 256
	}
	if cfg.Credit == 0 {
		cfg.Credit = 1_000_000
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 500 * time.Millisecond
	}
	if cfg.MaxBlockAge == 0 {
		cfg.MaxBlockAge = 30 * time.Second
	}
	if err := cfg.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("provider: %w", err)
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if logger == nil {
		logger = slog.Default()
	}
	c, err := client.New(cfg.ChainRPC)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		cfg: cfg, log: logger, backend: backend, chain: c, signer: c.NewSigner(cfg.Key),
		addr:     types.AddressFromPubKey(cfg.Key.Public().(ed25519.PublicKey)),
		reserved: map[uint64]uint64{}, chans: map[uint64]api.ChannelView{}, chanMu: map[uint64]*sync.Mutex{}, authKeys: map[uint64]*reqauth.Key{},
		billed: map[uint64]uint64{}, vouchers: map[uint64]ChannelState{}, verified: map[uint64]*types.Voucher{}, epCount: map[uint64]uint64{}, missed: map[uint64]bool{},
		epTotal: map[uint64]uint64{}, epTokens: map[uint64]uint64{}, answered: map[string]int64{}, writing: map[uint64]int{},
		queue: make(chan struct{}, cfg.Concurrency+cfg.Queue), sem: make(chan struct{}, cfg.Concurrency),
		metrics: newMetrics(reg), reg: reg, done: make(chan struct{}),
		priceIn: cfg.PriceIn, priceOut: cfg.PriceOut,
	}
	p.recorder.sign, p.recorder.store = p.signReceipts, p.storeReceipts
	p.health = health.New(health.FromStatus(c.Status), cfg.MaxBlockAge, "max_block_age")
	p.health.Register(reg)
	p.cut, p.cutAll = context.WithCancel(context.Background())
	return p, nil
}

// Address is the provider's account address.
func (p *Provider) Address() types.Address { return p.addr }

// URL is the provider's base URL.
func (p *Provider) URL() string {
	if p.cfg.Endpoint != "" {
		return p.cfg.Endpoint
	}
	return "http://" + p.ln.Addr().String()
}

// Start opens the store, registers on chain, and serves.
func (p *Provider) Start(ctx context.Context) error {
	st, err := openStore(p.cfg.DataDir, p.log)
	if err != nil {
		return err
	}
	p.store = st
	st.db.SetBusy(func() bool { return !p.idle() })
	// rebuild billing totals and epoch counts from the stored receipts
	if err := st.Scan(func(r *types.Receipt) {
		p.billed[r.ChannelId] += r.Amount
		p.epCount[r.Epoch] = max(p.epCount[r.Epoch], r.Index+1)
		p.epTotal[r.Epoch] += r.Amount
		p.epTokens[r.Epoch] += uint64(r.PromptTokens) + uint64(r.CompletionTokens)
	}); err != nil {
		st.Close()
		return fmt.Errorf("scan receipts: %w", err)
	}
	if err := p.zkBilled(); err != nil {
		st.Close()
		return fmt.Errorf("scan zk answers: %w", err)
	}
	ln, err := net.Listen("tcp", p.cfg.Listen)
	if err != nil {
		st.Close()
		return fmt.Errorf("provider listen on %s: %w", p.cfg.Listen, err)
	}
	p.ln = ln
	if err := p.syncChain(ctx); err != nil {
		ln.Close()
		st.Close()
		return err
	}
	if err := p.register(ctx); err != nil {
		ln.Close()
		st.Close()
		return err
	}
	if err := p.loadZK(ctx); err != nil {
		ln.Close()
		st.Close()
		return err
	}
	// A request signed before now may have been served by a previous run,
	// whose nonces are gone: the guard refuses those (reqauth.ErrBeforeStart).
	p.guard = reqauth.NewGuard(p.cfg.AuthWindow, time.Now(), p.cfg.AuthCapacity)
	hctx, hcancel := context.WithCancel(context.Background())
	p.stopHealth = hcancel
	go p.health.Run(hctx)
	p.srv, ln = netlimit.Server(ln, p.routes(), p.cfg.Limits)
	go p.srv.Serve(ln)
	loopCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go p.loop(loopCtx)
	p.log.Info("provider started", "address", p.addr, "url", p.URL(), "models", len(p.backend.Models()), "epoch", p.epoch)
	return nil
}

// Stop shuts the server, finishes the chain loop and closes the store.
func (p *Provider) Stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.stop() })
	return p.stopErr
}

// cutGrace bounds how long requests cut at the end of the drain take to
// record their partial receipts and end their responses.
const cutGrace = 5 * time.Second

// stop drains, in this order: new requests are refused (listener closed,
// 503 on open connections); requests in flight finish, up to DrainTimeout;
// those still running are then cut short, each recording a receipt for what
// it generated and ending its stream with it and [DONE]; then the chain
// loop stops, and the store closes last, once nothing can write to it.
func (p *Provider) stop() error {
	p.stopping.Store(true)
	if p.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DrainTimeout)
		err := p.srv.Shutdown(ctx)
		cancel()
		if err != nil {
			p.log.Warn("requests still running after the drain timeout: cutting them short", "drain", p.cfg.DrainTimeout)
			p.cutAll()
			ctx, cancel := context.WithTimeout(context.Background(), cutGrace)
			if err := p.srv.Shutdown(ctx); err != nil {
				p.log.Error("requests still running after being cut short: closing their connections", "err", err)
				p.srv.Close()
			}
			cancel()
		}
	}
	if p.stopHealth != nil {
		p.stopHealth()
	}
	p.cutAll()
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	if p.store != nil {
		return p.store.Close()
	}
	return nil
}

func (p *Provider) syncChain(ctx context.Context) error {
	id, err := p.chain.ChainID(ctx)
	if err != nil {
		return err
	}
	p.chainID = id
	if p.params, err = p.chain.WaitParams(ctx); err != nil {
		return err
	}
	st, err := p.chain.Status(ctx)
	if err != nil {
		return err
	}
	p.height = st.SyncInfo.LatestBlockHeight
	p.epoch = epochs.Number(p.params, p.height+1)
	return nil
}

func (p *Provider) info() *types.ProviderInfo {
	info := &types.ProviderInfo{
		Endpoint: p.URL(), PriceInputPer_1K: p.cfg.PriceIn, PriceOutputPer_1K: p.cfg.PriceOut, // base prices at (re)start
		Hardware: &types.Hardware{Cpu: p.cfg.CPU, Gpu: p.cfg.GPU, MemoryBytes: p.cfg.MemoryBytes}, Capabilities: p.cfg.Capabilities,
	}
	if len(info.Capabilities) == 0 {
		info.Capabilities = []string{"chat"}
		if c, ok := p.backend.(interface{ Capabilities() []string }); ok {
			info.Capabilities = c.Capabilities()
		}
	}
	extra := p.cfg.ExtraCapabilities
	if len(p.cfg.ZK) > 0 {
		extra = append(slices.Clip(extra), "zk")
	}
	for _, c := range extra {
		if !slices.Contains(info.Capabilities, c) {
			info.Capabilities = append(info.Capabilities, c)
		}
	}
	for _, m := range p.backend.Models() {
		h := m.Hash
		info.Models = append(info.Models, &types.ModelOffer{Hash: h[:], Name: m.Name, ContextLength: uint32(m.ContextLength)})
	}
	return info
}

// register bonds (when below the target) and registers or updates the entry.
func (p *Provider) register(ctx context.Context) error {
	want := max(p.cfg.Bond, p.params.MinProviderStake)
	var pv api.ProviderView
	err := p.chain.Query(ctx, api.ProviderPath(p.addr), 0, &pv)
	if err != nil && !client.IsNotFound(err) {
		return err
	}
	if pv.Bonded < want {
		if _, err := p.signer.Send(ctx, &types.MsgBondProvider{Amount: want - pv.Bonded}); err != nil {
			return fmt.Errorf("bond provider stake: %w", err)
		}
	}
	info := p.info()
	if pv.Registered {
		_, err = p.signer.Send(ctx, &types.MsgUpdateProvider{Info: info})
	} else {
		_, err = p.signer.Send(ctx, &types.MsgRegisterProvider{Info: info})
	}
	if err != nil {
		return fmt.Errorf("register provider: %w", err)
	}
	return nil
}

// channel returns on-chain channel info, refreshing from the chain when the
// cache does not cover need (a deposit that may have been topped up).
func (p *Provider) channel(ctx context.Context, id uint64, need uint64) (api.ChannelView, error) {
	p.mu.Lock()
	c, ok := p.chans[id]
	h := p.height
	p.mu.Unlock()
	// a cached entry too close to expiry may have been extended since
	if ok && c.Deposit >= need && !c.Closed && c.ExpiryHeight > h+p.params.EpochLength+p.params.CommitWindow+2 {
		return c, nil
	}
	if err := p.chain.Query(ctx, api.ChannelPath(id), 0, &c); err != nil {
		return c, err
	}
	p.mu.Lock()
	p.chans[id] = c
	p.mu.Unlock()
	return c, nil
}

func (p *Provider) channelLock(id uint64) *sync.Mutex {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.chanMu[id]
	if !ok {
		m = &sync.Mutex{}
		p.chanMu[id] = m
	}
	return m
}

// Store exposes the provider's durable state (for tools and tests).
func (p *Provider) Store() *Store { return p.store }

// Billed is the total of the receipts issued on a channel.
func (p *Provider) Billed(channel uint64) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.billed[channel]
}

// prices returns the prices charged now.
func (p *Provider) prices() (uint64, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.priceIn, p.priceOut
}
