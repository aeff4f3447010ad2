package app

import (
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/audit"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/merkle"
	"github.com/agoranet/agora/chain/sampling"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/receipt"
)

// TestDisputes: a client disputes receipts the seed did not sample; a
// validator's fault report on one is accepted because of the dispute and
// refunds the client with its bond; a dispute nobody confirms gives the
// bond to the provider at its deadline; only the receipt's client may
// dispute it. Balances to the base unit.
func TestDisputes(t *testing.T) {
	h := newHarnessWith(t, map[string]uint64{"operator": 10_000_000_000, "prov": 10_000_000_000, "client": 10_000_000_000}, func(p *types.Params) {
		p.EpochLength, p.CommitWindow, p.OpeningWindow = 10, 3, 5
	})
	p := h.params
	prov, client := addrOf(key("prov")), addrOf(key("client"))
	mustOK(t, h.block(h.tx("prov", &types.MsgBondProvider{Amount: p.MinProviderStake * 2}), h.tx("prov", &types.MsgRegisterProvider{Info: info()})))
	// Signed as a provider under load signs them: in batches (3, 1, 16),
	// so both signature forms are disputed and reported.
	var signed []*receipt.Signed
	var ids [][32]byte
	for _, span := range [][2]int{{0, 3}, {3, 4}, {4, 20}} {
		var rs []*types.Receipt
		for i := span[0]; i < span[1]; i++ {
			rs = append(rs, &types.Receipt{ChainId: testChain, Provider: prov, ChannelId: 1, Client: client, Epoch: 0, Index: uint64(i), Amount: 300 + uint64(i)})
		}
		srs, err := receipt.SignBatch(key("prov"), rs)
		if err != nil {
			t.Fatal(err)
		}
		for _, sr := range srs {
			signed = append(signed, sr)
			ids = append(ids, sr.ID())
		}
	}
	root := merkle.Root(ids)
	for h.height < p.EpochLength {
		h.block()
	}
	mustOK(t, h.block(h.tx("prov", &types.MsgCommitEpoch{Epoch: 0, Root: root[:], RecordCount: 20, TotalBilled: 6190})))
	snap, _ := h.app.Snapshot(0)
	ep := epochs.Get(snap, 0)
	for h.height < ep.SeedHeight {
		h.block()
	}
	snap, _ = h.app.Snapshot(0)
	ep = epochs.Get(snap, 0)
	sampled := map[uint64]bool{}
	for _, i := range sampling.Sample(ep.Seed, prov, 20, p.AuditFloorBps, p.AuditCeilingBps, 0) {
		sampled[i] = true
	}
	var unsampled []uint64
	for i := uint64(0); i < 20; i++ {
		if !sampled[i] {
			unsampled = append(unsampled, i)
		}
	}
	u, w := unsampled[0], unsampled[1]
	dispute := func(i uint64) *types.MsgDisputeReceipt {
		return &types.MsgDisputeReceipt{Receipt: signed[i].Bytes, ReceiptSignature: signed[i].Signature}
	}
	fabricated := func(i uint64) *types.MsgReportFault {
		pr, _ := merkle.Prove(ids, int(i))
		m := &types.MsgReportFault{Epoch: 0, Provider: prov, Index: i, Fault: types.FaultFabricated, Receipt: signed[i].Bytes, ReceiptSignature: signed[i].Signature, ProofLeft: pr.Left}
		for _, s := range pr.Siblings {
			m.Proof = append(m.Proof, append([]byte(nil), s[:]...))
		}
		return m
	}
	code := func(tx []byte) types.Code { return types.Code(h.block(tx)[0].Code) }
	// A fault report with its proof is larger than the harness's default size.
	report := func(m *types.MsgReportFault) []byte {
		return h.txAny("operator", &types.TxBody{Fee: p.MinFee("report_fault", 2000), Msg: &types.TxBody_ReportFault{ReportFault: m}})
	}

	if c := code(report(fabricated(u))); c != types.CodeInvalid {
		t.Fatalf("report on an unsampled, undisputed receipt: code %s", c)
	}
	swapped := &types.MsgDisputeReceipt{Receipt: signed[u].Bytes, ReceiptSignature: signed[w].Signature}
	if c := code(h.tx("client", swapped)); c != types.CodeBadSignature {
		t.Fatalf("dispute with another receipt's signature: code %s", c)
	}
	if c := code(h.tx("operator", dispute(u))); c != types.CodeUnauthorized {
		t.Fatalf("dispute by someone else than the client: code %s", c)
	}
	fee := p.MinFee("dispute_receipt", 400)
	snap, _ = h.app.Snapshot(0)
	client0 := bank.Balance(snap, client)
	mustOK(t, h.block(h.tx("client", dispute(u)), h.tx("client", dispute(w))))
	snap, _ = h.app.Snapshot(0)
	if got := bank.Balance(snap, client); got != client0-2*fee-2*p.DisputeBond {
		t.Fatalf("client after two disputes: %d, want %d", got, client0-2*fee-2*p.DisputeBond)
	}
	if c := code(h.tx("client", dispute(u))); c != types.CodeInvalid {
		t.Fatalf("disputing twice: code %s", c)
	}

	// The validator re-executes u and finds it fabricated: accepted thanks to the dispute.
	snap, _ = h.app.Snapshot(0)
	bond0, client0 := stake.ProviderBond(snap, prov), bank.Balance(snap, client)
	mustOK(t, h.block(report(fabricated(u))))
	snap, _ = h.app.Snapshot(0)
	cut := types.MulDivU64(bond0, p.SlashBps["inference/fabricated"], 10000)
	if got := stake.ProviderBond(snap, prov); got != bond0-cut {
		t.Fatalf("provider bond %d, want %d", got, bond0-cut)
	}
	if got, want := bank.Balance(snap, client), client0+(300+u)+p.DisputeBond; got != want {
		t.Fatalf("client after the confirmed dispute: %d, want %d (refund %d + bond)", got, want, 300+u)
	}
	if audit.GetDispute(snap, 0, prov, u) != nil {
		t.Fatal("the confirmed dispute is still open")
	}

	// w: nobody confirms it; at its deadline the provider takes the bond.
	d := audit.GetDispute(snap, 0, prov, w)
	if d == nil {
		t.Fatal("dispute on w missing")
	}
	prov0 := bank.Balance(snap, prov)
	for h.height <= d.Deadline {
		h.block()
	}
	snap, _ = h.app.Snapshot(0)
	if got := bank.Balance(snap, prov); got != prov0+p.DisputeBond {
		t.Fatalf("provider balance %d, want %d + the bond", got, prov0)
	}
	if len(audit.OpenDisputes(snap)) != 0 || bank.Balance(snap, audit.Disputes) != 0 {
		t.Fatal("disputes left open or bonds left escrowed")
	}
}

// TestDisputeReportedBeforeSeed: a dispute opens right after the commit
// deadline, but the seed is drawn beacon_window blocks later; a validator's
// report on the disputed receipt is accepted in between, while a report on
// an undisputed receipt still waits for the seed.
func TestDisputeReportedBeforeSeed(t *testing.T) {
	h := newHarnessWith(t, map[string]uint64{"operator": 10_000_000_000, "prov": 10_000_000_000, "client": 10_000_000_000}, func(p *types.Params) {
		p.EpochLength, p.CommitWindow, p.BeaconWindow, p.OpeningWindow = 10, 3, 4, 5
	})
	p := h.params
	prov := addrOf(key("prov"))
	mustOK(t, h.block(h.tx("prov", &types.MsgBondProvider{Amount: p.MinProviderStake * 2}), h.tx("prov", &types.MsgRegisterProvider{Info: info()})))
	var rs []*types.Receipt
	for i := 0; i < 4; i++ {
		rs = append(rs, &types.Receipt{ChainId: testChain, Provider: prov, ChannelId: 1, Client: addrOf(key("client")), Epoch: 0, Index: uint64(i), Amount: 100})
	}
	signed, err := receipt.SignBatch(key("prov"), rs)
	if err != nil {
		t.Fatal(err)
	}
	var ids [][32]byte
	for _, sr := range signed {
		ids = append(ids, sr.ID())
	}
	root := merkle.Root(ids)
	for h.height < p.EpochLength {
		h.block()
	}
	mustOK(t, h.block(h.tx("prov", &types.MsgCommitEpoch{Epoch: 0, Root: root[:], RecordCount: 4, TotalBilled: 400})))
	for h.height <= p.EpochLength+p.CommitWindow {
		h.block()
	}
	fabricated := func(i int) []byte {
		pr, _ := merkle.Prove(ids, i)
		m := &types.MsgReportFault{Epoch: 0, Provider: prov, Index: uint64(i), Fault: types.FaultFabricated, Receipt: signed[i].Bytes, ReceiptSignature: signed[i].Signature, ProofLeft: pr.Left}
		for _, s := range pr.Siblings {
			m.Proof = append(m.Proof, append([]byte(nil), s[:]...))
		}
		return h.txAny("operator", &types.TxBody{Fee: p.MinFee("report_fault", 2000), Msg: &types.TxBody_ReportFault{ReportFault: m}})
	}
	mustOK(t, h.block(h.tx("client", &types.MsgDisputeReceipt{Receipt: signed[1].Bytes, ReceiptSignature: signed[1].Signature})))
	snap, _ := h.app.Snapshot(0)
	if ep := epochs.Get(snap, 0); len(ep.Seed) != 0 || h.height >= ep.SeedHeight {
		t.Fatalf("at %d the seed (height %d) is already drawn", h.height, ep.SeedHeight)
	}
	if r := h.block(fabricated(2))[0]; types.Code(r.Code) != types.CodeInvalid || !strings.Contains(r.Log, "no sampling seed yet") {
		t.Fatalf("report on an undisputed receipt before the seed: code %d %q", r.Code, r.Log)
	}
	bond0 := stake.ProviderBond(snap, prov)
	mustOK(t, h.block(fabricated(1)))
	snap, _ = h.app.Snapshot(0)
	if got, want := stake.ProviderBond(snap, prov), bond0-types.MulDivU64(bond0, p.SlashBps["inference/fabricated"], 10000); got != want || audit.GetDispute(snap, 0, prov, 1) != nil {
		t.Fatalf("before the seed: provider bond %d, want %d; dispute still open: %v", got, want, audit.GetDispute(snap, 0, prov, 1) != nil)
	}
}
