package app

import (
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/chain/audit"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/rewards"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// The modules' end-block hooks (Module.EndBlock), run in the module
// table's order.

// stakeEndBlock slashes and jails double signers and completes matured
// unbondings.
func stakeEndBlock(kv store.KV, b *BlockCtx) ([]abci.Event, error) {
	var events []abci.Event
	for _, mb := range b.Misbehavior {
		v := stake.ValidatorByConsAddress(kv, mb.Validator.Address)
		if v == nil || v.Jailed {
			continue
		}
		cut, err := stake.SlashValidator(kv, v.Operator, b.Params.SlashDoubleSignBps)
		if err != nil {
			return nil, fmt.Errorf("slash %x: %w", v.Operator, err)
		}
		if err := stake.JailValidator(kv, v.Operator, b.Height+b.Params.JailDuration); err != nil {
			return nil, err
		}
		b.Log.Warn("validator slashed for misbehaviour", "operator", types.Address(v.Operator), "type", mb.Type.String(), "slashed", cut)
		events = append(events, abci.Event{Type: "slash", Attributes: []abci.EventAttribute{
			{Key: "validator", Value: types.Address(v.Operator).String(), Index: true},
			{Key: "reason", Value: mb.Type.String()},
			{Key: "amount", Value: itoa(cut)},
		}})
	}
	if _, err := stake.CompleteUnbondings(kv, b.Height); err != nil {
		return nil, fmt.Errorf("complete unbondings at %d: %w", b.Height, err)
	}
	return events, nil
}

// epochsEndBlock marks epoch boundaries and draws seeds.
func epochsEndBlock(kv store.KV, b *BlockCtx) ([]abci.Event, error) {
	var events []abci.Event
	if b.Height%b.Params.EpochLength == 0 {
		events = append(events, abci.Event{Type: "epoch_end", Attributes: []abci.EventAttribute{
			{Key: "epoch", Value: itoa(epochs.Number(b.Params, b.Height)), Index: true},
		}})
	}
	if e := epochs.EndBlock(kv, b.Params, b.Height, b.Hash); e != nil {
		events = append(events, b.Seeded(e))
	}
	return events, nil
}

// auditEndBlock turns expired omission challenges into faults and closes
// expired disputes.
func auditEndBlock(kv store.KV, b *BlockCtx) ([]abci.Event, error) {
	var events []abci.Event
	expired, err := audit.ExpireChallenges(kv, b.Params, b.Height)
	if err != nil {
		return nil, fmt.Errorf("expire omission challenges at %d: %w", b.Height, err)
	}
	for _, o := range expired {
		events = append(events, abci.Event{Type: "omission_fault", Attributes: []abci.EventAttribute{
			{Key: "provider", Value: types.Address(o.Provider).String(), Index: true},
			{Key: "epoch", Value: itoa(o.Epoch)},
			{Key: "index", Value: itoa(o.Index)},
			{Key: "applied", Value: fmt.Sprint(o.Applied)},
			{Key: "slashed", Value: itoa(o.Slashed)},
			{Key: "refund", Value: itoa(o.Refund)},
			{Key: "reward", Value: itoa(o.Reward)},
		}})
	}
	closed, err := audit.ExpireDisputes(kv, b.Height)
	if err != nil {
		return nil, fmt.Errorf("expire disputes at %d: %w", b.Height, err)
	}
	for _, d := range closed {
		events = append(events, abci.Event{Type: "dispute_rejected", Attributes: []abci.EventAttribute{
			{Key: "provider", Value: types.Address(d.Provider).String(), Index: true},
			{Key: "client", Value: types.Address(d.Client).String(), Index: true},
			{Key: "epoch", Value: itoa(d.Epoch)},
			{Key: "index", Value: itoa(d.Index)},
			{Key: "bond", Value: itoa(d.Bond)},
		}})
	}
	return events, nil
}

// rewardsEndBlock settles the epoch due for settlement.
func rewardsEndBlock(kv store.KV, b *BlockCtx) ([]abci.Event, error) {
	n, ok := epochs.DueForSettlement(kv, b.Height)
	if !ok {
		return nil, nil
	}
	s, err := rewards.Settle(kv, b.Params, n)
	if err != nil {
		return nil, fmt.Errorf("settle epoch %d: %w", n, err)
	}
	events := []abci.Event{{Type: "epoch_settled", Attributes: []abci.EventAttribute{
		{Key: "epoch", Value: itoa(n), Index: true},
		{Key: "emission", Value: itoa(s.Emission)},
		{Key: "fees", Value: itoa(s.Fees)},
		{Key: "provider_rewards", Value: itoa(s.ProviderRewards)},
		{Key: "validator_rewards", Value: itoa(s.ValidatorRewards)},
		{Key: "verified", Value: itoa(uint64(s.Verified))},
	}}}
	for _, po := range s.Payouts {
		events = append(events, abci.Event{Type: "reward", Attributes: []abci.EventAttribute{
			{Key: "epoch", Value: itoa(n)},
			{Key: po.Role, Value: types.Address(po.To).String(), Index: true},
			{Key: "amount", Value: itoa(po.Amount)},
		}})
	}
	return events, nil
}
