// Package rewards settles an epoch once its verdict window has closed:
// providers' reputations move (up for a clean epoch, already reset by a
// fault), the epoch's emission is minted on the halving schedule, and the
// emission plus the fees collected since the last settlement are paid out:
// a share to providers in proportion to their verified billed work, the rest
// to validators in proportion to their stake.
package rewards

import (
	"sort"

	"github.com/agoranet/agora/chain/audit"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/services"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// Pool holds rewards between minting and payout; integer-division dust
// stays in it and is paid with the next epoch's rewards.
var Pool = bank.RewardsPool

var prefixScores = []byte("score/") // score/<epoch>/<validator> -> MsgSubmitScores

// ScoreKey is where a validator's scores for an epoch are stored.
func ScoreKey(epoch uint64, validator []byte) []byte {
	return codec.Key(prefixScores, codec.U64(epoch), validator)
}

// SubmitScores records a bonded validator's quality scores for epoch n,
// once, between the epoch's seed and its settlement.
func SubmitScores(kv store.KV, p types.Params, height int64, signer []byte, m *types.MsgSubmitScores) error {
	v := stake.GetValidator(kv, signer)
	if v == nil || stake.Power(p, v) == 0 {
		return types.Errorf(types.CodeUnauthorized, "only bonded validators may submit scores")
	}
	ep := epochs.Get(kv, m.Epoch)
	if ep == nil || len(ep.Seed) == 0 {
		return types.Errorf(types.CodeInvalid, "epoch %d has no seed yet: scores come after the audits", m.Epoch)
	}
	if ep.Settled || (ep.SettleHeight > 0 && height > ep.SettleHeight) {
		return types.Errorf(types.CodeInvalid, "epoch %d is settled", m.Epoch)
	}
	k := ScoreKey(m.Epoch, signer)
	if kv.Has(k) {
		return types.Errorf(types.CodeInvalid, "validator %s already scored epoch %d", types.Address(signer), m.Epoch)
	}
	for _, sc := range m.Scores {
		if epochs.GetCommitment(kv, m.Epoch, services.Inference, sc.Provider) == nil {
			return types.Errorf(types.CodeNotFound, "provider %s did not commit epoch %d", types.Address(sc.Provider), m.Epoch)
		}
	}
	kv.Set(k, codec.Marshal(m))
	return nil
}

// vote is one validator's score for a provider, weighted by its stake.
type vote struct {
	validator []byte
	stake     uint64
	score     uint64
}

// Median is the stake-weighted median of votes: the lowest score at which
// the validators scoring at or below it hold at least half the voting
// stake. A minority of stake cannot move it, up or down.
func Median(votes []vote) uint64 {
	sorted := append([]vote(nil), votes...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].score != sorted[j].score {
			return sorted[i].score < sorted[j].score
		}
		return string(sorted[i].validator) < string(sorted[j].validator)
	})
	var total, cum uint64
	for _, v := range sorted {
		total += v.stake
	}
	for _, v := range sorted {
		cum += v.stake
		if 2*cum >= total {
			return v.score
		}
	}
	return 10000
}

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

// Emission is the uagr minted for epoch n: initial halved every interval
// epochs (0 once halved 64 times).
func Emission(initial, interval, n uint64) uint64 {
	if interval == 0 {
		return 0
	}
	h := n / interval
	if h >= 64 {
		return 0
	}
	return initial >> h
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
	cms := epochs.Commitments(kv, n) // provider-address order, then service
	clean := make([]bool, len(cms))
	for i, c := range cms {
		pv := registry.Get(kv, c.Provider)
		if pv == nil {
			continue
		}
		faulted := audit.Faulted(kv, n, c.Provider) // a fault in any service
		clean[i] = !faulted && !pv.Jailed
		// A jailed provider earns neither rewards nor reputation; one that
		// committed several services gains one step, not one per service.
		if clean[i] && (i == 0 || string(cms[i-1].Provider) != string(c.Provider)) {
			pv.ReputationBps = registry.NextReputation(pv.ReputationBps, p.ReputationStepBps, false)
			registry.Set(kv, pv)
		}
	}

	// Mint the emission and take the fee pool into the rewards pool.
	s.Emission = Emission(p.InitialEpochEmission, p.HalvingIntervalEpochs, n)
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

	// Validators with voting power, and the scores they submitted.
	var vals []*types.Validator
	var bonded uint64
	stake.IterateValidators(kv, func(v *types.Validator) bool {
		if stake.Power(p, v) > 0 {
			vals = append(vals, v)
			bonded += v.Bonded
		}
		return true
	})
	scores := map[string]map[string]uint64{} // validator → provider → score
	for _, v := range vals {
		bz := kv.Get(codec.Key(prefixScores, codec.U64(n), v.Operator))
		if bz == nil {
			continue
		}
		m := &types.MsgSubmitScores{}
		codec.MustUnmarshal(bz, m)
		byProv := map[string]uint64{}
		for _, sc := range m.Scores {
			byProv[string(sc.Provider)] = uint64(sc.ScoreBps)
		}
		scores[string(v.Operator)] = byProv
	}
	// Quality: the stake-weighted median of the scores each provider got.
	quality := make([]uint64, len(cms))
	for i, c := range cms {
		var votes []vote
		for _, v := range vals {
			if sc, ok := scores[string(v.Operator)][string(c.Provider)]; ok {
				votes = append(votes, vote{v.Operator, v.Bonded, sc})
			}
		}
		quality[i] = 10000
		if len(votes) > 0 {
			quality[i] = Median(votes)
		}
		c.QualityBps = uint32(quality[i])
	}

	// Providers: by billed work in verified commitments, times quality.
	var work uint64
	weight := make([]uint64, len(cms))
	for i, c := range cms {
		if clean[i] {
			weight[i] = types.MulDivU64(c.TotalBilled, quality[i], 10000)
			work += weight[i]
		}
	}
	for i, c := range cms {
		c.Settled = true
		if clean[i] && work > 0 && weight[i] > 0 {
			c.Reward = types.MulDivU64(providerPart, weight[i], work)
			if err := bank.Send(kv, Pool, c.Provider, c.Reward); err != nil {
				return s, err
			}
			s.ProviderRewards += c.Reward
			s.Verified++
			s.Payouts = append(s.Payouts, Payout{To: c.Provider, Role: "provider", Amount: c.Reward})
		}
		epochs.SetCommitment(kv, c)
	}

	// Validators: by stake, times their agreement with the medians when
	// anyone scored (a validator that did not score then agrees with
	// nothing). With no verified work the providers' part goes to them too.
	if work == 0 {
		validatorPart = available
	}
	vweight := make([]uint64, len(vals))
	var vtotal uint64
	for i, v := range vals {
		vweight[i] = v.Bonded
		if len(scores) > 0 {
			vweight[i] = types.MulDivU64(v.Bonded, Agreement(scores[string(v.Operator)], cms, quality), 10000)
		}
		vtotal += vweight[i]
	}
	if vtotal == 0 { // every scoring validator disagrees completely: pay by stake
		for i, v := range vals {
			vweight[i] = v.Bonded
		}
		vtotal = bonded
	}
	for i, v := range vals {
		if vweight[i] == 0 {
			continue
		}
		r := types.MulDivU64(validatorPart, vweight[i], vtotal)
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

// Agreement is a validator's agreement with the consensus, in basis points:
// 10000 minus its mean absolute distance to the median over the committed
// providers it scored (0 when it scored none).
func Agreement(mine map[string]uint64, cms []*types.Commitment, quality []uint64) uint64 {
	var dist, n uint64
	for i, c := range cms {
		sc, ok := mine[string(c.Provider)]
		if !ok {
			continue
		}
		if sc > quality[i] {
			dist += sc - quality[i]
		} else {
			dist += quality[i] - sc
		}
		n++
	}
	if n == 0 {
		return 0
	}
	return 10000 - min(10000, dist/n)
}
