// Package gateway is the OpenAI-compatible front clients use: it finds
// providers for a model on chain, routes by price, latency and success,
// opens payment channels lazily, pays with vouchers for the receipts it has
// verified, streams responses through, fails over before the first byte,
// and keeps every receipt.
package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/health"
	"github.com/agoranet/agora/internal/hop"
	"github.com/agoranet/agora/internal/netlimit"
	"github.com/agoranet/agora/internal/oai"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/protocol/payment"
	"github.com/agoranet/agora/receipt"
	"github.com/agoranet/agora/reqauth"
)

// Config configures a gateway.
type Config struct {
	ChainRPC string
	Key      ed25519.PrivateKey // the client account that pays
	Listen   string
	DataDir  string
	APIKeys  []string // accepted bearer keys paying from Key (none and no Accounts: no auth, for a devnet)
	// Accounts maps further API keys to their own paying account keys: each
	// pays for its requests from its own channels and sees its own receipts.
	Accounts      map[string]ed25519.PrivateKey
	Deposit       uint64        // uagr put in each new channel (default 10 AGR)
	ChannelBlocks int64         // channel lifetime in blocks (default 2000)
	DefaultMax    int           // max_tokens when a request gives none (default 256)
	Refresh       time.Duration // provider directory refresh (default 2s)
	FlushAfter    time.Duration // pay outstanding receipts after this idle time (default 300ms)
	Tries         int           // providers tried before giving up (default 3)
	// FailureHalfLife: a provider's failures count half as much after this
	// long, so a failed provider is retried once it may have recovered
	// (default 10s).
	FailureHalfLife time.Duration
	// PayEvery: a new voucher is signed once this many uagr of receipts are
	// unpaid (and when idle); until then the last voucher is re-sent, so
	// neither side signs or verifies a signature per request (default 50,000).
	PayEvery uint64
	// Limits are the HTTP server's connection cap and timeouts (no write
	// timeout: completions stream).
	Limits netlimit.Limits
	// MaxBlockAge: /healthz reports the chain stalled once the node has
	// committed no block for this long (default 30s).
	MaxBlockAge time.Duration
	// DrainTimeout bounds how long Stop lets requests in flight finish
	// (default 10s); streams still running are then cut short, each
	// ending with the receipt for what it got and [DONE].
	DrainTimeout time.Duration
}

// Gateway is a running gateway.
type Gateway struct {
	active  atomic.Int64 // completions being served
	cfg     Config
	log     *slog.Logger
	chain   *client.Client
	signer  *client.Signer
	addr    types.Address
	chainID string
	params  types.Params
	store   *Store
	httpc   *http.Client
	hop     *hop.Client // completions to providers (the request path)
	metrics *metrics
	reg     *prometheus.Registry

	dirMu     sync.RWMutex
	providers []*providerEntry
	height    int64

	chMu  sync.Mutex
	chans map[string]*channel // by account/provider

	zkMu     sync.Mutex
	zkModels map[uint64]*zkModel // registered zk models looked up so far, by id

	def      *account            // pays for requests without a mapped API key
	accounts map[string]*account // by API key
	// billedAtStart: receipt totals per provider and channel found in the
	// store (and settled since, for channels not loaded yet).
	billedMu      sync.Mutex
	billedAtStart map[string]map[uint64]uint64
	unsettled     []StoredReceipt // receipts the start could not settle (owned by loop)

	srv    *http.Server
	ln     net.Listener
	cancel context.CancelFunc
	done   chan struct{}

	// Shutdown: stopping refuses new requests (503); cut ends the
	// requests still running when the drain runs out (cutAll).
	stopping atomic.Bool
	cut      context.Context
	cutAll   context.CancelFunc

	stopOnce sync.Once
	stopErr  error

	verifyCh     chan pendingReceipt
	verifyCancel context.CancelFunc
	verifyDone   chan struct{}

	health     *health.Monitor // the chain's liveness, for /healthz
	stopHealth context.CancelFunc
}

type providerEntry struct {
	addr     types.Address
	endpoint string
	pub      []byte
	priceIn  uint64
	priceOut uint64
	// prices registered before the current ones: a provider charges a
	// newly published price only from the next epoch, so both are valid.
	prevIn, prevOut uint64
	models          map[string]int // name → context length registered (tokens, prompt and output)
	reputationBps   uint64         // on chain: grows with clean audited epochs, 0 after a fault
	*stats                         // shared across directory refreshes
}

// stats are a provider's routing statistics.
type stats struct {
	mu       sync.Mutex
	latency  float64 // EWMA seconds
	failures float64 // failure count as of failedAt, halving every halfLife after it
	failedAt time.Time
	halfLife time.Duration
}

// recentFailures is the failure count decayed to now, so a provider that
// failed is tried again once it has had time to recover. Call with mu held.
func (s *stats) recentFailures(now time.Time) float64 {
	if s.failures == 0 || s.halfLife <= 0 {
		return s.failures
	}
	return s.failures * math.Exp2(-float64(now.Sub(s.failedAt))/float64(s.halfLife))
}

// account is a paying client account.
type account struct {
	key    ed25519.PrivateKey
	addr   types.Address
	signer *client.Signer
}

type channel struct {
	mu       sync.Mutex
	acct     *account
	provider *providerEntry
	state    ChannelState
	last     *types.Voucher // the voucher for state.Paid
	inflight uint64
	lastUse  time.Time
	// reqKey authenticates requests on channel reqKeyOf (reqauth): derived
	// once per channel, as the channel changes when one is replaced.
	reqKey   reqauth.Key
	reqKeyOf uint64
}

type metrics struct {
	requests *prometheus.CounterVec
	failover prometheus.Counter
	paid     prometheus.Counter
	latency  prometheus.Histogram
	partial  prometheus.Counter
	// proven answers (zk.go)
	zkAnswers prometheus.Counter
	zkFaults  prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests:  prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "agora", Subsystem: "gateway", Name: "requests_total", Help: "Requests by HTTP status."}, []string{"status"}),
		failover:  prometheus.NewCounter(prometheus.CounterOpts{Namespace: "agora", Subsystem: "gateway", Name: "failovers_total", Help: "Requests retried on another provider."}),
		paid:      prometheus.NewCounter(prometheus.CounterOpts{Namespace: "agora", Subsystem: "gateway", Name: "billed_uagr_total", Help: "uagr of verified receipts."}),
		latency:   prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "agora", Subsystem: "gateway", Name: "request_seconds", Help: "Request duration.", Buckets: prometheus.ExponentialBuckets(0.0005, 3, 12)}),
		partial:   prometheus.NewCounter(prometheus.CounterOpts{Namespace: "agora", Subsystem: "gateway", Name: "partial_receipts_total", Help: "Receipts fetched by request id for streams that did not end cleanly (client gone, connection broken, or stopping)."}),
		zkAnswers: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "agora", Subsystem: "gateway", Name: "zk_answers_total", Help: "Proven zk answers verified and paid."}),
		zkFaults:  prometheus.NewCounter(prometheus.CounterOpts{Namespace: "agora", Subsystem: "gateway", Name: "zk_faults_total", Help: "Signed zk answers whose proof failed (reported on chain, not paid)."}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.failover, m.paid, m.latency, m.partial, m.zkAnswers, m.zkFaults)
	}
	return m
}

// New prepares a gateway.
func New(cfg Config, logger *slog.Logger, reg *prometheus.Registry) (*Gateway, error) {
	if cfg.ChannelBlocks < 0 {
		return nil, fmt.Errorf("gateway: channel lifetime %d blocks: must be positive", cfg.ChannelBlocks)
	}
	if cfg.Deposit == 0 {
		cfg.Deposit = 10_000_000
	}
	if cfg.ChannelBlocks == 0 {
		cfg.ChannelBlocks = 2000
	}
	if cfg.DefaultMax == 0 {
		cfg.DefaultMax = 256
	}
	if cfg.Refresh == 0 {
		cfg.Refresh = 2 * time.Second
	}
	if cfg.FlushAfter == 0 {
		cfg.FlushAfter = 300 * time.Millisecond
	}
	if cfg.Tries == 0 {
		cfg.Tries = 3
	}
	if cfg.FailureHalfLife == 0 {
		cfg.FailureHalfLife = 10 * time.Second
	}
	if cfg.PayEvery == 0 {
		cfg.PayEvery = 50_000
	}
	if cfg.MaxBlockAge == 0 {
		cfg.MaxBlockAge = 30 * time.Second
	}
	if err := cfg.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
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
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
		DialContext: (&net.Dialer{Timeout: 3 * time.Second}).DialContext}
	mk := func(k ed25519.PrivateKey) *account {
		return &account{key: k, addr: types.AddressFromPubKey(k.Public().(ed25519.PublicKey)), signer: c.NewSigner(k)}
	}
	def := mk(cfg.Key)
	accounts := map[string]*account{}
	for _, k := range cfg.APIKeys {
		accounts[k] = def
	}
	for k, priv := range cfg.Accounts {
		accounts[k] = mk(priv)
	}
	mon := health.New(health.FromStatus(c.Status), cfg.MaxBlockAge, "max_block_age")
	mon.Register(reg)
	cut, cutAll := context.WithCancel(context.Background())
	return &Gateway{
		cut: cut, cutAll: cutAll,
		def: def, accounts: accounts, health: mon,
		cfg: cfg, log: logger, chain: c, signer: def.signer,
		addr:  types.AddressFromPubKey(cfg.Key.Public().(ed25519.PublicKey)),
		httpc: &http.Client{Transport: tr}, hop: hop.New(256, &http.Client{Transport: tr}), metrics: newMetrics(reg), reg: reg,
		chans: map[string]*channel{}, done: make(chan struct{}), zkModels: map[uint64]*zkModel{},
		verifyCh: make(chan pendingReceipt, 4096), verifyDone: make(chan struct{}),
	}, nil
}

// URL is the gateway's base URL.
func (g *Gateway) URL() string { return "http://" + g.ln.Addr().String() }

// Address is the paying account.
func (g *Gateway) Address() types.Address { return g.addr }

// Start connects to the chain, loads the directory and serves.
func (g *Gateway) Start(ctx context.Context) error {
	var err error
	if g.chainID, err = g.chain.ChainID(ctx); err != nil {
		return err
	}
	if g.params, err = g.chain.WaitParams(ctx); err != nil {
		return err
	}
	if g.store, err = openStore(g.cfg.DataDir, g.log); err != nil {
		return err
	}
	g.store.db.SetBusy(func() bool { return g.active.Load() > 1 })
	if err := g.refresh(ctx); err != nil {
		g.store.Close()
		return err
	}
	// receipts stored but not yet verified when we stopped are checked now
	skip := map[string]bool{}
	if g.billedAtStart, err = g.store.BilledByProvider(func(r StoredReceipt) bool { return g.settle(ctx, r, skip, &g.unsettled) }); err != nil {
		g.store.Close()
		return err
	}
	if err := g.restoreChannels(); err != nil {
		g.store.Close()
		return err
	}
	vctx, vcancel := context.WithCancel(context.Background())
	g.verifyCancel = vcancel
	go g.verifier(vctx)
	if g.ln, err = net.Listen("tcp", g.cfg.Listen); err != nil {
		vcancel()
		<-g.verifyDone
		g.store.Close()
		return fmt.Errorf("gateway listen on %s: %w", g.cfg.Listen, err)
	}
	hctx, hcancel := context.WithCancel(context.Background())
	g.stopHealth = hcancel
	go g.health.Run(hctx)
	var ln net.Listener
	g.srv, ln = netlimit.Server(g.ln, g.routes(), g.cfg.Limits)
	go g.srv.Serve(ln)
	lctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go g.loop(lctx)
	g.log.Info("gateway started", "url", g.URL(), "client", g.addr, "providers", len(g.providers))
	return nil
}

// Stop shuts the gateway down, paying what it owes first.
func (g *Gateway) Stop() error {
	g.stopOnce.Do(func() { g.stopErr = g.stop() })
	return g.stopErr
}

// cutGrace bounds how long streams cut at the end of the drain take to
// get their partial receipts from their providers, store them and end.
const cutGrace = partialWait + 5*time.Second

// stop drains, in this order: new requests are refused (listener closed,
// 503 on open connections); requests in flight finish, up to DrainTimeout;
// streams still running are then cut short — their providers stop and bill
// what they generated, and each stream ends with that receipt, stored, and
// [DONE]; then the background loops stop, what is owed is paid, and the
// store closes last, once no request can write to it.
func (g *Gateway) stop() error {
	g.stopping.Store(true)
	if g.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.DrainTimeout)
		err := g.srv.Shutdown(ctx)
		cancel()
		if err != nil {
			g.log.Warn("requests still running after the drain timeout: cutting them short", "drain", g.cfg.DrainTimeout)
			g.cutAll()
			ctx, cancel := context.WithTimeout(context.Background(), cutGrace)
			if err := g.srv.Shutdown(ctx); err != nil {
				g.log.Error("requests still running after being cut short: closing their connections", "err", err)
				g.srv.Close()
			}
			cancel()
		}
	}
	if g.stopHealth != nil {
		g.stopHealth()
	}
	g.cutAll()
	g.hop.CloseIdle()
	if g.cancel != nil {
		g.cancel()
		<-g.done
	}
	if g.verifyCancel != nil {
		g.verifyCancel()
		<-g.verifyDone
	}
	// pay what is owed, but a provider that accepts and never answers must
	// not hold the shutdown: what is not delivered now is re-sent next start
	fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
	g.flush(fctx, 0)
	fcancel()
	if g.store != nil {
		return g.store.Close()
	}
	return nil
}

func (g *Gateway) loop(ctx context.Context) {
	defer close(g.done)
	refresh := time.NewTicker(g.cfg.Refresh)
	flush := time.NewTicker(100 * time.Millisecond)
	defer refresh.Stop()
	defer flush.Stop()
	ticks := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-refresh.C:
			if err := g.refresh(ctx); err != nil && ctx.Err() == nil {
				g.log.Warn("provider directory refresh", "err", err)
			}
			// Every few refreshes, check committed epochs for omitted receipts,
			// and ask again about receipts the start could not settle.
			if ticks++; ticks%3 == 0 {
				if err := g.checkOmissions(ctx); err != nil && ctx.Err() == nil {
					g.log.Warn("omission check", "err", err)
				}
			}
			if ticks%5 == 0 && len(g.unsettled) > 0 {
				g.recheck(ctx)
			}
		case <-flush.C:
			g.flush(ctx, g.cfg.FlushAfter)
		}
	}
}

// refresh reloads the registered providers and their public keys.
func (g *Gateway) refresh(ctx context.Context) error {
	st, err := g.chain.Status(ctx)
	if err != nil {
		return err
	}
	var list []api.ProviderView
	if err := g.chain.Query(ctx, api.ProvidersPath, 0, &list); err != nil {
		return err
	}
	g.dirMu.RLock()
	old := map[string]*providerEntry{}
	for _, p := range g.providers {
		old[p.addr.String()] = p
	}
	g.dirMu.RUnlock()
	var next []*providerEntry
	for _, pv := range list {
		if !pv.Registered || pv.Jailed {
			continue
		}
		// entries are immutable once published; a refresh builds new ones
		e := &providerEntry{addr: pv.Address, endpoint: pv.Endpoint, priceIn: pv.PriceInputPer1K, priceOut: pv.PriceOutputPer1K,
			models: map[string]int{}, reputationBps: min(pv.ReputationBps, 10_000)}
		if o := old[pv.Address.String()]; o != nil {
			e.pub, e.stats = o.pub, o.stats
			e.prevIn, e.prevOut = o.prevIn, o.prevOut
			if o.priceIn != e.priceIn || o.priceOut != e.priceOut {
				e.prevIn, e.prevOut = o.priceIn, o.priceOut
			}
		} else {
			acc, err := g.chain.Account(ctx, pv.Address)
			if err != nil || len(acc.PubKey) == 0 {
				continue
			}
			e.pub, e.stats = acc.PubKey, &stats{halfLife: g.cfg.FailureHalfLife}
			e.prevIn, e.prevOut = e.priceIn, e.priceOut
		}
		for _, m := range pv.Models {
			e.models[m.Name] = int(m.ContextLength)
		}
		next = append(next, e)
	}
	g.dirMu.Lock()
	g.providers, g.height = next, st.SyncInfo.LatestBlockHeight
	g.dirMu.Unlock()
	return nil
}

// candidates returns the providers serving model, best first. Providers
// that failed recently (a decayed failure count of one or more) go last;
// the others, and then those, are ranked by routeScore.
func (g *Gateway) candidates(model string) []*providerEntry {
	g.dirMu.RLock()
	var out []*providerEntry
	for _, p := range g.providers {
		if _, ok := p.models[model]; ok {
			out = append(out, p)
		}
	}
	g.dirMu.RUnlock()
	type scored struct {
		p     *providerEntry
		fail  float64
		score float64
	}
	s := make([]scored, len(out))
	now := time.Now()
	for i, p := range out {
		p.mu.Lock()
		fail, lat := p.recentFailures(now), p.latency
		p.mu.Unlock()
		s[i] = scored{p, fail, routeScore(p.priceIn, p.priceOut, fail, lat, p.reputationBps)}
	}
	sort.SliceStable(s, func(i, j int) bool {
		if (s[i].fail >= 1) != (s[j].fail >= 1) {
			return s[i].fail < 1
		}
		return s[i].score < s[j].score
	})
	for i := range s {
		out[i] = s[i].p
	}
	return out
}

// routeScore is what a request to a provider is expected to cost, lower
// being better: its price (output tokens weighted four times input ones, as
// answers are usually shorter than prompts but dearer), times 1 + its
// recent failures (the tries a success takes), times 1.5 for a provider the
// chain has no clean audits of down to 1 for a full on-chain reputation,
// times 1 + its mean latency in seconds. So among reliable providers the
// cheaper wins unless it is much slower or much less trusted: a provider
// with full reputation is preferred up to 1.5× the price of an unknown one.
func routeScore(priceIn, priceOut uint64, failures, latency float64, reputationBps uint64) float64 {
	price := float64(priceOut) + float64(priceIn)/4
	trust := 1 + float64(10_000-min(reputationBps, 10_000))/20_000
	return price * (1 + failures) * trust * (1 + latency)
}

func (p *providerEntry) observe(ok bool, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.failures, p.failedAt = p.recentFailures(now), now
	if !ok {
		p.failures++
		return
	}
	p.failures /= 2 // a success halves what is left
	if p.latency == 0 {
		p.latency = d.Seconds()
	} else {
		p.latency = 0.8*p.latency + 0.2*d.Seconds()
	}
}

// channelFor returns the channel to p, opening or topping it up on chain
// when it cannot cover need more uagr or expires too soon.
func (g *Gateway) channelFor(ctx context.Context, acct *account, p *providerEntry, need uint64) (*channel, error) {
	key := acct.addr.String() + "/" + p.addr.String()
	g.chMu.Lock()
	ch, ok := g.chans[key]
	if !ok {
		ch = &channel{acct: acct, provider: p}
		g.chans[key] = ch
	}
	g.chMu.Unlock()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.provider = p
	if ch.state.ChannelID == 0 {
		st, found, err := g.store.Channel(key)
		if err != nil {
			return nil, err
		}
		if found {
			ch.state = st
			ch.state.Billed = g.billedFor(key, st.ChannelID)
		}
	}
	g.dirMu.RLock()
	h := g.height
	g.dirMu.RUnlock()
	minLife := g.params.EpochLength*2 + g.params.CommitWindow + 10
	switch {
	case ch.state.ChannelID == 0 || ch.state.Expiry <= h+2:
		// no channel (or an expired one): open a new one
		res, err := acct.signer.Send(ctx, &types.MsgOpenChannel{Provider: p.addr, Deposit: max(g.cfg.Deposit, need), ExpiryHeight: h + g.cfg.ChannelBlocks})
		if err != nil {
			return nil, fmt.Errorf("open channel to %s: %w", p.addr, err)
		}
		id, err := strconv.ParseUint(res.Events["channel_id"], 10, 64)
		if err != nil {
			return nil, errors.New("open channel: no channel id in the result")
		}
		ch.state = ChannelState{ChannelID: id, Deposit: max(g.cfg.Deposit, need), Expiry: h + g.cfg.ChannelBlocks}
		if err := g.store.SaveChannel(key, ch.state); err != nil {
			return nil, err
		}
		g.log.Info("channel opened", "provider", p.addr, "channel", id, "deposit", ch.state.Deposit)
	case ch.state.Billed+ch.inflight+need > ch.state.Deposit || ch.state.Expiry < h+minLife:
		add := uint64(0)
		if ch.state.Billed+ch.inflight+need > ch.state.Deposit {
			add = max(g.cfg.Deposit, need)
		}
		exp := h + g.cfg.ChannelBlocks
		if _, err := acct.signer.Send(ctx, &types.MsgTopUpChannel{ChannelId: ch.state.ChannelID, Amount: add, ExpiryHeight: exp}); err != nil {
			return nil, fmt.Errorf("top up channel %d: %w", ch.state.ChannelID, err)
		}
		ch.state.Deposit += add
		ch.state.Expiry = exp
		if err := g.store.SaveChannel(key, ch.state); err != nil {
			return nil, err
		}
	}
	return ch, nil
}

// restoreChannels puts the channels found in the store back in the table,
// their billed totals from the stored receipts, so that what was billed
// before a stop (or a crash) is paid by flush once the channel is idle,
// whether or not the client sends that provider anything more. A channel
// whose account is no longer configured, or whose provider is not in the
// directory, waits for its next use (channelFor loads it then).
func (g *Gateway) restoreChannels() error {
	states, err := g.store.Channels()
	if err != nil {
		return fmt.Errorf("gateway store: %w", err)
	}
	accts := map[string]*account{}
	for _, a := range g.accounts {
		accts[a.addr.String()] = a
	}
	if g.def != nil {
		accts[g.def.addr.String()] = g.def
	}
	provs := map[string]*providerEntry{}
	g.dirMu.RLock()
	for _, p := range g.providers {
		provs[p.addr.String()] = p
	}
	g.dirMu.RUnlock()
	g.chMu.Lock()
	defer g.chMu.Unlock()
	for key, st := range states {
		acct, prov, _ := strings.Cut(key, "/")
		a, p := accts[acct], provs[prov]
		if a == nil || p == nil || st.ChannelID == 0 {
			continue
		}
		st.Billed = g.billedFor(key, st.ChannelID)
		g.chans[key] = &channel{acct: a, provider: p, state: st}
	}
	return nil
}

// voucher returns the voucher to send: the last one while less than
// PayEvery is unpaid, else a new one paying everything billed (persisted
// before use, so no voucher is ever signed lower). Call with ch.mu held.
func (g *Gateway) voucher(ch *channel, force bool) (*types.Voucher, error) {
	if ch.last != nil && ch.last.ChannelId == ch.state.ChannelID && !force && ch.state.Billed-ch.state.Paid < g.cfg.PayEvery {
		return ch.last, nil
	}
	cum := max(ch.state.Billed, ch.state.Paid)
	if cum > ch.state.Paid {
		ch.state.Paid = cum
		if err := g.store.SaveChannel(ch.key(), ch.state); err != nil {
			return nil, err
		}
	}
	ch.last = types.SignVoucher(ch.acct.key, g.chainID, ch.state.ChannelID, cum)
	return ch.last, nil
}

// requestKey is the key authenticating requests on ch's channel to its
// provider (reqauth): an X25519 of the paying account's key and the
// provider's, derived once per channel. Call with ch.mu held.
func (g *Gateway) requestKey(ch *channel) (*reqauth.Key, error) {
	if ch.reqKeyOf != ch.state.ChannelID || ch.reqKeyOf == 0 {
		k, err := reqauth.ClientKey(ch.acct.key, ed25519.PublicKey(ch.provider.pub), g.chainID, ch.state.ChannelID)
		if err != nil {
			return nil, fmt.Errorf("request key for channel %d to %s: %w", ch.state.ChannelID, ch.provider.addr, err)
		}
		ch.reqKey, ch.reqKeyOf = k, ch.state.ChannelID
	}
	k := ch.reqKey
	return &k, nil
}

// flush pays receipts not yet covered by a voucher on channels idle for at
// least idle (0: all).
func (g *Gateway) flush(ctx context.Context, idle time.Duration) {
	g.chMu.Lock()
	list := make([]*channel, 0, len(g.chans))
	for _, c := range g.chans {
		list = append(list, c)
	}
	g.chMu.Unlock()
	for _, ch := range list {
		ch.mu.Lock()
		if ch.state.Billed <= ch.state.Delivered || ch.inflight > 0 || time.Since(ch.lastUse) < idle {
			ch.mu.Unlock()
			continue
		}
		v, err := g.voucher(ch, true)
		var key *reqauth.Key
		if err == nil {
			key, err = g.requestKey(ch)
		}
		endpoint := ch.provider.endpoint
		ch.mu.Unlock()
		if err != nil {
			g.log.Error("sign voucher", "err", err)
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+payment.VouchersPath, nil)
		vh := payment.FormatVoucher(v)
		req.Header.Set(payment.VoucherHeader, vh)
		req.Header.Set(reqauth.Header, reqauth.Sign(key, v.ChannelId, time.Now(), http.MethodPost, payment.VouchersPath, nil, vh))
		resp, err := g.httpc.Do(req)
		if err != nil {
			g.log.Debug("send voucher", "provider", endpoint, "err", err)
			continue
		}
		eb, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			g.log.Warn("voucher refused", "provider", endpoint, "status", resp.StatusCode, "reason", oai.ParseError(resp.StatusCode, eb).Message)
			continue
		}
		ch.mu.Lock()
		if v.CumulativeAmount > ch.state.Delivered {
			ch.state.Delivered = v.CumulativeAmount
			if err := g.store.SaveChannel(ch.key(), ch.state); err != nil {
				g.log.Error("save channel", "provider", endpoint, "err", err)
			}
		}
		ch.mu.Unlock()
	}
}

// checkStored verifies a stored receipt's signature: ok if it checks out;
// later if it could not be settled now (its provider is not in the
// directory and its key could not be had), so it is asked about again
// (recheck).
func (g *Gateway) checkStored(ctx context.Context, r StoredReceipt) (ok, later bool) {
	sr, err := receipt.Decode(r.Encoded)
	if err != nil {
		return false, false
	}
	var p *providerEntry // entries are immutable once published: used after the lock
	g.dirMu.RLock()
	for _, e := range g.providers {
		if e.addr.String() == r.Provider {
			p = e
			break
		}
	}
	g.dirMu.RUnlock()
	if p != nil {
		return sr.Verify(p.pub) == nil, false
	}
	var acc api.AccountView
	prov, err := types.ParseAddress(r.Provider)
	if err == nil {
		err = g.chain.Query(ctx, api.AccountPath(prov), 0, &acc)
	}
	if err != nil {
		return false, true
	}
	return sr.Verify(acc.PubKey) == nil, false
}

// settle is checkStored for a receipt the store holds unverified, unless
// its provider already left one unsettled in this pass (skip: one that did
// not answer is not asked about each of its receipts in turn). A receipt
// that cannot be settled now is appended to unsettled.
func (g *Gateway) settle(ctx context.Context, r StoredReceipt, skip map[string]bool, unsettled *[]StoredReceipt) bool {
	if skip[r.Provider] {
		*unsettled = append(*unsettled, r)
		return false
	}
	ok, later := g.checkStored(ctx, r)
	if later {
		skip[r.Provider] = true
		*unsettled = append(*unsettled, r)
	}
	return ok
}

// recheck asks again about the receipts the start could not settle — one
// whose provider's key could not be had, say — so that one that checks out
// is paid without waiting for another restart:
// once it checks out it is marked verified and billed to its channel, and
// the next voucher pays it. Run by the loop (which owns unsettled); ctx
// ends with it.
func (g *Gateway) recheck(ctx context.Context) {
	var still []StoredReceipt
	skip := map[string]bool{}
	for _, r := range g.unsettled {
		if !g.settle(ctx, r, skip, &still) {
			continue
		}
		if err := g.store.MarkVerified(r.Seq); err != nil {
			g.log.Error("mark a receipt verified", "receipt", r.ID, "err", err)
			still = append(still, r)
			continue
		}
		g.billLate(r)
		g.log.Info("receipt settled after the start: billed", "receipt", r.ID, "provider", r.Provider, "amount", r.Amount)
	}
	g.unsettled = still
}

// billLate adds a receipt verified after the start to what its channel
// owes: to the live channel if it is that receipt's, else to the totals a
// channel is loaded with (billedAtStart), if it is not loaded yet.
func (g *Gateway) billLate(r StoredReceipt) {
	key := r.Payer + "/" + r.Provider
	g.chMu.Lock()
	ch := g.chans[key]
	if ch == nil { // loaded later by channelFor, under chMu: it will see this
		g.addBilledAtStart(key, r.Channel, r.Amount)
		g.chMu.Unlock()
		return
	}
	g.chMu.Unlock()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	switch ch.state.ChannelID {
	case r.Channel:
		ch.state.Billed += r.Amount
	case 0: // not loaded from the store yet
		g.addBilledAtStart(key, r.Channel, r.Amount)
	}
	// (a receipt of a channel since replaced is not payable any more)
}

func (g *Gateway) addBilledAtStart(key string, channel, amount uint64) {
	g.billedMu.Lock()
	defer g.billedMu.Unlock()
	if g.billedAtStart[key] == nil {
		g.billedAtStart[key] = map[uint64]uint64{}
	}
	g.billedAtStart[key][channel] += amount
}

func (g *Gateway) billedFor(key string, channel uint64) uint64 {
	g.billedMu.Lock()
	defer g.billedMu.Unlock()
	return g.billedAtStart[key][channel]
}

// key is the channel's store key: account/provider.
func (ch *channel) key() string { return ch.acct.addr.String() + "/" + ch.provider.addr.String() }

// bound is what a request may cost at p and the most tokens it may get
// back, before it is sent: the channel must cover that much. Every token
// takes at least one byte of the request, so the body's length bounds the
// prompt; the output is bounded by max_tokens and by the model's registered
// context, which every provider backend clamps its output to — so a
// client's habitual max_tokens of 100k does not have the gateway lock 100k
// tokens' worth in a channel. (The prompt is not bounded by the context: an
// adapter may serve a longer prompt than the context it registered.)
func (p *providerEntry) bound(model string, bodyLen, maxOut int) (maxCost uint64, out int) {
	if c := p.models[model]; c > 0 {
		maxOut = min(maxOut, c)
	}
	return inference.Cost(bodyLen+16, maxOut, max(p.priceIn, p.prevIn), max(p.priceOut, p.prevOut)), maxOut
}
