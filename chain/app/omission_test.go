package app

import (
	"testing"

	"github.com/agoranet/agora/chain/audit"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/merkle"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/receipt"
)

// TestOmission: a receipt beyond the committed count is a fault at once; a
// receipt inside it opens a challenge that an honest provider answers with
// its inclusion proof (earning the reporter's bond), while a provider that
// committed a different receipt at that index cannot, and is faulted when
// the challenge expires. Every amount is checked to the base unit.
func TestOmission(t *testing.T) {
	h := newHarnessWith(t, map[string]uint64{"operator": 10_000_000_000, "prov": 10_000_000_000, "prov2": 10_000_000_000, "client": 10_000_000_000}, func(p *types.Params) {
		p.EpochLength, p.CommitWindow, p.OpeningWindow = 10, 3, 5
	})
	p := h.params
	prov, prov2, client := addrOf(key("prov")), addrOf(key("prov2")), addrOf(key("client"))
	for _, who := range []string{"prov", "prov2"} {
		mustOK(t, h.block(h.tx(who, &types.MsgBondProvider{Amount: p.MinProviderStake * 2}), h.tx(who, &types.MsgRegisterProvider{Info: info()})))
	}
	sign := func(who string, index, amount uint64) *receipt.Signed {
		sr, err := receipt.Sign(key(who), &types.Receipt{ChainId: testChain, Provider: addrOf(key(who)), ChannelId: 1, Client: client, Epoch: 0, Index: index, Amount: amount})
		if err != nil {
			t.Fatal(err)
		}
		return sr
	}
	// prov signs 6 receipts but commits only the first 5.
	var provRs []*receipt.Signed
	var provIDs [][32]byte
	for i := uint64(0); i < 6; i++ {
		provRs = append(provRs, sign("prov", i, 100+i))
		if i < 5 {
			provIDs = append(provIDs, provRs[i].ID())
		}
	}
	// prov2 signs 3 receipts but commits another receipt in place of the third.
	var prov2Rs []*receipt.Signed
	var prov2IDs [][32]byte
	for i := uint64(0); i < 3; i++ {
		prov2Rs = append(prov2Rs, sign("prov2", i, 200+i))
		prov2IDs = append(prov2IDs, prov2Rs[i].ID())
	}
	prov2IDs[2] = sign("prov2", 2, 1).ID() // the committed one bills 1 uagr
	report := func(sr *receipt.Signed) *types.MsgReportOmission {
		return &types.MsgReportOmission{Receipt: sr.Bytes, ReceiptSignature: sr.Signature}
	}
	code := func(res []byte) types.Code { return types.Code(h.block(res)[0].Code) }

	for h.height < p.EpochLength {
		h.block()
	}
	// Too early: the commit deadline has not passed.
	if c := code(h.tx("client", report(provRs[5]))); c != types.CodeInvalid {
		t.Fatalf("report before the commit deadline: code %s", c)
	}
	rootP, rootP2 := merkle.Root(provIDs), merkle.Root(prov2IDs)
	mustOK(t, h.block(
		h.tx("prov", &types.MsgCommitEpoch{Epoch: 0, Root: rootP[:], RecordCount: 5, TotalBilled: 510}),
		h.tx("prov2", &types.MsgCommitEpoch{Epoch: 0, Root: rootP2[:], RecordCount: 3, TotalBilled: 402}),
	))
	snap, _ := h.app.Snapshot(0)
	for h.height <= epochs.Get(snap, 0).CommitDeadline {
		h.block()
	}

	// A forged signature is refused and costs only the fee.
	forged := report(provRs[5])
	forged.ReceiptSignature = append([]byte(nil), forged.ReceiptSignature...)
	forged.ReceiptSignature[3] ^= 1
	if c := code(h.tx("client", forged)); c != types.CodeBadSignature {
		t.Fatalf("forged receipt: code %s", c)
	}

	// 1. Index 5 of a 5-receipt commitment: proven at once.
	snap, _ = h.app.Snapshot(0)
	bond0, client0, supply0 := stake.ProviderBond(snap, prov), bank.Balance(snap, client), bank.Supply(snap)
	tx := h.tx("client", report(provRs[5]))
	fee := h.params.MinFee("report_omission", 400)
	mustOK(t, h.block(tx))
	snap, _ = h.app.Snapshot(0)
	cut := types.MulDivU64(bond0, p.SlashBps["inference/omitted"], 10000)
	refund := uint64(105)
	reward := types.MulDivU64(cut-refund, audit.ReporterShareBps, 10000)
	if got := stake.ProviderBond(snap, prov); got != bond0-cut {
		t.Fatalf("provider bond %d, want %d", got, bond0-cut)
	}
	// The client is also the reporter: refund + reward, bond returned, fee paid.
	if got := bank.Balance(snap, client); got != client0-fee+refund+reward {
		t.Fatalf("client balance %d, want %d", got, client0-fee+refund+reward)
	}
	if got := bank.Supply(snap); got != supply0-(cut-refund-reward) {
		t.Fatalf("supply %d, want %d burned", got, cut-refund-reward)
	}
	if pv := registry.Get(snap, prov); pv.Faults != 1 || !audit.Faulted(snap, 0, prov) {
		t.Fatalf("provider after the omission: %+v", pv)
	}
	if c := code(h.tx("client", report(provRs[4]))); c != types.CodeInvalid {
		t.Fatalf("a second omission report for the same provider and epoch: code %s", c)
	}

	// 2. prov2's receipt 1 is committed: a challenge, answered with its proof.
	snap, _ = h.app.Snapshot(0)
	client0, prov20 := bank.Balance(snap, client), bank.Balance(snap, prov2)
	mustOK(t, h.block(h.tx("client", report(prov2Rs[1]))))
	snap, _ = h.app.Snapshot(0)
	if chs := audit.Challenges(snap, prov2); len(chs) != 1 || chs[0].Index != 1 || chs[0].Bond != p.OmissionBond {
		t.Fatalf("challenges: %+v", chs)
	}
	if got := bank.Balance(snap, client); got != client0-fee-p.OmissionBond {
		t.Fatalf("reporter balance %d, want bond and fee taken", got)
	}
	answer := func(ids [][32]byte, i int) *types.MsgAnswerOmission {
		pr, _ := merkle.Prove(ids, i)
		m := &types.MsgAnswerOmission{Epoch: 0, Index: uint64(i), ProofLeft: pr.Left}
		for _, s := range pr.Siblings {
			m.Proof = append(m.Proof, append([]byte(nil), s[:]...))
		}
		return m
	}
	if c := code(h.tx("prov2", answer(prov2IDs, 0))); c != types.CodeNotFound {
		t.Fatalf("answering an unchallenged receipt: code %s", c)
	}
	ansFee := h.params.MinFee("answer_omission", 400)
	mustOK(t, h.block(h.tx("prov2", answer(prov2IDs, 1))))
	snap, _ = h.app.Snapshot(0)
	if len(audit.Challenges(snap, prov2)) != 0 {
		t.Fatal("the answered challenge is still open")
	}
	if got, want := bank.Balance(snap, prov2), prov20-2*ansFee+p.OmissionBond; got != want {
		t.Fatalf("provider balance %d, want %d (the reporter's bond, minus two answer fees)", got, want)
	}
	if pv := registry.Get(snap, prov2); pv.Faults != 0 {
		t.Fatal("an honest answer was faulted")
	}

	// 3. prov2 committed another receipt at index 2: it cannot answer; the
	// challenge expires into a fault.
	mustOK(t, h.block(h.tx("client", report(prov2Rs[2]))))
	if c := code(h.tx("prov2", answer(prov2IDs, 2))); c != types.CodeInvalid {
		t.Fatalf("answering with the proof of another receipt: code %s", c)
	}
	snap, _ = h.app.Snapshot(0)
	chs := audit.Challenges(snap, prov2)
	if len(chs) != 1 {
		t.Fatalf("challenges: %d", len(chs))
	}
	bond0, client0 = stake.ProviderBond(snap, prov2), bank.Balance(snap, client)
	for h.height <= chs[0].Deadline {
		h.block()
	}
	snap, _ = h.app.Snapshot(0)
	cut = types.MulDivU64(bond0, p.SlashBps["inference/omitted"], 10000)
	refund = 202
	reward = types.MulDivU64(cut-refund, audit.ReporterShareBps, 10000)
	if got := stake.ProviderBond(snap, prov2); got != bond0-cut {
		t.Fatalf("prov2 bond %d, want %d", got, bond0-cut)
	}
	if got := bank.Balance(snap, client); got != client0+refund+reward+p.OmissionBond {
		t.Fatalf("client balance %d, want %d", got, client0+refund+reward+p.OmissionBond)
	}
	if len(audit.Challenges(snap, nil)) != 0 || registry.Get(snap, prov2).Faults != 1 {
		t.Fatal("the expired challenge did not become a fault")
	}
	if bank.Balance(snap, audit.Disputes) != 0 {
		t.Fatalf("disputes pool holds %d after every challenge closed", bank.Balance(snap, audit.Disputes))
	}
}
