package app

import (
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/sampling"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

func eventAttr(evs []abci.Event, typ, key string) (string, bool) {
	for _, e := range evs {
		if e.Type != typ {
			continue
		}
		for _, a := range e.Attributes {
			if a.Key == key {
				return a.Value, true
			}
		}
	}
	return "", false
}

// TestSettlementOverManyEpochs runs 1,000 epochs with two providers that
// commit every epoch; the second one refuses its openings every 7th epoch
// and is reported. It checks, epoch by epoch, the emission against the
// halving schedule (written out here independently), the reward split by
// billed work and stake to the base unit, the reputations, and that the
// total supply changed by exactly the emission minus what the slashes burned.
func TestSettlementOverManyEpochs(t *testing.T) {
	const epochsRun = 1000
	h := newHarnessWith(t, map[string]uint64{"operator": 10_000_000_000, "prov1": 10_000_000_000, "prov2": 1_000_000_000_000}, func(p *types.Params) {
		p.EpochLength, p.CommitWindow, p.OpeningWindow = 4, 1, 2
		p.InitialEpochEmission, p.HalvingIntervalEpochs = 1_000_003, 150
		p.ReputationStepBps, p.ProviderRewardBps = 2500, 7000
	})
	p := h.params
	prov1, prov2, op := addrOf(key("prov1")), addrOf(key("prov2")), addrOf(key("operator"))
	for _, who := range []string{"prov1", "prov2"} {
		mustOK(t, h.block(
			h.tx(who, &types.MsgBondProvider{Amount: p.MinProviderStake * 10}),
			h.tx(who, &types.MsgRegisterProvider{Info: info()}),
		))
	}
	snap, _ := h.app.Snapshot(0)
	supply0, burned0 := bank.Supply(snap), bank.Burned(snap)

	var emitted, burnedByFaults, faults uint64
	settled := map[uint64]bool{}
	refuses := func(e uint64) bool { return e%7 == 3 }
	// Run until the last epoch's settlement height has passed.
	lastSettle := int64(epochsRun)*p.EpochLength + p.CommitWindow + 1 + p.BeaconWindow + 2*p.OpeningWindow
	var pending [][]byte
	for h.height < lastSettle {
		prevPool := bank.Balance(snap, bank.RewardsPool)
		res := h.blockFull(nil, pending...)
		pending = nil
		mustOK(t, res.TxResults)
		for i := range res.TxResults {
			if v, ok := eventAttr(res.TxResults[i].Events, "agora", "applied"); ok && v == "true" {
				sl, _ := eventAttr(res.TxResults[i].Events, "agora", "slashed")
				rf, _ := eventAttr(res.TxResults[i].Events, "agora", "refund")
				rw, _ := eventAttr(res.TxResults[i].Events, "agora", "reward")
				burnedByFaults += parseUint(sl) - parseUint(rf) - parseUint(rw)
				faults++
			}
		}
		snap, _ = h.app.Snapshot(0)
		if v, ok := eventAttr(res.Events, "epoch_settled", "epoch"); ok {
			n := parseUint(v)
			checkSettlement(t, snap, p, n, prevPool, !refuses(n) && !registry.Get(snap, prov2).Jailed, res.Events)
			emitted += (uint64(1_000_003) >> (n / 150))
			settled[n] = true
		}
		// The epoch that just ended: both providers commit it.
		if h.height%p.EpochLength == 0 && h.height/p.EpochLength <= epochsRun {
			e := uint64(h.height/p.EpochLength) - 1
			for i, who := range []string{"prov1", "prov2"} {
				pending = append(pending, h.tx(who, &types.MsgCommitEpoch{Epoch: e, Root: make([]byte, 32), RecordCount: 40, TotalBilled: uint64(3000 - 2000*i)}))
			}
		}
		// An epoch whose seed was just drawn: report prov2's refusal on a sampled receipt.
		for e := uint64(0); e < epochsRun; e++ {
			ep := epochs.Get(snap, e)
			if ep == nil || ep.SeedHeight != h.height || !refuses(e) {
				continue
			}
			cm := epochs.GetCommitment(snap, e, "inference", prov2)
			idx := sampling.Sample(ep.Seed, prov2, cm.RecordCount, p.AuditFloorBps, p.AuditCeilingBps, cm.ReputationBps)[0]
			pending = append(pending, h.tx("operator", &types.MsgReportFault{Epoch: e, Provider: prov2, Index: idx, Fault: types.FaultRefused}))
		}
	}
	if len(settled) != epochsRun {
		t.Fatalf("settled %d epochs, want %d", len(settled), epochsRun)
	}
	snap, _ = h.app.Snapshot(0)
	if want := uint64(epochsRun/7 + 1); faults != want { // epochs 3, 10, 17, ... 997
		t.Fatalf("faults applied: %d, want %d", faults, want)
	}
	if got := bank.Burned(snap) - burned0; got != burnedByFaults {
		t.Fatalf("burned %d, the fault reports say %d", got, burnedByFaults)
	}
	if got, want := bank.Supply(snap), supply0+emitted-burnedByFaults; got != want {
		t.Fatalf("supply %d, want %d + emission %d − burned %d = %d", got, supply0, emitted, burnedByFaults, want)
	}
	if r := registry.Get(snap, prov1).ReputationBps; r != 10000 {
		t.Fatalf("honest provider's reputation %d, want 10000", r)
	}
	if pv := registry.Get(snap, prov1); pv.Faults != 0 || pv.Jailed {
		t.Fatalf("honest provider faulted: %+v", pv)
	}
	if pv := registry.Get(snap, prov2); !pv.Jailed || pv.Faults != faults || pv.ReputationBps != 0 {
		t.Fatalf("faulty provider: jailed %v, faults %d, reputation %d (a jailed provider gains none)", pv.Jailed, pv.Faults, pv.ReputationBps)
	}
	if got := bank.Balance(snap, op); got <= 10_000_000_000 {
		t.Fatalf("the validator earned nothing: %d", got)
	}
}

// checkSettlement verifies epoch n's settlement to the base unit: the pool
// (dust carried from before + emission + fees) splits 70/30 between
// providers and the validator; providers by billed work among the clean
// commitments (prov1 bills 3000, prov2 1000); what is left stays in the pool.
func checkSettlement(t *testing.T, kv store.KV, p types.Params, n, prevPool uint64, clean2 bool, evs []abci.Event) {
	t.Helper()
	ep := epochs.Get(kv, n)
	if !ep.Settled {
		t.Fatalf("epoch %d not marked settled", n)
	}
	if want := uint64(1_000_003) >> (n / 150); ep.Emission != want {
		t.Fatalf("epoch %d emission %d, want %d", n, ep.Emission, want)
	}
	c1 := epochs.GetCommitment(kv, n, "inference", addrOf(key("prov1")))
	c2 := epochs.GetCommitment(kv, n, "inference", addrOf(key("prov2")))
	available := prevPool + ep.Emission + ep.Fees
	providerPart := available * 7000 / 10000
	work := uint64(3000)
	if clean2 {
		work += 1000
	}
	want1 := providerPart * 3000 / work
	want2 := uint64(0)
	if clean2 {
		want2 = providerPart * 1000 / work
	}
	if c1.Reward != want1 || c2.Reward != want2 || !c1.Settled || !c2.Settled {
		t.Fatalf("epoch %d: rewards %d, %d; want %d, %d (clean2 %v)", n, c1.Reward, c2.Reward, want1, want2, clean2)
	}
	validatorPart := available - providerPart
	if ep.ProviderRewards != want1+want2 || ep.ValidatorRewards != validatorPart {
		t.Fatalf("epoch %d: paid %d to providers and %d to validators, want %d and %d", n, ep.ProviderRewards, ep.ValidatorRewards, want1+want2, validatorPart)
	}
	if got := bank.Balance(kv, bank.RewardsPool); got != available-want1-want2-validatorPart {
		t.Fatalf("epoch %d: pool keeps %d, want %d", n, got, available-want1-want2-validatorPart)
	}
	if s, _ := eventAttr(evs, "epoch_settled", "validator_rewards"); parseUint(s) != ep.ValidatorRewards {
		t.Fatalf("event validator_rewards %s, record %d", s, ep.ValidatorRewards)
	}
}
