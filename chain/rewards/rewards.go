// Package rewards settles an epoch once its verdict window has closed:
// providers' reputations move (up for a clean epoch, already reset by a
// fault), the epoch's emission is minted on the halving schedule, and the
// emission plus the fees collected since the last settlement are paid out:
// a share to providers in proportion to their verified billed work, the rest
// to validators in proportion to their stake.
package rewards

import (
	"github.com/agoranet/agora/chain/audit"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/verify"
)

// Pool holds rewards between minting and payout; integer-division dust
// stays in it and is paid with the next epoch's rewards.
var Pool = bank.RewardsPool

// Settlement is what settling an epoch did.
type Settlement struct {
	Epoch            uint64
	Emission         uint64
	Fees             uint64
	ProviderRewards  uint64
	ValidatorRewards uint64
	Verified         int // commitments paid (committed, no fault, not jailed)
	Payouts          []Payout
}

// Payout is one reward paid.
type Payout struct {
	To     []byte
	Role   string // "provider" or "validator"
	Amount uint64
}

// Settle settles epoch n. It runs at the end of the block after which no
// fault report for n is accepted, so a commitment's fault status is final.
func Settle(kv store.KV, p types.Params, n uint64) (Settlement, error) {
	s := Settlement{Epoch: n}
	ep := epochs.Get(kv, n)
	if ep == nil || ep.Settled {
		return s, nil
	}
	// Reputation: a clean epoch adds a step; a fault already reset it.
	cms := epochs.Commitments(kv, n) // provider-address order
	clean := make([]bool, len(cms))
	for i, c := range cms {
		pv := registry.Get(kv, c.Provider)
		if pv == nil {
			continue
		}
		faulted := audit.Faulted(kv, n, c.Provider)
		clean[i] = !faulted && !pv.Jailed
		if !faulted {
			pv.ReputationBps = verify.NextReputation(pv.ReputationBps, p.ReputationStepBps, false)
			registry.Set(kv, pv)
		}
	}

	// Mint the emission and take the fee pool into the rewards pool.
	s.Emission = verify.Emission(p.InitialEpochEmission, p.HalvingIntervalEpochs, n)
	if err := bank.Mint(kv, Pool, s.Emission); err != nil {
		return s, err
	}
	s.Fees = bank.Balance(kv, bank.FeePool)
	if err := bank.Send(kv, bank.FeePool, Pool, s.Fees); err != nil {
		return s, err
	}
	available := bank.Balance(kv, Pool)
	providerPart := types.MulDivU64(available, p.ProviderRewardBps, 10000)
	validatorPart := available - providerPart

	// Providers: by billed work in verified commitments.
	var work uint64
	for i, c := range cms {
		if clean[i] {
			work += c.TotalBilled
		}
	}
	for i, c := range cms {
		c.Settled = true
		if clean[i] && work > 0 {
			c.Reward = types.MulDivU64(providerPart, c.TotalBilled, work)
			if err := bank.Send(kv, Pool, c.Provider, c.Reward); err != nil {
				return s, err
			}
			s.ProviderRewards += c.Reward
			s.Verified++
			s.Payouts = append(s.Payouts, Payout{To: c.Provider, Role: "provider", Amount: c.Reward})
		}
		epochs.SetCommitment(kv, c)
	}

	// Validators: by bonded stake among those with voting power. With no
	// verified work the providers' part goes to them too.
	if work == 0 {
		validatorPart = available
	}
	var vals []*types.Validator
	var bonded uint64
	stake.IterateValidators(kv, func(v *types.Validator) bool {
		if stake.Power(p, v) > 0 {
			vals = append(vals, v)
			bonded += v.Bonded
		}
		return true
	})
	for _, v := range vals {
		r := types.MulDivU64(validatorPart, v.Bonded, bonded)
		if err := bank.Send(kv, Pool, v.Operator, r); err != nil {
			return s, err
		}
		s.ValidatorRewards += r
		s.Payouts = append(s.Payouts, Payout{To: v.Operator, Role: "validator", Amount: r})
	}

	ep.Settled = true
	ep.Emission, ep.Fees = s.Emission, s.Fees
	ep.ProviderRewards, ep.ValidatorRewards = s.ProviderRewards, s.ValidatorRewards
	epochs.Set(kv, ep)
	return s, nil
}
