// Package audit applies validators' verdicts on audited records: a fault
// reported by enough validators slashes the provider's bond by the fraction
// the params give the service's fault kind, refunds whom the service says
// (for inference, the client of the faulty receipt), rewards the reporters
// and burns the rest. The service's declaration (chain/services) says which
// records are sampled, how a reported record is checked, and its faults.
package audit

import (
	"fmt"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/merkle"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/services"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

var (
	prefixVote    = []byte("verdict/")     // verdict/<epoch>/<provider>/<service key>/<index>/<fault>/<validator>
	prefixApplied = []byte("verdictdone/") // verdictdone/<epoch>/<provider>/<service key>/<index>
	// Slashed holds a slash while it is split into refund, rewards and burn
	// (empty between txs).
	Slashed = bank.ModuleAddress("slashed")
)

// ReporterShareBps of what remains after the refund goes to the reporters.
const ReporterShareBps = 1000

// JailAfter faults a provider is jailed (no new channels, no routing).
const JailAfter = 3

// Result says what a report did.
type Result struct {
	Votes, Needed int
	Applied       bool
	Slashed       uint64
	Refund        uint64
	Reward        uint64
}

// Report records a validator's fault verdict and applies the fault once
// enough validators agree.
func Report(kv store.KV, p types.Params, svcs services.Registry, chainID string, height int64, signer []byte, m *types.MsgReportFault) (Result, error) {
	var res Result
	v := stake.GetValidator(kv, signer)
	if v == nil || stake.Power(p, v) == 0 {
		return res, types.Errorf(types.CodeUnauthorized, "only bonded validators may report faults")
	}
	ep := epochs.Get(kv, m.Epoch)
	if ep == nil {
		return res, types.Errorf(types.CodeInvalid, "epoch %d has not ended yet", m.Epoch)
	}
	disputed := GetDispute(kv, m.Epoch, m.Provider, m.Index)
	// A disputed receipt may be reported as soon as it is disputed (after the
	// commit deadline); only sampled receipts wait for the seed, drawn
	// beacon_window blocks later.
	if len(ep.Seed) == 0 && disputed == nil {
		return res, types.Errorf(types.CodeInvalid, "epoch %d has no sampling seed yet", m.Epoch)
	}
	if height > ep.OpeningDeadline+p.OpeningWindow && (disputed == nil || height > disputed.Deadline) {
		return res, types.Errorf(types.CodeInvalid, "reports for epoch %d closed at height %d", m.Epoch, ep.OpeningDeadline+p.OpeningWindow)
	}
	svc, err := svcs.Get(m.Service)
	if err != nil {
		return res, err
	}
	fault, ok := svc.Fault(m.Fault)
	if !ok || fault.Reported != services.ByVerdict {
		return res, types.Errorf(types.CodeInvalid, "service %s has no fault %d reported by verdict", svc.Name, m.Fault)
	}
	cm := epochs.GetCommitment(kv, m.Epoch, svc.Name, m.Provider)
	if cm == nil {
		return res, types.Errorf(types.CodeNotFound, "no commitment by %s for epoch %d", types.Address(m.Provider), m.Epoch)
	}
	if svc.Name != services.Inference {
		disputed = nil // disputes are of inference receipts (MsgDisputeReceipt)
	}
	sampled := false
	if len(ep.Seed) > 0 {
		for _, i := range svc.Sample(p, ep.Seed, m.Provider, cm.RecordCount, cm.ReputationBps) {
			sampled = sampled || i == m.Index
		}
	}
	if !sampled && disputed == nil {
		return res, types.Errorf(types.CodeInvalid, "receipt %d of epoch %d was not sampled for audit nor disputed", m.Index, m.Epoch)
	}
	var refund services.Refund
	if fault.CarriesRecord {
		ref := services.RecordRef{ChainID: chainID, Provider: m.Provider, Epoch: m.Epoch, Index: m.Index}
		leaf, rf, err := svc.Record(ref, bank.GetAccount(kv, m.Provider).PubKey, m.Receipt, m.ReceiptSignature)
		if err != nil {
			return res, err
		}
		pr := &merkle.Proof{Index: m.Index, Count: cm.RecordCount, Left: m.ProofLeft}
		for _, h := range m.Proof {
			var x [32]byte
			copy(x[:], h)
			pr.Siblings = append(pr.Siblings, x)
		}
		var root [32]byte
		copy(root[:], cm.Root)
		if !pr.Verify(root, leaf) {
			return res, types.Errorf(types.CodeInvalid, "the receipt is not included under the committed root")
		}
		refund = rf
	}
	loc := recordKey(m.Epoch, m.Provider, svc.Name, m.Index)
	votes := codec.Key(prefixVote, loc, codec.U64(uint64(m.Fault)))
	mine := codec.Key(votes, signer)
	if kv.Has(mine) {
		return res, types.Errorf(types.CodeInvalid, "validator %s already reported this fault", types.Address(signer))
	}
	kv.Set(mine, []byte{1})
	var voters [][]byte
	kv.Iterate(votes, func(key, _ []byte) bool {
		voters = append(voters, append([]byte(nil), key[len(votes):]...))
		return true
	})
	bonded := 0
	stake.IterateValidators(kv, func(x *types.Validator) bool {
		if stake.Power(p, x) > 0 {
			bonded++
		}
		return true
	})
	res.Votes, res.Needed = len(voters), min(2, bonded)
	if res.Votes < res.Needed || kv.Has(codec.Key(prefixApplied, loc)) {
		return res, nil
	}
	kv.Set(codec.Key(prefixApplied, loc), codec.U64(uint64(m.Fault)))
	applied, err := Penalize(kv, p, m.Provider, svc.SlashBps(p, fault), refund.Client, refund.Amount, voters)
	applied.Votes, applied.Needed = res.Votes, res.Needed
	if err != nil || svc.Name != services.Inference {
		return applied, err
	}
	return applied, resolveDispute(kv, m.Epoch, m.Provider, m.Index)
}

// recordKey locates one committed record: epoch, provider, service, index
// (provider before service so Faulted finds any service's fault).
func recordKey(epoch uint64, provider []byte, service string, index uint64) []byte {
	return codec.Key(codec.U64(epoch), provider, services.Key(service), codec.U64(index))
}

// Penalize applies a confirmed fault (the kernel's path, also for modules'
// own faults): the provider loses bps of its bond
// (pending unbondings included), client is refunded up to amount from the
// slash, the reporters share ReporterShareBps of the rest, the rest is
// burned; the provider's fault count rises (jailed at JailAfter) and its
// reputation resets.
func Penalize(kv store.KV, p types.Params, provider []byte, bps uint64, client []byte, amount uint64, reporters [][]byte) (Result, error) {
	var res Result
	cut, err := stake.SlashProvider(kv, provider, bps, Slashed)
	if err != nil {
		return res, err
	}
	res.Applied, res.Slashed = true, cut
	if len(client) > 0 && amount > 0 {
		res.Refund = min(cut, amount)
		if err := bank.Send(kv, Slashed, client, res.Refund); err != nil {
			return res, err
		}
	}
	if len(reporters) > 0 {
		share := types.MulDivU64(cut-res.Refund, ReporterShareBps, 10000) / uint64(len(reporters))
		for _, who := range reporters {
			if err := bank.Send(kv, Slashed, who, share); err != nil {
				return res, err
			}
			res.Reward += share
		}
	}
	if left := bank.Balance(kv, Slashed); left > 0 {
		if err := bank.Burn(kv, Slashed, left); err != nil {
			return res, err
		}
	}
	pv := registry.Get(kv, provider)
	if pv != nil {
		pv.Faults++
		pv.ReputationBps = registry.NextReputation(pv.ReputationBps, p.ReputationStepBps, true)
		if pv.Faults >= JailAfter {
			pv.Jailed = true
		}
		registry.Set(kv, pv)
	}
	return res, nil
}

// Faulted reports whether a fault was applied to any of provider's receipts
// of epoch n.
func Faulted(kv store.KV, n uint64, provider []byte) bool {
	found := false
	kv.Iterate(codec.Key(prefixApplied, codec.U64(n), provider), func(_, _ []byte) bool {
		found = true
		return false
	})
	return found
}

// Describe renders a result for events and logs.
func (r Result) Describe() string {
	return fmt.Sprintf("votes %d/%d applied=%v slashed=%d refund=%d reward=%d", r.Votes, r.Needed, r.Applied, r.Slashed, r.Refund, r.Reward)
}
