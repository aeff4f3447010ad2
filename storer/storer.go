// Package storer is a provider's storage role (chain/storage): it takes
// the blobs of storage deals, keeps a sealed replica of each on disk and
// proves every epoch on chain that it still holds it.
//
//   - A client creates a deal, then uploads the blob (protocol/storage
//     UploadHeader, signed by the deal's client). The storer takes it when
//     the deal is open, names it or nobody, did not drop it before, and
//     fits its policy (MaxTotal bytes held, MaxCollateral, MinPrice); it
//     checks the bytes hash to the deal's blob ID, seals its replica
//     (chain/blobtree: the provider-specific encoding) into its replica
//     store (internal/replicastore) and accepts the deal with the
//     replica's root.
//   - Every epoch it reads its deals' open challenges from the chain and
//     answers each with proofs read from the replica on disk; a challenged
//     chunk that no longer matches the roots recorded at sealing (lost or
//     corrupt) cannot be proved, and the epoch is missed.
//   - After a restart it goes on proving from the replicas on disk.
//
// It imports no other role.
package storer

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/storage"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/replicastore"
	pstorage "github.com/agoranet/agora/protocol/storage"
)

// Config is a storer's setup.
type Config struct {
	ChainRPC string
	Key      ed25519.PrivateKey // the provider's account key
	DataDir  string             // replicas
	// Policy: the most bytes of deals held at once (default 1 GiB), the most
	// collateral one deal may lock (default 100 AGR), the least price per
	// epoch taken (default 1 uagr).
	MaxTotal      uint64
	MaxCollateral uint64
	MinPrice      uint64
	Tick          time.Duration // chain polling period (default 500ms)
	GCInterval    time.Duration // how often replicas of deals no longer held are removed (default 1 minute)

	// Standalone serving (a storage-only provider): Listen is the address
	// of the storer's own server; with Register the storer bonds and
	// registers the account as a provider with the storage capability and
	// Endpoint (default http://Listen). Inside a provider process, leave
	// Listen empty and mount Mount on the provider's server instead.
	Listen   string
	Endpoint string
	Register bool
	Bond     uint64
	// Standalone, the storer may host another model-less role on its
	// server: ExtraCapabilities are registered besides "storage" (e.g.
	// "wasm") and Mount adds that role's routes.
	ExtraCapabilities []string
	Mount             func(mux *http.ServeMux)
}

// Storer is a running storage role.
type Storer struct {
	cfg     Config
	log     *slog.Logger
	chain   *client.Client
	signer  *client.Signer
	addr    types.Address
	chainID string
	params  types.Params
	metrics *metrics
	reg     *prometheus.Registry

	store *replicastore.Store // sealed replicas, by blob ID

	mu     sync.Mutex
	proved map[uint64]uint64 // deal → last epoch proved (or given up on)
	lastGC time.Time         // the loop's last garbage collection
	missed map[uint64]uint64 // deal → misses seen on chain

	srv    *http.Server
	ln     net.Listener
	cancel context.CancelFunc
	done   chan struct{}
}

type metrics struct {
	proofs, failures, misses, accepted prometheus.Counter
	deals, bytes                       prometheus.Gauge
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		proofs:   prometheus.NewCounter(prometheus.CounterOpts{Name: "agora_storer_proofs_sent_total", Help: "Epoch proofs committed on chain."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "agora_storer_proof_failures_total", Help: "Epochs this storer could not prove (a challenged segment lost or corrupt, or the tx refused)."}),
		misses:   prometheus.NewCounter(prometheus.CounterOpts{Name: "agora_storer_misses_total", Help: "Misses the chain recorded against this storer's deals."}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{Name: "agora_storer_deals_accepted_total", Help: "Deals accepted."}),
		deals:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "agora_storer_deals", Help: "Active deals held."}),
		bytes:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "agora_storer_bytes", Help: "Bytes of active deals held."}),
	}
	reg.MustRegister(m.proofs, m.failures, m.misses, m.accepted, m.deals, m.bytes)
	return m
}

// New prepares a storer; Start runs it.
func New(cfg Config, logger *slog.Logger, reg *prometheus.Registry) (*Storer, error) {
	if cfg.Key == nil {
		return nil, errors.New("storer: no key")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("storer: no data directory")
	}
	if cfg.MaxTotal == 0 {
		cfg.MaxTotal = storage.MaxSize
	}
	if cfg.MaxCollateral == 0 {
		cfg.MaxCollateral = 100_000_000
	}
	if cfg.MinPrice == 0 {
		cfg.MinPrice = 1
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 500 * time.Millisecond
	}
	if cfg.GCInterval <= 0 {
		cfg.GCInterval = time.Minute
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
	st, err := replicastore.Open(ReplicaDir(cfg.DataDir))
	if err != nil {
		return nil, fmt.Errorf("storer: %w", err)
	}
	return &Storer{
		cfg: cfg, log: logger.With("role", "storer"), chain: c, signer: c.NewSigner(cfg.Key),
		addr: types.AddressFromPubKey(cfg.Key.Public().(ed25519.PublicKey)), metrics: newMetrics(reg), reg: reg,
		store: st, proved: map[uint64]uint64{}, missed: map[uint64]uint64{}, done: make(chan struct{}),
	}, nil
}

// ReplicaDir is where a storer with data directory dataDir keeps its
// replicas (internal/replicastore: <blob id>.replica and .meta).
func ReplicaDir(dataDir string) string { return filepath.Join(dataDir, "replicas") }

// ReplicaPath is the file of blob id's replica bytes under dataDir
// (operators and tests may inspect it).
func ReplicaPath(dataDir string, id [32]byte) string {
	return filepath.Join(ReplicaDir(dataDir), hex.EncodeToString(id[:])+".replica")
}

// Address is the provider's account address.
func (s *Storer) Address() types.Address { return s.addr }

// URL is the standalone server's base URL ("" when mounted).
func (s *Storer) URL() string {
	if s.cfg.Endpoint != "" {
		return s.cfg.Endpoint
	}
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Mount adds the storer's routes to mux.
func (s *Storer) Mount(mux *http.ServeMux) {
	mux.HandleFunc(pstorage.UploadRoute, s.handleUpload)
	mux.HandleFunc(pstorage.DealRoute, s.handleDeal)
	mux.HandleFunc(pstorage.GetRoute, s.handleGet)
}

// Start reads the chain, registers when standalone, serves when Listen is
// set, reloads the replicas of the deals it holds and starts proving.
func (s *Storer) Start(ctx context.Context) error {
	var err error
	if s.chainID, err = s.chain.ChainID(ctx); err != nil {
		return fmt.Errorf("storer: %w", err)
	}
	if s.params, err = s.chain.WaitParams(ctx); err != nil {
		return fmt.Errorf("storer: %w", err)
	}
	if s.params.Storage == nil {
		return errors.New("storer: this chain has no storage market (its genesis has no params.storage)")
	}
	if s.cfg.Listen != "" {
		if s.ln, err = net.Listen("tcp", s.cfg.Listen); err != nil {
			return fmt.Errorf("storer listen on %s: %w", s.cfg.Listen, err)
		}
	}
	if s.cfg.Register {
		if err := s.register(ctx); err != nil {
			if s.ln != nil {
				s.ln.Close()
			}
			return err
		}
	}
	if s.ln != nil {
		mux := http.NewServeMux()
		s.Mount(mux)
		if s.cfg.Mount != nil {
			s.cfg.Mount(mux)
		}
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
		s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go s.srv.Serve(s.ln)
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.loop(loopCtx)
	s.log.Info("storer started", "address", s.addr, "url", s.URL(), "max_total", s.cfg.MaxTotal, "min_price", s.cfg.MinPrice)
	return nil
}

// register bonds up to the target and registers (or updates) the account
// as a provider offering the storage capability and no model.
func (s *Storer) register(ctx context.Context) error {
	want := max(s.cfg.Bond, s.params.MinProviderStake)
	var pv api.ProviderView
	err := s.chain.Query(ctx, api.ProviderPath(s.addr), 0, &pv)
	if err != nil && !client.IsNotFound(err) {
		return err
	}
	if pv.Bonded < want {
		if _, err := s.signer.Send(ctx, &types.MsgBondProvider{Amount: want - pv.Bonded}); err != nil {
			return fmt.Errorf("bond provider stake: %w", err)
		}
	}
	caps := append([]string{storage.Capability}, s.cfg.ExtraCapabilities...)
	info := &types.ProviderInfo{Endpoint: s.URL(), Capabilities: caps, Hardware: &types.Hardware{}}
	if pv.Registered {
		_, err = s.signer.Send(ctx, &types.MsgUpdateProvider{Info: info})
	} else {
		_, err = s.signer.Send(ctx, &types.MsgRegisterProvider{Info: info})
	}
	if err != nil {
		return fmt.Errorf("register provider: %w", err)
	}
	return nil
}

// Stop stops serving and proving.
func (s *Storer) Stop() error {
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.srv.Shutdown(ctx)
		cancel()
	}
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	return nil
}

func (s *Storer) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		if err := s.tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("storer: chain poll failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tick proves the open challenge of every active deal this storer holds
// and counts the misses the chain recorded.
func (s *Storer) tick(ctx context.Context) error {
	deals, err := s.chain.StorageDealsByProvider(ctx, s.addr)
	if err != nil {
		return err
	}
	var n int
	var bytes uint64
	for _, d := range deals {
		if d.Status != "active" || d.Provider.String() != s.addr.String() {
			continue
		}
		n++
		bytes += d.Size
		s.mu.Lock()
		seen, known := s.missed[d.ID]
		s.missed[d.ID] = d.Missed
		s.mu.Unlock()
		if known && d.Missed > seen {
			s.metrics.misses.Add(float64(d.Missed - seen))
			s.log.Warn("storage epoch missed", "deal", d.ID, "missed", d.Missed, "score", d.Score, "locked", d.Locked)
		}
		if err := s.proveDeal(ctx, d); err != nil && ctx.Err() == nil {
			s.log.Warn("storage proof", "deal", d.ID, "err", err)
		}
	}
	s.metrics.deals.Set(float64(n))
	s.metrics.bytes.Set(float64(bytes))
	if now := time.Now(); s.lastGC.IsZero() {
		s.lastGC = now // the first sweep a GCInterval after the start
	} else if now.Sub(s.lastGC) >= s.cfg.GCInterval {
		s.lastGC = now
		if n, err := s.CollectGarbage(deals, now); err != nil {
			s.log.Warn("storer: garbage collection", "err", err)
		} else if n > 0 {
			s.log.Info("storer: replicas of deals no longer held removed", "replicas", n)
		}
	}
	return nil
}

// gcGrace keeps a replica sealed for a deal the chain has not yet seen
// this storer accept.
const gcGrace = 10 * time.Minute

// CollectGarbage removes the replicas no active deal of this storer holds
// any more (a deal done, cancelled, or dropped from it for missed proofs)
// that were sealed before now − gcGrace; deals is this provider's deals
// (StorageDealsByProvider). It returns how many it removed.
func (s *Storer) CollectGarbage(deals []api.StorageDealView, now time.Time) (int, error) {
	held := map[[32]byte]bool{}
	for _, d := range deals {
		if d.Status == "active" && d.Provider.String() == s.addr.String() {
			held[[32]byte(d.BlobID)] = true
		}
	}
	infos, err := s.store.List()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, in := range infos {
		if held[in.BlobID] || now.Sub(in.Sealed) < gcGrace {
			continue
		}
		if err := s.store.Remove(in.BlobID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// proveDeal answers deal d's open challenge, if there is one it has not
// answered yet.
func (s *Storer) proveDeal(ctx context.Context, d api.StorageDealView) error {
	c, err := s.chain.StorageChallenge(ctx, d.ID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	done := s.proved[d.ID] == c.Epoch && c.Epoch != 0
	s.mu.Unlock()
	if len(c.Indices) == 0 || done {
		return nil
	}
	msg, err := s.Proofs([32]byte(d.BlobID), d.ID, c.Epoch, c.Indices)
	if err != nil {
		s.mu.Lock()
		s.proved[d.ID] = c.Epoch // do not retry a lost segment every tick
		s.mu.Unlock()
		s.metrics.failures.Inc()
		return fmt.Errorf("epoch %d: %w", c.Epoch, err)
	}
	res, err := s.signer.Send(ctx, msg)
	if err != nil {
		s.metrics.failures.Inc()
		var te *client.TxError
		if errors.As(err, &te) {
			s.mu.Lock()
			s.proved[d.ID] = c.Epoch // refused: retrying the same proof cannot help
			s.mu.Unlock()
		}
		return fmt.Errorf("epoch %d: prove_storage: %w", c.Epoch, err)
	}
	s.mu.Lock()
	s.proved[d.ID] = c.Epoch
	s.mu.Unlock()
	s.metrics.proofs.Inc()
	s.log.Info("storage epoch proved", "deal", d.ID, "epoch", c.Epoch, "challenges", len(c.Indices), "height", res.Height, "paid", res.Events["paid"])
	return nil
}

// Proofs builds the prove_storage message answering indices of a deal's
// epoch from the replica of blob id on disk. It fails when the replica is
// missing or a challenged chunk is damaged (its proofs could not verify).
func (s *Storer) Proofs(id [32]byte, deal, epoch uint64, indices []uint64) (*types.MsgProveStorage, error) {
	ps, err := s.store.Prove(id, indices)
	if err != nil {
		return nil, fmt.Errorf("deal %d: %w", deal, err)
	}
	msg := &types.MsgProveStorage{DealId: deal, Epoch: epoch}
	for i := range ps {
		msg.Proofs = append(msg.Proofs, storage.ProofOf(&ps[i]))
	}
	return msg, nil
}
