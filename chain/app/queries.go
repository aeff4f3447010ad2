package app

import (
	"encoding/hex"
	"errors"
	"strconv"

	"github.com/agoranet/agora/chain/api"
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

// QueryHandler answers the JSON query paths named by its first segment
// (/<name>/<args...>) from committed state kv. A path of a shape it does
// not answer returns ErrUnknownPath.
type QueryHandler func(kv store.KV, q QueryReq) (any, error)

// ErrUnknownPath: a query handler does not answer this shape of its path.
var ErrUnknownPath = errors.New("unknown query path")

// QueryReq is a query's path after its name, with what handlers may know of
// the chain.
type QueryReq struct {
	Args     []string
	ChainID  string
	Params   types.Params
	Services services.Registry
}

// Arg is argument i, or "" past the end.
func (q QueryReq) Arg(i int) string {
	if i < len(q.Args) {
		return q.Args[i]
	}
	return ""
}

// Addr parses argument i as an address.
func (q QueryReq) Addr(i int) (types.Address, error) {
	ad, err := types.ParseAddress(q.Arg(i))
	if err != nil {
		return nil, types.Errorf(types.CodeMalformed, "%v", err)
	}
	return ad, nil
}

// Num parses argument i as an unsigned number.
func (q QueryReq) Num(i int) (uint64, error) {
	n, err := strconv.ParseUint(q.Arg(i), 10, 64)
	if err != nil {
		return 0, types.Errorf(types.CodeMalformed, "%q is not a number", q.Arg(i))
	}
	return n, nil
}

// The modules' queries: each answers one first segment of the paths
// chain/api builds.

func bankQueries() map[string]QueryHandler {
	return map[string]QueryHandler{
		"account": func(kv store.KV, q QueryReq) (any, error) {
			if len(q.Args) != 1 {
				return nil, ErrUnknownPath
			}
			ad, err := q.Addr(0)
			if err != nil {
				return nil, err
			}
			return api.AccountViewOf(bank.GetAccount(kv, ad)), nil
		},
		"supply": func(kv store.KV, q QueryReq) (any, error) {
			if len(q.Args) != 0 {
				return nil, ErrUnknownPath
			}
			s := api.SupplyView{Total: bank.Supply(kv), ChainID: q.ChainID}
			for _, m := range bank.ModuleAccounts {
				s.Modules = append(s.Modules, api.ModuleBalance{Name: m.Name, Address: m.Address, Balance: bank.Balance(kv, m.Address)})
			}
			return s, nil
		},
	}
}

func stakeQueries() map[string]QueryHandler {
	return map[string]QueryHandler{
		"validators": func(kv store.KV, q QueryReq) (any, error) {
			if len(q.Args) != 0 {
				return nil, ErrUnknownPath
			}
			out := []api.ValidatorView{}
			stake.IterateValidators(kv, func(v *types.Validator) bool {
				out = append(out, api.ValidatorViewOf(q.Params, v))
				return true
			})
			return out, nil
		},
		"validator": func(kv store.KV, q QueryReq) (any, error) {
			if len(q.Args) != 1 {
				return nil, ErrUnknownPath
			}
			ad, err := q.Addr(0)
			if err != nil {
				return nil, err
			}
			v := stake.GetValidator(kv, ad)
			if v == nil {
				return nil, notFound("no validator operated by %s", ad)
			}
			return api.ValidatorViewOf(q.Params, v), nil
		},
		"unbondings": func(kv store.KV, q QueryReq) (any, error) {
			if len(q.Args) != 1 {
				return nil, ErrUnknownPath
			}
			ad, err := q.Addr(0)
			if err != nil {
				return nil, err
			}
			out := []api.UnbondingView{}
			for _, u := range stake.Unbondings(kv, ad) {
				out = append(out, api.UnbondingViewOf(u))
			}
			return out, nil
		},
	}
}

func registryQueries() map[string]QueryHandler {
	return map[string]QueryHandler{
		"providers": func(kv store.KV, q QueryReq) (any, error) {
			out := []api.ProviderView{}
			switch {
			case len(q.Args) == 0:
				registry.Iterate(kv, func(p *types.Provider) bool {
					out = append(out, api.ProviderViewOf(kv, p))
					return true
				})
			case len(q.Args) == 2 && q.Arg(0) == "model":
				h, err := hex.DecodeString(q.Arg(1))
				if err != nil || len(h) != types.HashLen {
					return nil, types.Errorf(types.CodeMalformed, "model hash must be %d hex bytes", types.HashLen)
				}
				for _, ad := range registry.ProvidersForModel(kv, h) {
					out = append(out, api.ProviderViewOf(kv, registry.Get(kv, ad)))
				}
			default:
				return nil, ErrUnknownPath
			}
			return out, nil
		},
		"provider": func(kv store.KV, q QueryReq) (any, error) {
			if len(q.Args) != 1 {
				return nil, ErrUnknownPath
			}
			ad, err := q.Addr(0)
			if err != nil {
				return nil, err
			}
			p := registry.Get(kv, ad)
			if p == nil {
				return nil, notFound("no provider %s", ad)
			}
			return api.ProviderViewOf(kv, p), nil
		},
	}
}

func channelsQueries() map[string]QueryHandler {
	return map[string]QueryHandler{
		"channel": func(kv store.KV, q QueryReq) (any, error) {
			if len(q.Args) != 1 {
				return nil, ErrUnknownPath
			}
			id, err := q.Num(0)
			if err != nil {
				return nil, err
			}
			c := channels.Get(kv, id)
			if c == nil {
				return nil, notFound("channel %d does not exist", id)
			}
			return api.ChannelViewOf(c), nil
		},
		"channels": func(kv store.KV, q QueryReq) (any, error) {
			if len(q.Args) != 2 || (q.Arg(0) != "client" && q.Arg(0) != "provider") {
				return nil, ErrUnknownPath
			}
			ad, err := q.Addr(1)
			if err != nil {
				return nil, err
			}
			list := channels.ByClient(kv, ad)
			if q.Arg(0) == "provider" {
				list = channels.ByProvider(kv, ad)
			}
			out := []api.ChannelView{}
			for _, c := range list {
				out = append(out, api.ChannelViewOf(c))
			}
			return out, nil
		},
	}
}

func epochsQueries() map[string]QueryHandler {
	return map[string]QueryHandler{
		"epoch": func(kv store.KV, q QueryReq) (any, error) {
			if len(q.Args) != 1 {
				return nil, ErrUnknownPath
			}
			var e *types.Epoch
			if q.Arg(0) == "latest" {
				if e = epochs.Latest(kv); e == nil {
					return nil, notFound("no epoch has ended yet")
				}
			} else {
				n, err := q.Num(0)
				if err != nil {
					return nil, err
				}
				if e = epochs.Get(kv, n); e == nil {
					return nil, notFound("epoch %d has not ended", n)
				}
			}
			return api.EpochViewOf(e), nil
		},
		"commitments": func(kv store.KV, q QueryReq) (any, error) {
			if len(q.Args) != 1 {
				return nil, ErrUnknownPath
			}
			n, err := q.Num(0)
			if err != nil {
				return nil, err
			}
			out := []api.CommitmentView{}
			for _, c := range epochs.Commitments(kv, n) {
				out = append(out, api.CommitmentViewOf(c))
			}
			return out, nil
		},
		// /commitment/<n>/<addr>[/<service>] (no service: inference)
		"commitment": func(kv store.KV, q QueryReq) (any, error) {
			if len(q.Args) != 2 && len(q.Args) != 3 {
				return nil, ErrUnknownPath
			}
			n, err := q.Num(0)
			if err != nil {
				return nil, err
			}
			ad, err := q.Addr(1)
			if err != nil {
				return nil, err
			}
			svc := services.Inference
			if len(q.Args) == 3 {
				s, err := q.Services.Get(q.Arg(2))
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
		},
	}
}

func auditQueries() map[string]QueryHandler {
	return map[string]QueryHandler{
		"challenges": func(kv store.KV, q QueryReq) (any, error) {
			var who []byte
			switch {
			case len(q.Args) == 0:
			case len(q.Args) == 2 && q.Arg(0) == "provider":
				ad, err := q.Addr(1)
				if err != nil {
					return nil, err
				}
				who = ad
			default:
				return nil, ErrUnknownPath
			}
			out := []api.ChallengeView{}
			for _, c := range audit.Challenges(kv, who) {
				out = append(out, api.ChallengeViewOf(c))
			}
			return out, nil
		},
		"disputes": func(kv store.KV, q QueryReq) (any, error) {
			if len(q.Args) != 0 {
				return nil, ErrUnknownPath
			}
			out := []api.DisputeView{}
			for _, d := range audit.OpenDisputes(kv) {
				out = append(out, api.DisputeView{Epoch: d.Epoch, Provider: d.Provider, Index: d.Index, ReceiptID: d.ReceiptId, Client: d.Client,
					Bond: d.Bond, Deadline: d.Deadline, OpenedHeight: d.OpenedHeight})
			}
			return out, nil
		},
	}
}
