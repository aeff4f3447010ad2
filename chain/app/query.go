package app

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"strconv"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"
	cryptov1 "github.com/cometbft/cometbft/api/cometbft/crypto/v1"
	ics23 "github.com/cosmos/ics23/go"

	"github.com/agoranet/agora/chain/audit"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/channels"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/services"
	"github.com/agoranet/agora/chain/stake"
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
	arg := func(i int) string {
		if i < len(parts) {
			return parts[i]
		}
		return ""
	}
	addr := func(i int) (types.Address, error) {
		ad, err := types.ParseAddress(arg(i))
		if err != nil {
			return nil, types.Errorf(types.CodeMalformed, "%v", err)
		}
		return ad, nil
	}
	num := func(i int) (uint64, error) {
		n, err := strconv.ParseUint(arg(i), 10, 64)
		if err != nil {
			return 0, types.Errorf(types.CodeMalformed, "%q is not a number", arg(i))
		}
		return n, nil
	}
	switch {
	case parts[0] == "account" && len(parts) == 2:
		ad, err := addr(1)
		if err != nil {
			return nil, err
		}
		return api.AccountViewOf(bank.GetAccount(kv, ad)), nil
	case parts[0] == "validators" && len(parts) == 1:
		out := []api.ValidatorView{}
		stake.IterateValidators(kv, func(v *types.Validator) bool {
			out = append(out, api.ValidatorViewOf(a.params, v))
			return true
		})
		return out, nil
	case parts[0] == "validator" && len(parts) == 2:
		ad, err := addr(1)
		if err != nil {
			return nil, err
		}
		v := stake.GetValidator(kv, ad)
		if v == nil {
			return nil, notFound("no validator operated by %s", ad)
		}
		return api.ValidatorViewOf(a.params, v), nil
	case parts[0] == "unbondings" && len(parts) == 2:
		ad, err := addr(1)
		if err != nil {
			return nil, err
		}
		out := []api.UnbondingView{}
		for _, u := range stake.Unbondings(kv, ad) {
			out = append(out, api.UnbondingViewOf(u))
		}
		return out, nil
	case parts[0] == "providers" && len(parts) == 1:
		out := []api.ProviderView{}
		registry.Iterate(kv, func(p *types.Provider) bool {
			out = append(out, api.ProviderViewOf(kv, p))
			return true
		})
		return out, nil
	case parts[0] == "providers" && arg(1) == "model" && len(parts) == 3:
		h, err := hex.DecodeString(arg(2))
		if err != nil || len(h) != types.HashLen {
			return nil, types.Errorf(types.CodeMalformed, "model hash must be %d hex bytes", types.HashLen)
		}
		out := []api.ProviderView{}
		for _, ad := range registry.ProvidersForModel(kv, h) {
			out = append(out, api.ProviderViewOf(kv, registry.Get(kv, ad)))
		}
		return out, nil
	case parts[0] == "provider" && len(parts) == 2:
		ad, err := addr(1)
		if err != nil {
			return nil, err
		}
		p := registry.Get(kv, ad)
		if p == nil {
			return nil, notFound("no provider %s", ad)
		}
		return api.ProviderViewOf(kv, p), nil
	case parts[0] == "channel" && len(parts) == 2:
		id, err := num(1)
		if err != nil {
			return nil, err
		}
		c := channels.Get(kv, id)
		if c == nil {
			return nil, notFound("channel %d does not exist", id)
		}
		return api.ChannelViewOf(c), nil
	case parts[0] == "channels" && len(parts) == 3 && (arg(1) == "client" || arg(1) == "provider"):
		ad, err := addr(2)
		if err != nil {
			return nil, err
		}
		list := channels.ByClient(kv, ad)
		if arg(1) == "provider" {
			list = channels.ByProvider(kv, ad)
		}
		out := []api.ChannelView{}
		for _, c := range list {
			out = append(out, api.ChannelViewOf(c))
		}
		return out, nil
	case parts[0] == "epoch" && len(parts) == 2:
		var e *types.Epoch
		if arg(1) == "latest" {
			e = epochs.Latest(kv)
			if e == nil {
				return nil, notFound("no epoch has ended yet")
			}
		} else {
			n, err := num(1)
			if err != nil {
				return nil, err
			}
			e = epochs.Get(kv, n)
			if e == nil {
				return nil, notFound("epoch %d has not ended", n)
			}
		}
		return api.EpochViewOf(e), nil
	case parts[0] == "commitments" && len(parts) == 2:
		n, err := num(1)
		if err != nil {
			return nil, err
		}
		out := []api.CommitmentView{}
		for _, c := range epochs.Commitments(kv, n) {
			out = append(out, api.CommitmentViewOf(c))
		}
		return out, nil
	case parts[0] == "commitment" && (len(parts) == 3 || len(parts) == 4):
		n, err := num(1)
		if err != nil {
			return nil, err
		}
		ad, err := addr(2)
		if err != nil {
			return nil, err
		}
		svc := services.Inference
		if len(parts) == 4 {
			s, err := services.Known.Get(arg(3))
			if err != nil {
				return nil, notFound("%v", err)
			}
			svc = s.Name
		}
		c := epochs.GetCommitment(kv, n, svc, ad)
		if c == nil {
			if svc != services.Inference {
				return nil, notFound("no %s commitment by %s for epoch %d", svc, ad, n)
			}
			return nil, notFound("no commitment by %s for epoch %d", ad, n)
		}
		return api.CommitmentViewOf(c), nil
	case parts[0] == "challenges" && (len(parts) == 1 || len(parts) == 3 && arg(1) == "provider"):
		var who []byte
		if len(parts) == 3 {
			ad, err := addr(2)
			if err != nil {
				return nil, err
			}
			who = ad
		}
		out := []api.ChallengeView{}
		for _, c := range audit.Challenges(kv, who) {
			out = append(out, api.ChallengeViewOf(c))
		}
		return out, nil
	case parts[0] == "disputes" && len(parts) == 1:
		out := []api.DisputeView{}
		for _, d := range audit.OpenDisputes(kv) {
			out = append(out, api.DisputeView{Epoch: d.Epoch, Provider: d.Provider, Index: d.Index, ReceiptID: d.ReceiptId, Client: d.Client,
				Bond: d.Bond, Deadline: d.Deadline, OpenedHeight: d.OpenedHeight})
		}
		return out, nil
	case parts[0] == "params" && len(parts) == 1:
		return a.params, nil
	case parts[0] == "supply" && len(parts) == 1:
		s := api.SupplyView{Total: bank.Supply(kv), ChainID: a.chainID}
		for _, m := range bank.ModuleAccounts {
			s.Modules = append(s.Modules, api.ModuleBalance{Name: m.Name, Address: m.Address, Balance: bank.Balance(kv, m.Address)})
		}
		return s, nil
	}
	return nil, notFound("unknown query path %q", path)
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
