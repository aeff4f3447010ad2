// Package stake keeps validator and provider bonds, the unbonding queue,
// slashing and jailing, and computes CometBFT validator-set updates from
// bonded stake (voting power = bonded / power_reduction).
package stake

import (
	"bytes"
	"crypto/sha256"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

var (
	prefixValidator    = []byte("val/")
	prefixConsIndex    = []byte("valcons/")
	prefixLastPower    = []byte("valpower/")
	prefixProviderBond = []byte("pbond/")
	prefixUnbonding    = []byte("unb/")  // unb/<owner>/<id>
	prefixUnbondQueue  = []byte("unbq/") // unbq/<completion height>/<owner>/<id>
	keyUnbondingSeq    = []byte("seq/unbonding")
)

// ConsAddress is CometBFT's address for a consensus key: sha256(pub)[:20].
func ConsAddress(pub []byte) []byte {
	h := sha256.Sum256(pub)
	return h[:20]
}

func validatorKey(op []byte) []byte { return codec.Key(prefixValidator, op) }

// GetValidator returns the validator operated by op, or nil.
func GetValidator(kv store.KV, op []byte) *types.Validator {
	bz := kv.Get(validatorKey(op))
	if bz == nil {
		return nil
	}
	v := &types.Validator{}
	codec.MustUnmarshal(bz, v)
	return v
}

// SetValidator stores v.
func SetValidator(kv store.KV, v *types.Validator) {
	kv.Set(validatorKey(v.Operator), codec.Marshal(v))
}

// ValidatorByConsAddress finds a validator by its CometBFT address.
func ValidatorByConsAddress(kv store.KV, consAddr []byte) *types.Validator {
	op := kv.Get(codec.Key(prefixConsIndex, consAddr))
	if op == nil {
		return nil
	}
	return GetValidator(kv, op)
}

// IterateValidators calls fn for each validator in operator-address order.
func IterateValidators(kv store.KV, fn func(*types.Validator) bool) {
	kv.Iterate(prefixValidator, func(_, bz []byte) bool {
		v := &types.Validator{}
		codec.MustUnmarshal(bz, v)
		return fn(v)
	})
}

// CreateGenesisValidator records a validator whose stake is already in the stake pool.
func CreateGenesisValidator(kv store.KV, op, consPub []byte, bonded uint64) error {
	if GetValidator(kv, op) != nil || kv.Has(codec.Key(prefixConsIndex, ConsAddress(consPub))) {
		return types.Errorf(types.CodeInvalid, "validator %s or its consensus key already exists", types.Address(op))
	}
	SetValidator(kv, &types.Validator{Operator: op, ConsPubKey: consPub, Bonded: bonded})
	kv.Set(codec.Key(prefixConsIndex, ConsAddress(consPub)), op)
	return nil
}

// BondValidator moves amount from op's balance into its validator bond,
// creating the validator on first bond.
func BondValidator(kv store.KV, p types.Params, op, consPub []byte, amount uint64) error {
	v := GetValidator(kv, op)
	if v == nil {
		if kv.Has(codec.Key(prefixConsIndex, ConsAddress(consPub))) {
			return types.Errorf(types.CodeInvalid, "consensus key already used by another validator")
		}
		v = &types.Validator{Operator: op, ConsPubKey: consPub}
		kv.Set(codec.Key(prefixConsIndex, ConsAddress(consPub)), op)
	} else if !bytes.Equal(v.ConsPubKey, consPub) {
		return types.Errorf(types.CodeInvalid, "validator %s is bonded with a different consensus key", types.Address(op))
	}
	nb, err := types.AddU64(v.Bonded, amount)
	if err != nil {
		return err
	}
	if nb < p.MinValidatorStake {
		return types.Errorf(types.CodeInsufficientFunds, "validator bond %d below min_validator_stake %d", nb, p.MinValidatorStake)
	}
	if err := bank.Send(kv, op, bank.StakePool, amount); err != nil {
		return err
	}
	v.Bonded = nb
	SetValidator(kv, v)
	return nil
}

// UnbondValidator starts unbonding amount of op's validator bond.
func UnbondValidator(kv store.KV, p types.Params, height int64, op []byte, amount uint64) error {
	v := GetValidator(kv, op)
	if v == nil {
		return types.Errorf(types.CodeNotFound, "no validator operated by %s", types.Address(op))
	}
	if v.Bonded < amount {
		return types.Errorf(types.CodeInsufficientFunds, "unbond %d: validator bond is only %d", amount, v.Bonded)
	}
	v.Bonded -= amount
	SetValidator(kv, v)
	addUnbonding(kv, p, height, op, types.BondKind_BOND_KIND_VALIDATOR, amount)
	return nil
}

// Unjail lets a jailed validator rejoin after its jail period.
func Unjail(kv store.KV, p types.Params, height int64, op []byte) error {
	v := GetValidator(kv, op)
	if v == nil {
		return types.Errorf(types.CodeNotFound, "no validator operated by %s", types.Address(op))
	}
	if !v.Jailed {
		return types.Errorf(types.CodeInvalid, "validator %s is not jailed", types.Address(op))
	}
	if height < v.JailedUntil {
		return types.Errorf(types.CodeInvalid, "validator %s is jailed until height %d", types.Address(op), v.JailedUntil)
	}
	if v.Bonded < p.MinValidatorStake {
		return types.Errorf(types.CodeInsufficientFunds, "validator bond %d below min_validator_stake %d", v.Bonded, p.MinValidatorStake)
	}
	v.Jailed = false
	SetValidator(kv, v)
	return nil
}

// JailValidator removes a validator from the set until height `until`.
func JailValidator(kv store.KV, op []byte, until int64) error {
	v := GetValidator(kv, op)
	if v == nil {
		return types.Errorf(types.CodeNotFound, "no validator operated by %s", types.Address(op))
	}
	v.Jailed = true
	if until > v.JailedUntil {
		v.JailedUntil = until
	}
	v.Faults++
	SetValidator(kv, v)
	return nil
}

// ProviderBond returns addr's provider bond.
func ProviderBond(kv store.KV, addr []byte) uint64 {
	return codec.ReadU64(kv.Get(codec.Key(prefixProviderBond, addr)))
}

func setProviderBond(kv store.KV, addr []byte, amount uint64) {
	if amount == 0 {
		kv.Delete(codec.Key(prefixProviderBond, addr))
		return
	}
	kv.Set(codec.Key(prefixProviderBond, addr), codec.U64(amount))
}

// BondProvider moves amount from addr's balance into its provider bond.
func BondProvider(kv store.KV, addr []byte, amount uint64) error {
	nb, err := types.AddU64(ProviderBond(kv, addr), amount)
	if err != nil {
		return err
	}
	if err := bank.Send(kv, addr, bank.StakePool, amount); err != nil {
		return err
	}
	setProviderBond(kv, addr, nb)
	return nil
}

// UnbondProvider starts unbonding amount of addr's provider bond. keepMin is
// the bond the provider must keep (the minimum while it is registered).
func UnbondProvider(kv store.KV, p types.Params, height int64, addr []byte, amount, keepMin uint64) error {
	b := ProviderBond(kv, addr)
	if b < amount {
		return types.Errorf(types.CodeInsufficientFunds, "unbond %d: provider bond is only %d", amount, b)
	}
	if b-amount < keepMin {
		return types.Errorf(types.CodeInvalid, "a registered provider must keep at least %d bonded (would have %d); deregister first", keepMin, b-amount)
	}
	setProviderBond(kv, addr, b-amount)
	addUnbonding(kv, p, height, addr, types.BondKind_BOND_KIND_PROVIDER, amount)
	return nil
}

func addUnbonding(kv store.KV, p types.Params, height int64, owner []byte, kind types.BondKind, amount uint64) {
	id := codec.ReadU64(kv.Get(keyUnbondingSeq)) + 1
	kv.Set(keyUnbondingSeq, codec.U64(id))
	u := &types.Unbonding{
		Owner: owner, Kind: kind, Amount: amount, Id: id,
		CreationHeight: height, CompletionHeight: height + p.UnbondingPeriod,
	}
	kv.Set(codec.Key(prefixUnbonding, owner, codec.U64(id)), codec.Marshal(u))
	kv.Set(codec.Key(prefixUnbondQueue, codec.I64(u.CompletionHeight), owner, codec.U64(id)), []byte{1})
}

// Unbondings lists owner's pending unbondings in id order.
func Unbondings(kv store.KV, owner []byte) []*types.Unbonding {
	var out []*types.Unbonding
	kv.Iterate(codec.Key(prefixUnbonding, owner), func(_, bz []byte) bool {
		u := &types.Unbonding{}
		codec.MustUnmarshal(bz, u)
		out = append(out, u)
		return true
	})
	return out
}

// CompleteUnbondings pays out every unbonding whose completion height is at
// or below height. It returns the number completed.
func CompleteUnbondings(kv store.KV, height int64) (int, error) {
	type due struct{ queueKey, entryKey []byte }
	var dues []due
	end := codec.Key(prefixUnbondQueue, codec.I64(height+1))
	kv.Iterate(prefixUnbondQueue, func(k, _ []byte) bool {
		if bytes.Compare(k, end) >= 0 {
			return false
		}
		rest := k[len(prefixUnbondQueue)+8:] // owner || id
		dues = append(dues, due{queueKey: bytes.Clone(k), entryKey: codec.Key(prefixUnbonding, rest)})
		return true
	})
	for _, d := range dues {
		bz := kv.Get(d.entryKey)
		kv.Delete(d.queueKey)
		if bz == nil {
			continue // fully slashed
		}
		u := &types.Unbonding{}
		codec.MustUnmarshal(bz, u)
		kv.Delete(d.entryKey)
		if err := bank.Send(kv, bank.StakePool, u.Owner, u.Amount); err != nil {
			return 0, err
		}
	}
	return len(dues), nil
}

// slashUnbondings slashes bps of owner's pending unbondings of kind and returns the total taken.
func slashUnbondings(kv store.KV, owner []byte, kind types.BondKind, bps uint64) uint64 {
	var taken uint64
	for _, u := range Unbondings(kv, owner) {
		if u.Kind != kind {
			continue
		}
		cut := types.MulDivU64(u.Amount, bps, 10000)
		u.Amount -= cut
		taken += cut
		kv.Set(codec.Key(prefixUnbonding, owner, codec.U64(u.Id)), codec.Marshal(u))
	}
	return taken
}

// SlashValidator takes bps basis points of a validator's bond and pending
// unbondings, burns them, and returns the amount slashed.
func SlashValidator(kv store.KV, op []byte, bps uint64) (uint64, error) {
	v := GetValidator(kv, op)
	if v == nil {
		return 0, types.Errorf(types.CodeNotFound, "no validator operated by %s", types.Address(op))
	}
	cut := types.MulDivU64(v.Bonded, bps, 10000)
	v.Bonded -= cut
	SetValidator(kv, v)
	cut += slashUnbondings(kv, op, types.BondKind_BOND_KIND_VALIDATOR, bps)
	return cut, bank.Burn(kv, bank.StakePool, cut)
}

// SlashProvider takes bps basis points of a provider's bond and pending
// unbondings and moves them to dest (nil: burn). It returns the amount slashed.
func SlashProvider(kv store.KV, addr []byte, bps uint64, dest []byte) (uint64, error) {
	b := ProviderBond(kv, addr)
	cut := types.MulDivU64(b, bps, 10000)
	setProviderBond(kv, addr, b-cut)
	cut += slashUnbondings(kv, addr, types.BondKind_BOND_KIND_PROVIDER, bps)
	if dest == nil {
		return cut, bank.Burn(kv, bank.StakePool, cut)
	}
	return cut, bank.Send(kv, bank.StakePool, dest, cut)
}

// Power returns a validator's CometBFT voting power.
func Power(p types.Params, v *types.Validator) int64 {
	if v.Jailed || v.Bonded < p.MinValidatorStake {
		return 0
	}
	return int64(v.Bonded / p.PowerReduction)
}

// Update is a change of one validator's voting power.
type Update struct {
	ConsPubKey []byte
	Power      int64
}

// ValidatorUpdates compares every validator's power with the power last sent
// to CometBFT and returns the changes, in operator-address order. It records
// the new powers.
func ValidatorUpdates(kv store.KV, p types.Params) []Update {
	var ups []Update
	IterateValidators(kv, func(v *types.Validator) bool {
		pw := Power(p, v)
		key := codec.Key(prefixLastPower, v.Operator)
		last := int64(codec.ReadU64(kv.Get(key)))
		if pw != last {
			ups = append(ups, Update{ConsPubKey: v.ConsPubKey, Power: pw})
			if pw == 0 {
				kv.Delete(key)
			} else {
				kv.Set(key, codec.U64(uint64(pw)))
			}
		}
		return true
	})
	return ups
}

// TotalBonded sums validator bonds, provider bonds and pending unbondings:
// the stake pool must hold exactly this much.
func TotalBonded(kv store.KV) (uint64, error) {
	var sum uint64
	var err error
	add := func(x uint64) bool {
		sum, err = types.AddU64(sum, x)
		return err == nil
	}
	IterateValidators(kv, func(v *types.Validator) bool { return add(v.Bonded) })
	kv.Iterate(prefixProviderBond, func(_, bz []byte) bool { return add(codec.ReadU64(bz)) })
	kv.Iterate(prefixUnbonding, func(_, bz []byte) bool {
		u := &types.Unbonding{}
		codec.MustUnmarshal(bz, u)
		return add(u.Amount)
	})
	return sum, err
}
