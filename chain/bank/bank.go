// Package bank keeps account balances, nonces and the total supply.
//
// Invariant: the sum of all account balances (module accounts included)
// equals the total supply. Escrowed funds (bonds, channel deposits) live in
// module accounts, so the invariant covers them too.
package bank

import (
	"crypto/sha256"

	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

var (
	prefixAccount = []byte("acc/")
	keySupply     = []byte("bank/supply")
	keyMinted     = []byte("bank/minted") // everything ever minted (genesis included)
	keyBurned     = []byte("bank/burned") // everything ever burned
)

// ModuleAddress is the address of a module account: no key can sign for it.
func ModuleAddress(name string) types.Address {
	h := sha256.Sum256([]byte("agora/module/" + name))
	return types.Address(h[:types.AddressLen])
}

// Module accounts.
var (
	// FeePool collects every tx fee; the rewards module distributes it.
	FeePool = ModuleAddress("fee_pool")
	// StakePool holds bonded and unbonding stake (validators and providers).
	StakePool = ModuleAddress("stake_pool")
	// ChannelEscrow holds the unspent deposits of payment channels.
	ChannelEscrow = ModuleAddress("channel_escrow")
	// RewardsPool holds minted emission and collected fees until an epoch's
	// settlement pays them out (division dust waits for the next one).
	RewardsPool = ModuleAddress("rewards")
)

// ModuleAccounts lists the module accounts with their names, in a fixed order.
var ModuleAccounts = []struct {
	Name    string
	Address types.Address
}{{"fee_pool", FeePool}, {"stake_pool", StakePool}, {"channel_escrow", ChannelEscrow}, {"rewards", RewardsPool}}

func accountKey(addr []byte) []byte { return codec.Key(prefixAccount, addr) }

// GetAccount returns the account, or a zero account when it does not exist.
func GetAccount(kv store.KV, addr []byte) *types.Account {
	bz := kv.Get(accountKey(addr))
	acc := &types.Account{}
	if bz == nil {
		acc.Address = append([]byte(nil), addr...)
		return acc
	}
	codec.MustUnmarshal(bz, acc)
	return acc
}

// SetAccount stores acc.
func SetAccount(kv store.KV, acc *types.Account) {
	kv.Set(accountKey(acc.Address), codec.Marshal(acc))
}

// Balance returns addr's balance.
func Balance(kv store.KV, addr []byte) uint64 { return GetAccount(kv, addr).Balance }

// Send moves amount from one account to another.
func Send(kv store.KV, from, to []byte, amount uint64) error {
	if amount == 0 {
		return nil
	}
	src := GetAccount(kv, from)
	if src.Balance < amount {
		return types.Errorf(types.CodeInsufficientFunds, "insufficient funds: %s has %d uagr, needs %d", types.Address(from), src.Balance, amount)
	}
	if string(from) == string(to) {
		return nil
	}
	dst := GetAccount(kv, to)
	nb, err := types.AddU64(dst.Balance, amount)
	if err != nil {
		return err
	}
	src.Balance -= amount
	dst.Balance = nb
	SetAccount(kv, src)
	SetAccount(kv, dst)
	return nil
}

// Credit adds amount to addr's balance. The caller must have removed the
// same amount from another balance (e.g. fees debited from their payers), so
// the supply is unchanged.
func Credit(kv store.KV, addr []byte, amount uint64) error {
	if amount == 0 {
		return nil
	}
	acc := GetAccount(kv, addr)
	b, err := types.AddU64(acc.Balance, amount)
	if err != nil {
		return err
	}
	acc.Balance = b
	SetAccount(kv, acc)
	return nil
}

// Supply returns the total supply.
func Supply(kv store.KV) uint64 { return codec.ReadU64(kv.Get(keySupply)) }

// Mint creates amount and credits it to addr.
func Mint(kv store.KV, addr []byte, amount uint64) error {
	s, err := types.AddU64(Supply(kv), amount)
	if err != nil {
		return err
	}
	if err := Credit(kv, addr, amount); err != nil {
		return err
	}
	kv.Set(keySupply, codec.U64(s))
	kv.Set(keyMinted, codec.U64(Minted(kv)+amount))
	return nil
}

// Minted is the total ever minted, genesis balances and bonds included.
func Minted(kv store.KV) uint64 { return codec.ReadU64(kv.Get(keyMinted)) }

// Burned is the total ever burned.
func Burned(kv store.KV) uint64 { return codec.ReadU64(kv.Get(keyBurned)) }

// Burn destroys amount from addr's balance.
func Burn(kv store.KV, addr []byte, amount uint64) error {
	acc := GetAccount(kv, addr)
	if acc.Balance < amount {
		return types.Errorf(types.CodeInsufficientFunds, "burn %d from %s: balance %d", amount, types.Address(addr), acc.Balance)
	}
	acc.Balance -= amount
	SetAccount(kv, acc)
	kv.Set(keySupply, codec.U64(Supply(kv)-amount))
	kv.Set(keyBurned, codec.U64(Burned(kv)+amount))
	return nil
}

// IterateAccounts calls fn for each account in address order.
func IterateAccounts(kv store.KV, fn func(*types.Account) bool) {
	kv.Iterate(prefixAccount, func(_, v []byte) bool {
		acc := &types.Account{}
		codec.MustUnmarshal(v, acc)
		return fn(acc)
	})
}

// SumBalances adds up every balance; used by the supply invariant.
func SumBalances(kv store.KV) (uint64, error) {
	var sum uint64
	var err error
	IterateAccounts(kv, func(a *types.Account) bool {
		sum, err = types.AddU64(sum, a.Balance)
		return err == nil
	})
	return sum, err
}
