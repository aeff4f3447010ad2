package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"
	cryptov1 "github.com/cometbft/cometbft/api/cometbft/crypto/v1"
	ics23 "github.com/cosmos/ics23/go"

	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// ProofOpType names the ICS-23 IAVL proof in a query's ProofOps.
const ProofOpType = "ics23:iavl"

// Query answers reads of committed state.
//
// Paths (all JSON answers except /store):
//
//	/store                raw value of key Data; with Prove, an ICS-23 proof against the app hash
//	/account/<addr>       /validators  /validator/<addr>  /unbondings/<addr>
//	/providers            /provider/<addr>  /providers/model/<hash hex>
//	/channel/<id>         /channels/client/<addr>  /channels/provider/<addr>
//	/epoch/<n>            /epoch/latest  /commitments/<n>  /commitment/<n>/<addr>[/<service>]
//	                      (no service: inference)
//	/params               /supply
//	/nonce/<addr>         {committed, pending}: read from the check state (the
//	                      mempool's view), not committed state: no height, no proof
func (a *App) Query(_ context.Context, req *abci.QueryRequest) (*abci.QueryResponse, error) {
	if ad, ok, err := nonceQuery(req.Path); ok {
		if err != nil {
			return &abci.QueryResponse{Code: uint32(types.CodeMalformed), Codespace: Codespace, Log: err.Error()}, nil
		}
		if req.Prove || req.Height != 0 {
			return &abci.QueryResponse{Code: uint32(types.CodeInvalid), Codespace: Codespace,
				Log: "the pending nonce is the mempool's view, not committed state: it has no height and no proof"}, nil
		}
		v := a.PendingNonce(ad)
		bz, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return &abci.QueryResponse{Height: v.Height, Value: bz}, nil
	}
	snap, err := a.Snapshot(req.Height)
	if err != nil {
		return &abci.QueryResponse{Code: uint32(types.CodeNotFound), Codespace: Codespace, Log: err.Error()}, nil
	}
	resp := &abci.QueryResponse{Height: snap.Version()}
	if req.Path == "/store" {
		resp.Key = req.Data
		resp.Value = snap.Get(req.Data)
		if req.Prove {
			proof, err := snap.Proof(req.Data)
			if err != nil {
				resp.Code, resp.Log = uint32(types.CodeInternal), err.Error()
				return resp, nil
			}
			bz, err := proof.Marshal()
			if err != nil {
				return nil, err
			}
			resp.ProofOps = &cryptov1.ProofOps{Ops: []cryptov1.ProofOp{{Type: ProofOpType, Key: req.Data, Data: bz}}}
		}
		return resp, nil
	}
	v, err := a.queryJSON(snap, req.Path)
	if err != nil {
		resp.Code, resp.Codespace, resp.Log = uint32(types.CodeOf(err)), Codespace, err.Error()
		if resp.Code == uint32(types.CodeInternal) {
			resp.Code = uint32(types.CodeInvalid)
		}
		return resp, nil
	}
	bz, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	resp.Value = bz
	return resp, nil
}

// QueryJSON answers a JSON query path at height (0: latest); the HTTP API uses it.
func (a *App) QueryJSON(path string, height int64) (any, int64, error) {
	if ad, ok, err := nonceQuery(path); ok {
		if err != nil {
			return nil, 0, err
		}
		if height != 0 {
			return nil, 0, types.Errorf(types.CodeInvalid, "the pending nonce is the mempool's view: it has no past heights")
		}
		v := a.PendingNonce(ad)
		return v, v.Height, nil
	}
	snap, err := a.Snapshot(height)
	if err != nil {
		return nil, 0, types.Errorf(types.CodeNotFound, "%v", err)
	}
	v, err := a.queryJSON(snap, path)
	return v, snap.Version(), err
}

// nonceQuery reports whether path is /nonce/<addr>, and parses the address.
func nonceQuery(path string) (types.Address, bool, error) {
	rest, ok := strings.CutPrefix(strings.Trim(path, "/"), "nonce/")
	if !ok {
		return nil, false, nil
	}
	ad, err := types.ParseAddress(rest)
	if err != nil {
		return nil, true, types.Errorf(types.CodeMalformed, "%v", err)
	}
	return ad, true, nil
}

func notFound(format string, args ...any) error {
	return types.Errorf(types.CodeNotFound, format, args...)
}

func (a *App) queryJSON(kv store.KV, path string) (any, error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if parts[0] == "params" && len(parts) == 1 {
		return a.params, nil
	}
	h := a.table.queries[parts[0]]
	if h == nil {
		return nil, notFound("unknown query path %q", path)
	}
	v, err := h(kv, QueryReq{Args: parts[1:], ChainID: a.chainID, Params: a.params, Services: a.table.services})
	if errors.Is(err, ErrUnknownPath) {
		return nil, notFound("unknown query path %q", path)
	}
	return v, err
}

// VerifyStoreProof checks a /store query answer against an app hash.
func VerifyStoreProof(appHash []byte, resp *abci.QueryResponse) error {
	if resp.ProofOps == nil || len(resp.ProofOps.Ops) != 1 || resp.ProofOps.Ops[0].Type != ProofOpType {
		return errors.New("answer carries no ICS-23 proof")
	}
	proof := &ics23.CommitmentProof{}
	if err := proof.Unmarshal(resp.ProofOps.Ops[0].Data); err != nil {
		return fmt.Errorf("decode proof: %w", err)
	}
	var value []byte
	if len(resp.Value) > 0 {
		value = resp.Value
	}
	if !store.VerifyProof(appHash, proof, resp.Key, value) {
		return errors.New("proof does not verify against the app hash")
	}
	return nil
}
