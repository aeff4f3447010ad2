// Package client is the Go client of an Agora node: typed queries (with
// Merkle proofs when asked), and signing and broadcasting txs through
// CometBFT's RPC. The CLI uses it; so will the provider, gateway and validator.
package client

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	rpcclient "github.com/cometbft/cometbft/rpc/client"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"

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
func (c *Client) Account(ctx context.Context, addr types.Address) (app.AccountView, error) {
	var v app.AccountView
	err := c.Query(ctx, "/account/"+addr.String(), 0, &v)
	return v, err
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
	if err := c.Query(ctx, "/params", 0, &np); err != nil {
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

// BroadcastCommit submits raw tx bytes, then waits until they are in a
// block and returns the result. It needs the node's tx indexer ("kv").
func (c *Client) BroadcastCommit(ctx context.Context, tx []byte) (*TxResult, error) {
	hash, err := c.BroadcastSync(ctx, tx)
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
type Signer struct {
	c    *Client
	priv ed25519.PrivateKey
	addr types.Address

	mu    sync.Mutex
	nonce uint64
	known bool
}

// NewSigner returns a signer for priv.
func (c *Client) NewSigner(priv ed25519.PrivateKey) *Signer {
	return &Signer{c: c, priv: priv, addr: types.AddressFromPubKey(priv.Public().(ed25519.PublicKey))}
}

// Address is the signer's account address.
func (s *Signer) Address() types.Address { return s.addr }

// PrivKey is the signer's key.
func (s *Signer) PrivKey() ed25519.PrivateKey { return s.priv }

// ResetNonce forgets the local nonce; the next tx reads it from the chain.
func (s *Signer) ResetNonce() {
	s.mu.Lock()
	s.known = false
	s.mu.Unlock()
}

// Build signs a tx carrying msg with the next nonce and the minimum fee.
// The nonce is consumed: call ResetNonce if the tx is then not accepted.
func (s *Signer) Build(ctx context.Context, msg any, memo string) ([]byte, error) {
	chainID, err := s.c.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	params, err := s.c.Params(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known {
		acc, err := s.c.Account(ctx, s.addr)
		if err != nil {
			return nil, err
		}
		s.nonce, s.known = acc.Nonce, true
	}
	body := &types.TxBody{ChainId: chainID, Nonce: s.nonce, Memo: memo}
	if err := types.SetMsg(body, msg); err != nil {
		return nil, err
	}
	tx, err := SignWithMinFee(s.priv, body, params)
	if err != nil {
		return nil, err
	}
	s.nonce++
	return tx, nil
}

// SignWithMinFee sets body.Fee to the minimum fee for the signed tx's size and signs it.
func SignWithMinFee(priv ed25519.PrivateKey, body *types.TxBody, params types.Params) ([]byte, error) {
	name := types.MsgName(body)
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

// Send signs msg, broadcasts it and waits for it to be committed. When
// CheckTx refuses the nonce (another signer used the account meanwhile), it
// rereads the nonce from the chain and tries once more.
func (s *Signer) Send(ctx context.Context, msg any) (*TxResult, error) {
	for attempt := 0; ; attempt++ {
		tx, err := s.Build(ctx, msg, "")
		if err != nil {
			return nil, err
		}
		res, err := s.c.BroadcastCommit(ctx, tx)
		var te *TxError
		if err != nil && (!errors.As(err, &te) || te.Height == 0) {
			s.ResetNonce() // not in a block: the nonce was not used
			if attempt == 0 && te != nil && te.Code == types.CodeBadNonce {
				continue
			}
		}
		return res, err
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
