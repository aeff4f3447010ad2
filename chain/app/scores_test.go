package app

import (
	"crypto/ed25519"
	"sort"
	"testing"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/types"
)

// TestQualityScores: three validators score two providers; each provider's
// quality is the stake-weighted median, so a validator with a minority of
// the stake cannot lift a provider it favours; providers are paid by billed
// work × quality and validators by stake × agreement with the medians, to
// the base unit.
func TestQualityScores(t *testing.T) {
	h := newHarnessWith(t, map[string]uint64{"operator": 10_000_000_000, "v2": 10_000_000_000, "v3": 10_000_000_000, "p1": 10_000_000_000, "p2": 10_000_000_000}, func(p *types.Params) {
		p.EpochLength, p.CommitWindow, p.OpeningWindow = 10, 2, 4
	})
	p := h.params
	stakeOf := map[string]uint64{"operator": p.MinValidatorStake, "v2": 3 * p.MinValidatorStake, "v3": p.MinValidatorStake}
	mustOK(t, h.block(
		h.tx("v2", &types.MsgBondValidator{ConsPubKey: key("v2-cons").Public().(ed25519.PublicKey), Amount: stakeOf["v2"]}),
		h.tx("v3", &types.MsgBondValidator{ConsPubKey: key("v3-cons").Public().(ed25519.PublicKey), Amount: stakeOf["v3"]}),
	))
	for _, who := range []string{"p1", "p2"} {
		mustOK(t, h.block(h.tx(who, &types.MsgBondProvider{Amount: p.MinProviderStake}), h.tx(who, &types.MsgRegisterProvider{Info: info()})))
	}
	for h.height < p.EpochLength {
		h.block()
	}
	mustOK(t, h.block(
		h.tx("p1", &types.MsgCommitEpoch{Epoch: 0, Root: make([]byte, 32), RecordCount: 10, TotalBilled: 4000}),
		h.tx("p2", &types.MsgCommitEpoch{Epoch: 0, Root: make([]byte, 32), RecordCount: 10, TotalBilled: 4000}),
	))
	scores := func(s1, s2 uint32) *types.MsgSubmitScores {
		ps := []*types.ProviderScore{{Provider: addrOf(key("p1")), ScoreBps: s1}, {Provider: addrOf(key("p2")), ScoreBps: s2}}
		sort.Slice(ps, func(i, j int) bool { return string(ps[i].Provider) < string(ps[j].Provider) })
		return &types.MsgSubmitScores{Epoch: 0, Scores: ps}
	}
	code := func(tx []byte) types.Code { return types.Code(h.block(tx)[0].Code) }
	if c := code(h.tx("operator", scores(10000, 10000))); c != types.CodeInvalid {
		t.Fatalf("scores before the seed: code %s", c)
	}
	snap, _ := h.app.Snapshot(0)
	ep := epochs.Get(snap, 0)
	for h.height < ep.SeedHeight {
		h.block()
	}
	// The operator (20 % of the stake) inflates p2; v2 and v3 (80 %) do not.
	mustOK(t, h.block(
		h.tx("operator", scores(10000, 10000)),
		h.tx("v2", scores(9000, 2000)),
		h.tx("v3", scores(9000, 2000)),
	))
	if c := code(h.tx("v2", scores(1, 1))); c != types.CodeInvalid {
		t.Fatalf("a second submission: code %s", c)
	}
	if c := code(h.tx("p1", scores(1, 1))); c != types.CodeUnauthorized {
		t.Fatalf("scores from a non-validator: code %s", c)
	}
	snap, _ = h.app.Snapshot(0)
	ep = epochs.Get(snap, 0)
	for h.height < ep.SettleHeight-1 {
		h.block()
	}
	snap, _ = h.app.Snapshot(0)
	before := map[string]uint64{}
	for _, who := range []string{"operator", "v2", "v3", "p1", "p2"} {
		before[who] = bank.Balance(snap, addrOf(key(who)))
	}
	poolBefore, feesBefore := bank.Balance(snap, bank.RewardsPool), bank.Balance(snap, bank.FeePool)
	h.block() // the settlement block
	snap, _ = h.app.Snapshot(0)
	ep = epochs.Get(snap, 0)
	if !ep.Settled || ep.Fees != feesBefore {
		t.Fatalf("epoch: %+v (fee pool was %d)", ep, feesBefore)
	}
	available := poolBefore + ep.Emission + ep.Fees
	P := available * p.ProviderRewardBps / 10000
	V := available - P
	// Medians: p1 9000, p2 2000 (the operator's 10000 is outvoted).
	w1, w2 := uint64(4000*9000/10000), uint64(4000*2000/10000)
	want := map[string]uint64{"p1": P * w1 / (w1 + w2), "p2": P * w2 / (w1 + w2)}
	// Agreement: operator 10000 − (1000 + 8000)/2 = 5500; v2 and v3 10000.
	vw := map[string]uint64{"operator": stakeOf["operator"] * 5500 / 10000, "v2": stakeOf["v2"], "v3": stakeOf["v3"]}
	vt := vw["operator"] + vw["v2"] + vw["v3"]
	for _, who := range []string{"operator", "v2", "v3"} {
		want[who] = V * vw[who] / vt
	}
	for who, w := range want {
		if got := bank.Balance(snap, addrOf(key(who))) - before[who]; got != w {
			t.Errorf("%s earned %d, want %d", who, got, w)
		}
	}
	for who, q := range map[string]uint32{"p1": 9000, "p2": 2000} {
		if c := epochs.GetCommitment(snap, 0, "inference", addrOf(key(who))); c.QualityBps != q || c.Reward != want[who] {
			t.Errorf("%s's commitment: quality %d (want %d), reward %d", who, c.QualityBps, q, c.Reward)
		}
	}
	if c := code(h.tx("v3", scores(5000, 5000))); c != types.CodeInvalid {
		t.Fatalf("scores after settlement: code %s", c)
	}
}
