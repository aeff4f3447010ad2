// Package app is Agora's ABCI 2.0 state machine. It decodes and checks
// txs, runs them against the state modules (bank, stake, registry, channels,
// epochs), and reports validator-set changes to CometBFT.
//
// Concurrency: CometBFT may call CheckTx and Query concurrently with the
// consensus calls (the local client serialises only consensus). Consensus calls
// (InitChain, FinalizeBlock, Commit) are serialised by blockMu and are the
// only writers of the working tree. CheckTx runs against its own cache over
// the last committed version (checkMu). Queries read immutable committed
// versions, except /nonce/<addr>, which reads the check state under checkMu
// (see PendingNonce).
package app

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/channels"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

var (
	keyParams  = []byte("app/params")
	keyChainID = []byte("app/chain_id")
)

// Codespace tags our ABCI result codes.
const Codespace = "agora"

// App is the ABCI application.
type App struct {
	abci.BaseApplication

	log     *slog.Logger
	metrics *Metrics
	tree    *store.Tree

	// commitMu guards the tree's committed version against concurrent snapshot reads.
	commitMu sync.RWMutex
	// blockMu serialises consensus calls.
	blockMu sync.Mutex
	chainID string
	params  types.Params
	// pendingHeight is the height finalized but not yet committed (0: none).
	pendingHeight int64

	checkMu    sync.Mutex
	checkState *store.Cache
	checkSnap  store.KV // the committed state checkState is a cache over
	checkBase  int64    // committed height the check state is built on

	// mempoolLock, when set, is CometBFT's mempool lock (see SetMempoolLocker).
	mempoolLock sync.Locker

	sigs *sigCache
	// beacon is this node's consensus key and the epoch beacon's caches (beacon.go).
	beacon beaconState

	// KeepRecent, when positive, keeps only that many recent state versions
	// (older ones cannot be queried or proven any more). 0 keeps all.
	KeepRecent int64

	retention // KeepBlocks, RetainLimit: see retention.go

	// table declares the messages this app decodes and executes (modules.go).
	table msgTable
}

// pruneEvery spaces pruning out: deleting versions costs a batch write.
const pruneEvery = 100

// New opens an app over tree with the chain's modules (DefaultModules). The
// chain id and params are loaded from state when the chain already exists;
// otherwise InitChain sets them.
func New(tree *store.Tree, logger *slog.Logger, metrics *Metrics) (*App, error) {
	return NewWithModules(tree, logger, metrics, DefaultModules())
}

// NewWithModules opens an app that decodes, validates and executes the
// messages of mods (which must handle every message of types.Msgs, as
// DefaultModules do, plus those they declare).
func NewWithModules(tree *store.Tree, logger *slog.Logger, metrics *Metrics, mods []Module) (*App, error) {
	table, err := buildMsgTable(mods)
	if err != nil {
		return nil, fmt.Errorf("modules: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	a := &App{log: logger, metrics: metrics, tree: tree, sigs: newSigCache(1 << 18), table: table}
	if tree.Version() > 0 {
		snap, err := tree.Snapshot(tree.Version())
		if err != nil {
			return nil, err
		}
		if err := a.loadConfig(snap); err != nil {
			return nil, err
		}
		a.beaconNotice(nil)
	}
	a.resetCheckState()
	return a, nil
}

// Msgs is the registry of the messages this app decodes and executes: what
// a client signs with and an indexer describes them by.
func (a *App) Msgs() *types.MsgRegistry { return a.table.msgs }

func (a *App) loadConfig(kv store.KV) error {
	a.chainID = string(kv.Get(keyChainID))
	bz := kv.Get(keyParams)
	if bz == nil {
		return fmt.Errorf("state has no params")
	}
	if err := json.Unmarshal(bz, &a.params); err != nil {
		return fmt.Errorf("decode params from state: %w", err)
	}
	return nil
}

// ChainID returns the chain id (empty before InitChain).
func (a *App) ChainID() string { return a.chainID }

// Params returns the chain params.
func (a *App) Params() types.Params { return a.params }

// Close releases the state store.
func (a *App) Close() error { return a.tree.Close() }

// Info tells CometBFT where the app's committed state is, so it can replay
// any block the app has not committed (crash recovery).
func (a *App) Info(context.Context, *abci.InfoRequest) (*abci.InfoResponse, error) {
	a.commitMu.RLock()
	defer a.commitMu.RUnlock()
	return &abci.InfoResponse{
		Data:             "agora",
		Version:          "1",
		AppVersion:       1,
		LastBlockHeight:  a.tree.Version(),
		LastBlockAppHash: a.tree.Hash(),
	}, nil
}

// InitChain writes the genesis state and returns the initial validator set.
func (a *App) InitChain(_ context.Context, req *abci.InitChainRequest) (*abci.InitChainResponse, error) {
	a.blockMu.Lock()
	defer a.blockMu.Unlock()
	g, err := types.UnmarshalGenesis(req.AppStateBytes)
	if err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	// Params.Validate checks the gas of the chain's own messages; a
	// module's messages need theirs too, or they would cost bytes only.
	for _, name := range a.table.msgs.Names() {
		if _, ok := g.Params.Gas[name]; !ok {
			return nil, fmt.Errorf("genesis: params: gas: missing cost for message %q", name)
		}
	}
	if err := a.table.services.ValidateParams(g.Params); err != nil {
		return nil, fmt.Errorf("genesis: params: %w", err)
	}
	if req.InitialHeight > 1 {
		a.tree.SetInitialVersion(uint64(req.InitialHeight))
	}
	kv := a.tree
	pbz, _ := json.Marshal(g.Params)
	kv.Set(keyParams, pbz)
	kv.Set(keyChainID, []byte(req.ChainId))
	for _, acc := range g.Accounts {
		if err := bank.Mint(kv, acc.Address, acc.Balance); err != nil {
			return nil, fmt.Errorf("genesis account %s: %w", acc.Address, err)
		}
	}
	for _, v := range g.Validators {
		if err := bank.Mint(kv, bank.StakePool, v.Bonded); err != nil {
			return nil, fmt.Errorf("genesis validator %s: %w", v.Operator, err)
		}
		if err := stake.CreateGenesisValidator(kv, v.Operator, v.ConsPubKey, v.Bonded); err != nil {
			return nil, fmt.Errorf("genesis validator %s: %w", v.Operator, err)
		}
	}
	a.chainID = req.ChainId
	a.params = g.Params
	a.beaconNotice(req.ConsensusParams)
	ups := stake.ValidatorUpdates(kv, g.Params)
	a.log.Info("genesis written", "chain_id", req.ChainId, "accounts", len(g.Accounts), "validators", len(ups))
	return &abci.InitChainResponse{Validators: toABCIUpdates(ups), AppHash: a.tree.WorkingHash()}, nil
}

func toABCIUpdates(ups []stake.Update) []abci.ValidatorUpdate {
	out := make([]abci.ValidatorUpdate, len(ups))
	for i, u := range ups {
		out[i] = abci.ValidatorUpdate{Power: u.Power, PubKeyType: "ed25519", PubKeyBytes: u.ConsPubKey}
	}
	return out
}

// CheckTx admits a tx to the mempool only if it would succeed on the state
// after the txs already admitted: decoding, signature, chain id, nonce, fee
// and the message itself are all checked.
func (a *App) CheckTx(_ context.Context, req *abci.CheckTxRequest) (*abci.CheckTxResponse, error) {
	start := time.Now()
	if types.IsBeaconTx(req.Tx) {
		return a.checkFail(types.Errorf(types.CodeMalformed, "beacon txs are made by block proposers from vote extensions; they cannot be submitted")), nil
	}
	d, err := a.table.msgs.DecodeTx(req.Tx)
	if err != nil {
		return a.checkFail(types.Errorf(types.CodeMalformed, "%v", err)), nil
	}
	hash := sha256.Sum256(req.Tx)
	if !a.sigs.has(hash) {
		if err := d.VerifySignature(); err != nil {
			return a.checkFail(types.Errorf(types.CodeBadSignature, "%v", err)), nil
		}
		a.sigs.add(hash)
	}
	a.checkMu.Lock()
	ctx := execCtx{chainID: a.chainID, height: a.checkBase + 1, params: a.params, handlers: a.table.handlers, services: a.table.services}
	cache := store.NewCache(a.checkState)
	res := runTx(cache, ctx, d)
	if res.code == types.CodeOK {
		cache.Write()
	}
	a.checkMu.Unlock()
	a.metrics.checkSeconds.Observe(time.Since(start).Seconds())
	if res.code != types.CodeOK {
		return a.checkFail(&types.Error{Code: res.code, Msg: res.log}), nil
	}
	return &abci.CheckTxResponse{Code: 0, GasWanted: int64(res.gas)}, nil
}

func (a *App) checkFail(err error) *abci.CheckTxResponse {
	code := types.CodeOf(err)
	a.metrics.checkRejected.WithLabelValues(code.String()).Inc()
	return &abci.CheckTxResponse{Code: uint32(code), Codespace: Codespace, Log: err.Error()}
}

// resetCheckState rebuilds the mempool's view on the last committed state.
func (a *App) resetCheckState() {
	a.commitMu.RLock()
	v := a.tree.Version()
	var base store.KV
	if v == 0 {
		base = emptyKV{}
	} else {
		snap, err := a.tree.Snapshot(v)
		if err != nil {
			panic(err)
		}
		base = snap
	}
	a.commitMu.RUnlock()
	a.checkMu.Lock()
	a.checkState = store.NewCache(base)
	a.checkSnap = base
	a.checkBase = v
	a.checkMu.Unlock()
}

// SetMempoolLocker gives the app CometBFT's mempool lock. CometBFT holds it
// from before the app's Commit until the mempool's remaining txs have been
// rechecked (replayed through CheckTx onto the fresh check state), so a
// pending-nonce read that takes it never sees the check state half rebuilt.
// Call it before the node starts.
func (a *App) SetMempoolLocker(l sync.Locker) { a.mempoolLock = l }

// PendingNonce reads an account's nonce from the check state, the mempool's
// view: the last commit plus every tx admitted since. It is not committed
// state, so no proof can be given for it, and it is only as good as this
// node's mempool (another node's mempool may hold other txs of the account).
//
// After a block, Commit resets the check state to the new committed state and
// CometBFT then replays the mempool's remaining txs through CheckTx (recheck,
// on by default). CometBFT holds the mempool lock over both, so the read
// takes that lock first (when the node set it): it then sees either the state
// before the block or the rebuilt one, never the bare commit in between. With
// mempool.recheck off the check state would forget the mempool's txs after a
// block; the node config keeps it on.
func (a *App) PendingNonce(addr types.Address) api.NonceView {
	if a.mempoolLock != nil {
		a.mempoolLock.Lock()
		defer a.mempoolLock.Unlock()
	}
	a.checkMu.Lock()
	defer a.checkMu.Unlock()
	return api.NonceView{
		Address:   addr,
		Committed: bank.GetAccount(a.checkSnap, addr).Nonce,
		Pending:   bank.GetAccount(a.checkState, addr).Nonce,
		Height:    a.checkBase,
	}
}

// FinalizeBlock executes a decided block. Signatures are verified in
// parallel first (results do not depend on order); txs then run in block
// order. The working tree's hash becomes the app hash; nothing is persisted
// until Commit, so a crash here is recovered by CometBFT replaying the block.
func (a *App) FinalizeBlock(_ context.Context, req *abci.FinalizeBlockRequest) (*abci.FinalizeBlockResponse, error) {
	a.blockMu.Lock()
	defer a.blockMu.Unlock()
	start := time.Now()
	decoded, decodeErrs := a.decodeAndVerify(req.Txs)
	var fees uint64
	ctx := execCtx{chainID: a.chainID, height: req.Height, params: a.params, fees: &fees, handlers: a.table.handlers, services: a.table.services}
	results := make([]*abci.ExecTxResult, len(req.Txs))
	var ok int
	for i := range req.Txs {
		if i == 0 && types.IsBeaconTx(req.Txs[0]) {
			results[0] = a.finalizeBeacon(req.Height, req.Txs[0])
			continue
		}
		if decodeErrs[i] != nil {
			code := types.CodeOf(decodeErrs[i])
			results[i] = &abci.ExecTxResult{Code: uint32(code), Codespace: Codespace, Log: decodeErrs[i].Error()}
			a.metrics.txs.WithLabelValues(code.String()).Inc()
			continue
		}
		r := runTx(a.tree, ctx, decoded[i])
		results[i] = toExecResult(r, decoded[i])
		if r.code == types.CodeOK {
			ok++
		}
		a.metrics.txs.WithLabelValues(r.code.String()).Inc()
	}
	if err := bank.Credit(a.tree, bank.FeePool, fees); err != nil {
		return nil, fmt.Errorf("credit fees: %w", err)
	}
	events, err := a.endBlock(req)
	if err != nil {
		return nil, err
	}
	ups := stake.ValidatorUpdates(a.tree, a.params)
	a.pendingHeight = req.Height
	appHash := a.tree.WorkingHash()
	a.metrics.blockSeconds.Observe(time.Since(start).Seconds())
	a.metrics.height.Set(float64(req.Height))
	if len(req.Txs) > 0 || len(ups) > 0 {
		a.log.Debug("block finalized", "height", req.Height, "txs", len(req.Txs), "ok", ok, "validator_updates", len(ups), "took", time.Since(start))
	}
	return &abci.FinalizeBlockResponse{
		TxResults:        results,
		ValidatorUpdates: toABCIUpdates(ups),
		AppHash:          appHash,
		Events:           events,
	}, nil
}

func toExecResult(r txResult, d *types.DecodedTx) *abci.ExecTxResult {
	res := &abci.ExecTxResult{Code: uint32(r.code), Log: r.log, GasWanted: int64(r.gas), GasUsed: int64(r.gas)}
	if r.code != types.CodeOK {
		res.Codespace = Codespace
	}
	if !r.applied {
		return res
	}
	attrs := []abci.EventAttribute{
		{Key: "signer", Value: d.Signer.String(), Index: true},
		{Key: "msg", Value: r.msg, Index: true},
		{Key: "fee", Value: itoa(r.fee)},
	}
	for _, kv := range r.attrs {
		attrs = append(attrs, abci.EventAttribute{Key: kv[0], Value: kv[1], Index: true})
	}
	res.Events = []abci.Event{{Type: "agora", Attributes: attrs}}
	return res
}

func (a *App) decodeAndVerify(txs [][]byte) ([]*types.DecodedTx, []error) {
	decoded := make([]*types.DecodedTx, len(txs))
	errs := make([]error, len(txs))
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	next := make(chan int, len(txs))
	for i := range txs {
		next <- i
	}
	close(next)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				d, err := a.table.msgs.DecodeTx(txs[i])
				if err != nil {
					errs[i] = types.Errorf(types.CodeMalformed, "%v", err)
					continue
				}
				hash := sha256.Sum256(txs[i])
				if !a.sigs.has(hash) {
					if err := d.VerifySignature(); err != nil {
						errs[i] = types.Errorf(types.CodeBadSignature, "%v", err)
						continue
					}
				}
				decoded[i] = d
			}
		}()
	}
	wg.Wait()
	return decoded, errs
}

// endBlock runs the per-block work that does not come from txs: each
// module's EndBlock hook, in the order of the module table (stake: double
// signing slashed, matured unbondings; epochs: boundaries and seeds; audit:
// expired challenges and disputes; rewards: settlement).
func (a *App) endBlock(req *abci.FinalizeBlockRequest) ([]abci.Event, error) {
	b := &BlockCtx{
		Ctx:         Ctx{ChainID: a.chainID, Height: req.Height, Params: a.params, Services: a.table.services},
		Hash:        req.Hash,
		Misbehavior: req.Misbehavior,
		Log:         a.log,
		Seeded:      a.seedEvent,
	}
	var events []abci.Event
	for _, h := range a.table.endBlock {
		evs, err := h.run(a.tree, b)
		if err != nil {
			return nil, fmt.Errorf("%s end block: %w", h.module, err)
		}
		events = append(events, evs...)
	}
	return events, nil
}

// Commit persists the block's state as version = height.
func (a *App) Commit(context.Context, *abci.CommitRequest) (*abci.CommitResponse, error) {
	a.blockMu.Lock()
	a.commitMu.Lock()
	_, v, err := a.tree.Commit()
	a.pendingHeight = 0
	if err == nil && a.KeepRecent > 0 && v%pruneEvery == 0 {
		if perr := a.tree.Prune(v - a.KeepRecent); perr != nil {
			a.log.Error("prune state versions", "to", v-a.KeepRecent, "err", perr)
		}
	}
	a.commitMu.Unlock()
	a.blockMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("commit state at height %d: %w", v, err)
	}
	a.resetCheckState()
	return &abci.CommitResponse{RetainHeight: a.retainHeight(v)}, nil
}

// CheckInvariants verifies, on committed state, that balances add up to the
// supply and that the module accounts hold exactly what their records say.
func CheckInvariants(kv store.KV) error {
	sum, err := bank.SumBalances(kv)
	if err != nil {
		return err
	}
	if supply := bank.Supply(kv); sum != supply {
		return fmt.Errorf("supply invariant broken: balances sum to %d, supply is %d", sum, supply)
	}
	if supply, minted, burned := bank.Supply(kv), bank.Minted(kv), bank.Burned(kv); supply != minted-burned {
		return fmt.Errorf("emission invariant broken: supply %d, minted %d − burned %d = %d", supply, minted, burned, minted-burned)
	}
	bonded, err := stake.TotalBonded(kv)
	if err != nil {
		return err
	}
	if pool := bank.Balance(kv, bank.StakePool); pool != bonded {
		return fmt.Errorf("stake invariant broken: stake pool holds %d, bonds and unbondings total %d", pool, bonded)
	}
	escrowed, err := channels.TotalEscrowed(kv)
	if err != nil {
		return err
	}
	if esc := bank.Balance(kv, bank.ChannelEscrow); esc != escrowed {
		return fmt.Errorf("channel invariant broken: escrow holds %d, open channels total %d", esc, escrowed)
	}
	if err := checkJobsInvariant(kv); err != nil {
		return err
	}
	return checkStorageInvariant(kv)
}

// Height is the last committed height.
func (a *App) Height() int64 {
	a.commitMu.RLock()
	defer a.commitMu.RUnlock()
	return a.tree.Version()
}

// Snapshot returns committed state at height (0: latest).
func (a *App) Snapshot(height int64) (*store.Snapshot, error) {
	a.commitMu.RLock()
	defer a.commitMu.RUnlock()
	if height == 0 {
		height = a.tree.Version()
	}
	if height == 0 {
		return nil, fmt.Errorf("no committed state yet")
	}
	return a.tree.Snapshot(height)
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

// emptyKV is the state before genesis is committed.
type emptyKV struct{}

func (emptyKV) Get([]byte) []byte                      { return nil }
func (emptyKV) Has([]byte) bool                        { return false }
func (emptyKV) Set(_, _ []byte)                        { panic("write to empty state") }
func (emptyKV) Delete([]byte)                          { panic("write to empty state") }
func (emptyKV) Iterate([]byte, func(_, _ []byte) bool) {}
