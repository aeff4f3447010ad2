// Package registry keeps the providers: where to reach them, which models
// they serve (by content hash), at what price, on what hardware, with which
// capabilities. A model index lets gateways find providers for a model.
package registry

import (
	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

var (
	prefixProvider = []byte("prov/")
	prefixModel    = []byte("model/") // model/<hash>/<provider> -> 1
)

func providerKey(addr []byte) []byte { return codec.Key(prefixProvider, addr) }

// Get returns the provider record for addr, or nil.
func Get(kv store.KV, addr []byte) *types.Provider {
	bz := kv.Get(providerKey(addr))
	if bz == nil {
		return nil
	}
	p := &types.Provider{}
	codec.MustUnmarshal(bz, p)
	return p
}

// Set stores a provider record.
func Set(kv store.KV, p *types.Provider) { kv.Set(providerKey(p.Address), codec.Marshal(p)) }

// NextReputation is a provider's reputation (basis points, 0..10000) after
// an epoch it committed is settled: a fault resets it to 0, a clean epoch
// adds step (capped at 10000). Honest providers reach full reputation after
// ceil(10000 / step) clean epochs and are then audited at the floor rate.
func NextReputation(rep, step uint64, faulted bool) uint64 {
	if faulted {
		return 0
	}
	return min(10000, rep+step)
}

// IsActive reports whether addr is a registered, unjailed provider.
func IsActive(kv store.KV, addr []byte) bool {
	p := Get(kv, addr)
	return p != nil && p.Registered && !p.Jailed
}

func indexModels(kv store.KV, p *types.Provider, add bool) {
	if p.Info == nil {
		return
	}
	for _, m := range p.Info.Models {
		k := codec.Key(prefixModel, m.Hash, p.Address)
		if add {
			kv.Set(k, []byte{1})
		} else {
			kv.Delete(k)
		}
	}
}

// Register adds addr as a provider. Its bond must be at least the minimum.
func Register(kv store.KV, params types.Params, height int64, addr []byte, info *types.ProviderInfo) error {
	if b := stake.ProviderBond(kv, addr); b < params.MinProviderStake {
		return types.Errorf(types.CodeInsufficientFunds, "provider bond %d below min_provider_stake %d: bond first", b, params.MinProviderStake)
	}
	p := Get(kv, addr)
	if p != nil && p.Registered {
		return types.Errorf(types.CodeInvalid, "provider %s is already registered; use update", types.Address(addr))
	}
	if p == nil {
		p = &types.Provider{Address: addr}
	}
	if p.Jailed {
		return types.Errorf(types.CodeUnauthorized, "provider %s is jailed", types.Address(addr))
	}
	p.Registered = true
	p.Info = info
	p.RegisteredHeight = height
	p.UpdatedHeight = height
	Set(kv, p)
	indexModels(kv, p, true)
	return nil
}

// Update replaces a registered provider's description.
func Update(kv store.KV, height int64, addr []byte, info *types.ProviderInfo) error {
	p := Get(kv, addr)
	if p == nil || !p.Registered {
		return types.Errorf(types.CodeNotFound, "provider %s is not registered", types.Address(addr))
	}
	indexModels(kv, p, false)
	p.Info = info
	p.UpdatedHeight = height
	Set(kv, p)
	indexModels(kv, p, true)
	return nil
}

// Deregister stops a provider from being offered new channels. Its record
// stays for history; its bond can then be unbonded.
func Deregister(kv store.KV, height int64, addr []byte) error {
	p := Get(kv, addr)
	if p == nil || !p.Registered {
		return types.Errorf(types.CodeNotFound, "provider %s is not registered", types.Address(addr))
	}
	indexModels(kv, p, false)
	p.Registered = false
	p.UpdatedHeight = height
	Set(kv, p)
	return nil
}

// Iterate calls fn for each provider record in address order.
func Iterate(kv store.KV, fn func(*types.Provider) bool) {
	kv.Iterate(prefixProvider, func(_, bz []byte) bool {
		p := &types.Provider{}
		codec.MustUnmarshal(bz, p)
		return fn(p)
	})
}

// ProvidersForModel returns the addresses of registered providers offering a model hash.
func ProvidersForModel(kv store.KV, hash []byte) []types.Address {
	var out []types.Address
	prefix := codec.Key(prefixModel, hash)
	kv.Iterate(prefix, func(k, _ []byte) bool {
		out = append(out, types.Address(append([]byte(nil), k[len(prefix):]...)))
		return true
	})
	return out
}
