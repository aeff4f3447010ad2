package app

import (
	"testing"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/merkle"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/sampling"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/receipt"
)

// TestReportFault: a validator's verdict on a sampled, provably committed
// receipt slashes the provider, refunds the client exactly, rewards the
// reporter and burns the rest; unsampled, unsigned or non-validator reports
// are refused.
func TestReportFault(t *testing.T) {
	h := newHarnessWith(t, map[string]uint64{"operator": 10_000_000_000, "prov": 10_000_000_000, "client": 10_000_000_000}, func(p *types.Params) {
		p.EpochLength, p.CommitWindow, p.OpeningWindow = 10, 3, 5
	})
	p := h.params
	prov, client := addrOf(key("prov")), addrOf(key("client"))
	mustOK(t, h.blockFull(nil,
		h.txAny("prov", &types.TxBody{Msg: &types.TxBody_BondProvider{BondProvider: &types.MsgBondProvider{Amount: p.MinProviderStake * 2}}}),
		h.txAny("prov", &types.TxBody{Msg: &types.TxBody_RegisterProvider{RegisterProvider: &types.MsgRegisterProvider{Info: info()}}}),
	).TxResults)
	// five receipts of epoch 0, signed by the provider
	var signed []*receipt.Signed
	var ids [][32]byte
	for i := 0; i < 5; i++ {
		sr, err := receipt.Sign(key("prov"), &types.Receipt{ChainId: testChain, Provider: prov, ChannelId: 1, Client: client, Epoch: 0, Index: uint64(i), Amount: 1000 + uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		signed = append(signed, sr)
		ids = append(ids, sr.ID())
	}
	root := merkle.Root(ids)
	for h.height < p.EpochLength {
		h.block()
	}
	mustOK(t, h.blockFull(nil, h.txAny("prov", &types.TxBody{Msg: &types.TxBody_CommitEpoch{CommitEpoch: &types.MsgCommitEpoch{Epoch: 0, Root: root[:], RecordCount: 5, TotalBilled: 5010}}})).TxResults)
	snap, _ := h.app.Snapshot(0)
	ep := epochs.Get(snap, 0)
	for h.height < ep.SeedHeight {
		h.block()
	}
	snap, _ = h.app.Snapshot(0)
	ep = epochs.Get(snap, 0)
	sampled := sampling.Indices(ep.Seed, prov, 5, sampling.Count(5, sampling.Rate(p.AuditFloorBps, p.AuditCeilingBps, 0)))
	if len(sampled) != 1 {
		t.Fatalf("sampled %v", sampled)
	}
	idx := sampled[0]
	report := func(i uint64, sr *receipt.Signed) *types.MsgReportFault {
		pr, _ := merkle.Prove(ids, int(i))
		m := &types.MsgReportFault{Epoch: 0, Provider: prov, Index: i, Fault: types.FaultFabricated, Receipt: sr.Bytes, ReceiptSignature: sr.Signature, ProofLeft: pr.Left}
		for _, s := range pr.Siblings {
			m.Proof = append(m.Proof, append([]byte(nil), s[:]...))
		}
		return m
	}
	send := func(m *types.MsgReportFault) *types.TxBody {
		return &types.TxBody{Msg: &types.TxBody_ReportFault{ReportFault: m}}
	}
	code := func(label string, m *types.MsgReportFault) types.Code {
		res := h.blockFull(nil, h.txAny(label, send(m)))
		return types.Code(res.TxResults[0].Code)
	}
	other := (idx + 1) % 5
	if c := code("operator", report(other, signed[other])); c != types.CodeInvalid {
		t.Fatalf("unsampled receipt: code %s", c)
	}
	if c := code("client", report(idx, signed[idx])); c != types.CodeUnauthorized {
		t.Fatalf("report by a non-validator: code %s", c)
	}
	forged := report(idx, signed[idx])
	forged.ReceiptSignature = append([]byte(nil), forged.ReceiptSignature...)
	forged.ReceiptSignature[0] ^= 1
	if c := code("operator", forged); c != types.CodeBadSignature {
		t.Fatalf("forged receipt: code %s", c)
	}
	wrongProof := report(idx, signed[idx])
	wrongProof.Proof[0][0] ^= 1
	if c := code("operator", wrongProof); c != types.CodeInvalid {
		t.Fatalf("bad proof: code %s", c)
	}

	snap, _ = h.app.Snapshot(0)
	bondBefore := stake.ProviderBond(snap, prov)
	clientBefore := bank.Balance(snap, client)
	opBefore := bank.Balance(snap, addrOf(key("operator")))
	supplyBefore := bank.Supply(snap)
	res := h.blockFull(nil, h.txAny("operator", send(report(idx, signed[idx]))))
	mustOK(t, res.TxResults)
	snap, _ = h.app.Snapshot(0)
	cut := types.MulDivU64(bondBefore, p.SlashBps["inference/fabricated"], 10000)
	refund := 1000 + idx
	reward := types.MulDivU64(cut-refund, 1000, 10000)
	if got := stake.ProviderBond(snap, prov); got != bondBefore-cut {
		t.Fatalf("provider bond %d, want %d", got, bondBefore-cut)
	}
	if got := bank.Balance(snap, client); got != clientBefore+refund {
		t.Fatalf("client balance %d, want refund %d on %d", got, refund, clientBefore)
	}
	var feePaid uint64
	for _, ev := range res.TxResults[0].Events {
		for _, a := range ev.Attributes {
			if a.Key == "fee" {
				feePaid = parseUint(a.Value)
			}
		}
	}
	if got := bank.Balance(snap, addrOf(key("operator"))); got != opBefore-feePaid+reward {
		t.Fatalf("reporter balance %d, want %d", got, opBefore-feePaid+reward)
	}
	if got := bank.Supply(snap); got != supplyBefore-(cut-refund-reward) {
		t.Fatalf("supply %d, want %d burned", got, cut-refund-reward)
	}
	if pv := registry.Get(snap, prov); pv.Faults != 1 {
		t.Fatalf("provider faults %d", pv.Faults)
	}
	if c := code("operator", report(idx, signed[idx])); c != types.CodeInvalid {
		t.Fatalf("duplicate report: code %s", c)
	}
}

func parseUint(s string) uint64 {
	var v uint64
	for _, c := range s {
		v = v*10 + uint64(c-'0')
	}
	return v
}

// TestHugeDeclaredCountStaysCheap: a provider that commits an absurd receipt
// count cannot make fault reports (which sample inside a tx) expensive.
func TestHugeDeclaredCountStaysCheap(t *testing.T) {
	seed := make([]byte, 32)
	idx := sampling.Indices(seed, make([]byte, 20), ^uint64(0), sampling.Count(^uint64(0), 2000))
	if len(idx) != sampling.Max {
		t.Fatalf("%d samples", len(idx))
	}
}
