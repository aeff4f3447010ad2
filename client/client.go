// Package client is the Go client of an Agora node: typed queries (with
// Merkle proofs when asked), and signing and broadcasting txs through
// CometBFT's RPC. The CLI uses it; so will the provider, gateway and validator.
package client

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	rpcclient "github.com/cometbft/cometbft/rpc/client"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	rpctypes "github.com/cometbft/cometbft/rpc/jsonrpc/types"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/app"
	"github.com/agoranet/agora/chain/types"
)

// Client talks to one node's CometBFT RPC.
type Client struct {
	rpc *rpchttp.HTTP

	mu      sync.Mutex
	chainID string
	params  *types.Params
}

// New connects to a node's RPC address (e.g. http://127.0.0.1:26657 or tcp://...).
func New(rpcAddr string) (*Client, error) {
	addr := strings.Replace(rpcAddr, "tcp://", "http://", 1)
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	c, err := rpchttp.New(addr)
	if err != nil {
		return nil, fmt.Errorf("rpc client for %s: %w", rpcAddr, err)
	}
	return &Client{rpc: c}, nil
}

// RPC exposes the underlying CometBFT RPC client.
func (c *Client) RPC() *rpchttp.HTTP { return c.rpc }

// Status returns the node's CometBFT status.
func (c *Client) Status(ctx context.Context) (*ctypes.ResultStatus, error) {
	st, err := c.rpc.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("node status: %w", err)
	}
	return st, nil
}

// ChainID returns (and caches) the node's chain id.
func (c *Client) ChainID(ctx context.Context) (string, error) {
	c.mu.Lock()
	id := c.chainID
	c.mu.Unlock()
	if id != "" {
		return id, nil
	}
	st, err := c.Status(ctx)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.chainID = st.NodeInfo.Network
	c.mu.Unlock()
	return st.NodeInfo.Network, nil
}

// QueryError is a query the node answered with a non-zero code.
type QueryError struct {
	Code types.Code
	Log  string
}

func (e *QueryError) Error() string { return e.Log }

// IsNotFound reports whether err is a not-found query answer.
func IsNotFound(err error) bool {
	var qe *QueryError
	return errors.As(err, &qe) && qe.Code == types.CodeNotFound
}

// Query runs a JSON query path at height (0: latest) and decodes the answer into out.
func (c *Client) Query(ctx context.Context, path string, height int64, out any) error {
	res, err := c.rpc.ABCIQueryWithOptions(ctx, path, nil, rpcclient.ABCIQueryOptions{Height: height})
	if err != nil {
		return fmt.Errorf("query %s: %w", path, err)
	}
	if res.Response.Code != 0 {
		return &QueryError{Code: types.Code(res.Response.Code), Log: res.Response.Log}
	}
	if err := json.Unmarshal(res.Response.Value, out); err != nil {
		return fmt.Errorf("query %s: decode answer: %w", path, err)
	}
	return nil
}

// QueryStore reads a raw state key at height, with an ICS-23 proof if prove.
func (c *Client) QueryStore(ctx context.Context, key []byte, height int64, prove bool) (*abci.QueryResponse, error) {
	res, err := c.rpc.ABCIQueryWithOptions(ctx, "/store", key, rpcclient.ABCIQueryOptions{Height: height, Prove: prove})
	if err != nil {
		return nil, fmt.Errorf("query store: %w", err)
	}
	if res.Response.Code != 0 {
		return nil, &QueryError{Code: types.Code(res.Response.Code), Log: res.Response.Log}
	}
	return &res.Response, nil
}

// VerifiedStore reads a raw key and checks its proof against the app hash
// committed in the header of the next block (which CometBFT validators signed).
func (c *Client) VerifiedStore(ctx context.Context, key []byte, height int64) ([]byte, int64, error) {
	resp, err := c.QueryStore(ctx, key, height, true)
	if err != nil {
		return nil, 0, err
	}
	next := resp.Height + 1
	var commit *ctypes.ResultCommit
	for i := 0; ; i++ {
		commit, err = c.rpc.Commit(ctx, &next)
		if err == nil {
			break
		}
		if i > 50 {
			return nil, 0, fmt.Errorf("header %d: %w", next, err)
		}
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := app.VerifyStoreProof(commit.Header.AppHash, resp); err != nil {
		return nil, 0, fmt.Errorf("key %x at height %d: %w", key, resp.Height, err)
	}
	return resp.Value, resp.Height, nil
}

// Account returns an account (zero balance and nonce when it does not exist).
func (c *Client) Account(ctx context.Context, addr types.Address) (api.AccountView, error) {
	var v api.AccountView
	err := c.Query(ctx, api.AccountPath(addr), 0, &v)
	return v, err
}

// WaitParams is Params for a daemon starting beside its node: while the
// chain has committed no block yet (a fresh network), it retries every
// 100 ms until ctx ends, instead of failing the start.
func (c *Client) WaitParams(ctx context.Context) (types.Params, error) {
	for {
		p, err := c.Params(ctx)
		if err == nil || !strings.Contains(err.Error(), "no committed state yet") {
			return p, err
		}
		select {
		case <-ctx.Done():
			return p, fmt.Errorf("%w (waiting for the chain's first block: %w)", err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Params returns (and caches) the chain params.
func (c *Client) Params(ctx context.Context) (types.Params, error) {
	c.mu.Lock()
	p := c.params
	c.mu.Unlock()
	if p != nil {
		return *p, nil
	}
	var np types.Params
	if err := c.Query(ctx, api.ParamsPath, 0, &np); err != nil {
		return np, err
	}
	c.mu.Lock()
	c.params = &np
	c.mu.Unlock()
	return np, nil
}

// TxError is a tx the chain refused (in CheckTx) or failed (in the block).
type TxError struct {
	Code   types.Code
	Log    string
	Hash   string
	Height int64 // 0 when refused by CheckTx
}

func (e *TxError) Error() string {
	if e.Height > 0 {
		return fmt.Sprintf("tx %s failed in block %d: %s (code %d %s)", e.Hash, e.Height, e.Log, e.Code, e.Code)
	}
	return fmt.Sprintf("tx refused: %s (code %d %s)", e.Log, e.Code, e.Code)
}

// TxResult is a committed tx.
type TxResult struct {
	Hash   string            `json:"hash"`
	Height int64             `json:"height"`
	Code   types.Code        `json:"code"`
	Log    string            `json:"log,omitempty"`
	Fee    uint64            `json:"fee"`
	Events map[string]string `json:"events,omitempty"`
}

// BroadcastSync submits raw tx bytes and returns once CheckTx accepted them.
func (c *Client) BroadcastSync(ctx context.Context, tx []byte) (string, error) {
	res, err := c.rpc.BroadcastTxSync(ctx, tx)
	if err != nil {
		if te := parseInvalidTx(err); te != nil {
			return te.Hash, te
		}
		return "", fmt.Errorf("broadcast: %w", err)
	}
	if res.Code != 0 {
		return res.Hash.String(), &TxError{Code: types.Code(res.Code), Log: res.Log, Hash: res.Hash.String()}
	}
	return res.Hash.String(), nil
}

// BroadcastCommit submits raw tx bytes (resubmitting them while the node
// refuses them only for now, e.g. mempool full), then waits until they are
// in a block and returns the result. It needs the node's tx indexer ("kv").
func (c *Client) BroadcastCommit(ctx context.Context, tx []byte) (*TxResult, error) {
	hash, _, err := c.broadcastRetry(ctx, tx, DefaultBackoff)
	if err != nil {
		return nil, err
	}
	return c.WaitTx(ctx, hash)
}

// WaitTx polls for a tx by hash until it is committed or ctx ends.
func (c *Client) WaitTx(ctx context.Context, hash string) (*TxResult, error) {
	hb, err := hex.DecodeString(hash)
	if err != nil {
		return nil, fmt.Errorf("tx hash %q: %w", hash, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		res, err := c.rpc.Tx(ctx, hb, false)
		if err == nil {
			return txResultOf(res)
		}
		if strings.Contains(err.Error(), "indexing is disabled") {
			return nil, fmt.Errorf("tx %s: the node's tx indexer is disabled, cannot wait for commit", hash)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("tx %s not committed: %w (last error: %v)", hash, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Tx returns a committed tx by hash.
func (c *Client) Tx(ctx context.Context, hash string) (*TxResult, error) {
	hb, err := hex.DecodeString(hash)
	if err != nil {
		return nil, fmt.Errorf("tx hash %q: %w", hash, err)
	}
	res, err := c.rpc.Tx(ctx, hb, false)
	if err != nil {
		return nil, fmt.Errorf("tx %s: %w", hash, err)
	}
	out, _ := txResultOf(res)
	return out, nil
}

func txResultOf(res *ctypes.ResultTx) (*TxResult, error) {
	out := &TxResult{Hash: res.Hash.String(), Height: res.Height, Code: types.Code(res.TxResult.Code), Log: res.TxResult.Log, Events: map[string]string{}}
	for _, ev := range res.TxResult.Events {
		for _, a := range ev.Attributes {
			out.Events[a.Key] = a.Value
		}
	}
	out.Fee, _ = strconv.ParseUint(out.Events["fee"], 10, 64)
	if out.Code != 0 {
		return out, &TxError{Code: out.Code, Log: out.Log, Hash: out.Hash, Height: out.Height}
	}
	return out, nil
}

// Signer signs txs for one account and tracks its nonce locally, so several
// txs can be sent without waiting for each to commit.
//
// Nonce rules (see ARCHITECTURE.md): the first nonce, and the nonce after any
// doubt, is the node's pending nonce (/nonce/<addr>: the last commit plus the
// account's txs already admitted to its mempool), not the committed one, so a
// second tx sent before the first commits gets the next nonce. A tx the node
// refuses only for now (mempool full, still rechecking, node unreachable or
// slow) is resubmitted as the same signed bytes, same nonce, with bounded
// exponential backoff and jitter; "tx already exists in cache" means an
// earlier attempt got in, and counts as admitted. Submit and Send hold the
// signer's send lock from signing until the node has admitted or refused the
// tx, so one Signer used from several goroutines hands out nonces in order and
// no tx reaches the mempool ahead of a lower nonce: when a tx is refused for
// good (insufficient funds, ...) no later nonce of this signer is in flight,
// its nonce is given back, and nothing is stuck behind a gap. A bad_nonce
// refusal (another signer used the account) resyncs from the pending nonce
// and re-signs. A tx admitted and later dropped from the mempool (a recheck
// found it invalid after a block) is noticed by Send, which re-signs it on a
// fresh pending nonce.
type Signer struct {
	c    *Client
	priv ed25519.PrivateKey
	addr types.Address

	// Backoff paces resubmissions of refused txs (DefaultBackoff if zero).
	Backoff Backoff

	sendMu sync.Mutex // held from signing to admission (Submit)

	mu    sync.Mutex
	nonce uint64
	known bool

	resubmitted atomic.Uint64
	resynced    atomic.Uint64
}

// SignerStats counts what a Signer had to do to get its txs admitted.
type SignerStats struct {
	Resubmitted uint64 // broadcasts repeated after a "not now" refusal
	Resynced    uint64 // nonce rereads after a bad_nonce refusal or a lost tx
}

// Stats returns the signer's counters.
func (s *Signer) Stats() SignerStats {
	return SignerStats{Resubmitted: s.resubmitted.Load(), Resynced: s.resynced.Load()}
}

// NewSigner returns a signer for priv.
func (c *Client) NewSigner(priv ed25519.PrivateKey) *Signer {
	return &Signer{c: c, priv: priv, addr: types.AddressFromPubKey(priv.Public().(ed25519.PublicKey))}
}

// Address is the signer's account address.
func (s *Signer) Address() types.Address { return s.addr }

// PrivKey is the signer's key.
func (s *Signer) PrivKey() ed25519.PrivateKey { return s.priv }

// ResetNonce forgets the local nonce; the next tx reads the pending nonce from the node.
func (s *Signer) ResetNonce() {
	s.mu.Lock()
	s.known = false
	s.mu.Unlock()
}

// Build signs a tx carrying msg with the next nonce and the minimum fee.
// The nonce is consumed: call ResetNonce if the tx is then not accepted.
// Submit and Send do that (and keep concurrent callers in nonce order);
// use Build only to broadcast the tx some other way.
func (s *Signer) Build(ctx context.Context, msg any, memo string) ([]byte, error) {
	tx, _, err := s.build(ctx, msg, memo)
	return tx, err
}

func (s *Signer) build(ctx context.Context, msg any, memo string) ([]byte, uint64, error) {
	chainID, err := s.c.ChainID(ctx)
	if err != nil {
		return nil, 0, err
	}
	params, err := s.c.Params(ctx)
	if err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known {
		n, err := s.c.PendingNonce(ctx, s.addr)
		if err != nil {
			return nil, 0, err
		}
		s.nonce, s.known = n.Pending, true
	}
	body := &types.TxBody{ChainId: chainID, Nonce: s.nonce, Memo: memo}
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, 0, fmt.Errorf("unsupported message type %T", msg)
	}
	if err := Msgs.Set(body, m); err != nil {
		return nil, 0, err
	}
	tx, err := SignWithMinFee(s.priv, body, params)
	if err != nil {
		return nil, 0, err
	}
	s.nonce++
	return tx, body.Nonce, nil
}

// SignWithMinFee sets body.Fee to the minimum fee for the signed tx's size and signs it.
func SignWithMinFee(priv ed25519.PrivateKey, body *types.TxBody, params types.Params) ([]byte, error) {
	name := Msgs.Name(body)
	body.Fee = params.MinFee(name, 0)
	for i := 0; i < 4; i++ {
		tx, err := types.SignTx(priv, body)
		if err != nil {
			return nil, err
		}
		need := params.MinFee(name, len(tx))
		if body.Fee >= need {
			return tx, nil
		}
		body.Fee = need
	}
	return nil, errors.New("could not settle the tx fee")
}

// maxResyncs bounds how often one Submit rereads the nonce after bad_nonce
// refusals (each means another signer took the nonce meanwhile).
const maxResyncs = 5

// Submit signs msg with the next nonce and broadcasts it until the node
// admits it to its mempool (resubmitting the same tx while the node refuses
// it only for now), and returns its hash and nonce without waiting for a
// block. See Signer for the nonce rules.
func (s *Signer) Submit(ctx context.Context, msg any, memo string) (hash string, nonce uint64, err error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	for resyncs := 0; ; resyncs++ {
		tx, nonce, err := s.build(ctx, msg, memo)
		if err != nil {
			return "", 0, err
		}
		hash, retries, err := s.c.broadcastRetry(ctx, tx, s.Backoff)
		s.resubmitted.Add(uint64(retries))
		if err == nil {
			return hash, nonce, nil
		}
		// Refused or not known to be admitted: nothing later of ours is in
		// flight (sendMu), so rereading the pending nonce leaves no gap.
		s.ResetNonce()
		var te *TxError
		if errors.As(err, &te) && te.Height == 0 && te.Code == types.CodeBadNonce && resyncs < maxResyncs {
			s.resynced.Add(1)
			continue
		}
		return hash, nonce, err
	}
}

// Send signs msg, broadcasts it (see Submit) and waits for it to be
// committed. If the tx leaves the mempool without being committed (a
// recheck after a block found it invalid, or another signer's tx took its
// nonce), it is signed again on the pending nonce and resent.
func (s *Signer) Send(ctx context.Context, msg any) (*TxResult, error) {
	for attempt := 0; ; attempt++ {
		hash, nonce, err := s.Submit(ctx, msg, "")
		if err != nil {
			return nil, err
		}
		res, lost, err := s.waitCommitted(ctx, hash, nonce)
		if lost && attempt < maxResyncs {
			s.resynced.Add(1)
			s.ResetNonce()
			continue
		}
		return res, err
	}
}

// waitCommitted waits for the tx hash (nonce n of this account) to be in a
// block. lost reports that it will not be: the account's pending nonce fell
// to n or below (the tx left the mempool) or its committed nonce passed n,
// and the tx was still not found a grace period later (the tx indexer runs
// a little behind the block).
func (s *Signer) waitCommitted(ctx context.Context, hash string, n uint64) (res *TxResult, lost bool, err error) {
	hb, err := hex.DecodeString(hash)
	if err != nil {
		return nil, false, fmt.Errorf("tx hash %q: %w", hash, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var suspect time.Time
	lastCheck := time.Now()
	for {
		r, err := s.c.rpc.Tx(ctx, hb, false)
		if err == nil {
			res, err := txResultOf(r)
			return res, false, err
		}
		if strings.Contains(err.Error(), "indexing is disabled") {
			return nil, false, fmt.Errorf("tx %s: the node's tx indexer is disabled, cannot wait for commit", hash)
		}
		if time.Since(lastCheck) >= time.Second {
			lastCheck = time.Now()
			if nv, nerr := s.c.PendingNonce(ctx, s.addr); nerr == nil && (nv.Pending <= n || nv.Committed > n) {
				if suspect.IsZero() {
					suspect = time.Now()
				} else if time.Since(suspect) >= 3*time.Second {
					return nil, true, fmt.Errorf("tx %s (nonce %d) left the mempool without being committed", hash, n)
				}
			} else {
				suspect = time.Time{}
			}
		}
		select {
		case <-ctx.Done():
			return nil, false, fmt.Errorf("tx %s not committed: %w (last error: %v)", hash, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PendingNonce returns an account's committed nonce and the next nonce the
// node's mempool will admit (/nonce/<addr>; not committed state, no proof).
// A node without that query answers with the committed nonce for both.
func (c *Client) PendingNonce(ctx context.Context, addr types.Address) (api.NonceView, error) {
	var v api.NonceView
	err := c.Query(ctx, api.NoncePath(addr), 0, &v)
	if err != nil && IsNotFound(err) && strings.Contains(err.Error(), "unknown query path") {
		acc, aerr := c.Account(ctx, addr)
		if aerr != nil {
			return v, aerr
		}
		return api.NonceView{Address: addr, Committed: acc.Nonce, Pending: acc.Nonce}, nil
	}
	return v, err
}

// Backoff paces resubmissions: the first wait is Initial, each next one
// doubles up to Max, each is jittered by ±25%, and after MaxElapsed the last
// refusal is returned.
type Backoff struct {
	Initial, Max, MaxElapsed time.Duration
}

// DefaultBackoff suits a node with ~1 s blocks: a full mempool drains a block at a time.
var DefaultBackoff = Backoff{Initial: 50 * time.Millisecond, Max: 2 * time.Second, MaxElapsed: 60 * time.Second}

func (b Backoff) orDefault() Backoff {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoff.Initial
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoff.Max
	}
	if b.MaxElapsed <= 0 {
		b.MaxElapsed = DefaultBackoff.MaxElapsed
	}
	return b
}

// Refusal is how the node answered a broadcast.
type Refusal int

const (
	// Admitted: CheckTx passed (or the same bytes were already admitted).
	Admitted Refusal = iota
	// RetryLater: not admitted for now (mempool full or rechecking, the node
	// unreachable, slow or catching up); the same tx may be sent again.
	RetryLater
	// Refused: CheckTx or the mempool refused the tx itself; resending it
	// cannot help.
	Refused
)

// ClassifyBroadcast sorts a broadcast error (nil: admitted). Exported for
// load generators that broadcast on their own.
func ClassifyBroadcast(err error) Refusal {
	if err == nil {
		return Admitted
	}
	if parseInvalidTx(err) != nil {
		return Refused
	}
	var te *TxError
	if errors.As(err, &te) {
		return Refused
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "tx already exists in cache"), strings.Contains(msg, "transaction already in mempool"):
		return Admitted
	case strings.Contains(msg, "mempool is full"), strings.Contains(msg, "mempool is still rechecking"),
		strings.Contains(msg, "broadcast confirmation not received"), strings.Contains(msg, "catching up"),
		strings.Contains(msg, "too many open connections"):
		return RetryLater
	}
	var rpcErr *rpctypes.RPCError
	if errors.As(err, &rpcErr) {
		return Refused // an answer from the node about this tx (too large, ...)
	}
	return RetryLater // transport: refused connection, reset, timeout, ...
}

// broadcastRetry broadcasts tx and resends the same bytes while the node
// answers RetryLater, with backoff. It returns the tx hash, the number of
// resubmissions, and nil once the tx is admitted.
func (c *Client) broadcastRetry(ctx context.Context, tx []byte, b Backoff) (string, int, error) {
	b = b.orDefault()
	hash := fmt.Sprintf("%X", sha256.Sum256(tx))
	start := time.Now()
	wait := b.Initial
	for retries := 0; ; retries++ {
		_, err := c.BroadcastSync(ctx, tx)
		switch ClassifyBroadcast(err) {
		case Admitted:
			return hash, retries, nil
		case Refused:
			return hash, retries, err
		}
		if ctx.Err() != nil {
			return hash, retries, fmt.Errorf("%w (last refusal: %v)", ctx.Err(), err)
		}
		if time.Since(start)+wait > b.MaxElapsed {
			return hash, retries, fmt.Errorf("tx %s not admitted after %d attempts over %s: %w", hash, retries+1, time.Since(start).Round(time.Millisecond), err)
		}
		jittered := wait*3/4 + time.Duration(rand.Int64N(int64(wait/2)+1))
		select {
		case <-ctx.Done():
			return hash, retries, fmt.Errorf("%w (last refusal: %v)", ctx.Err(), err)
		case <-time.After(jittered):
		}
		wait = min(2*wait, b.Max)
	}
}

// CometBFT v1.0 reports a tx refused by CheckTx as an RPC error whose text is
// "tx <HASH> is invalid: code=<n>, data=<hex>, log='<log>', codespace='<cs>'".
var invalidTxRE = regexp.MustCompile(`tx ([0-9A-F]+) is invalid: code=(\d+), data=[0-9A-F]*, log='(?s:(.*))', codespace='[^']*'`)

func parseInvalidTx(err error) *TxError {
	m := invalidTxRE.FindStringSubmatch(err.Error())
	if m == nil {
		return nil
	}
	code, _ := strconv.ParseUint(m[2], 10, 32)
	return &TxError{Code: types.Code(code), Log: m[3], Hash: m[1]}
}
