package app

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/merkle"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/services"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/types"
)

// echoService is a throwaway second kind of work: a record is
// client(20) || amount(8), signed by the provider; every record is audited;
// its one fault refunds the record's client.
func echoService() *services.Service {
	return &services.Service{
		Name:   "echo",
		Faults: []services.Fault{{Code: types.FaultFabricated, Name: "wrong", CarriesRecord: true, DefaultSlashBps: 2500}},
		Record: func(ref services.RecordRef, pub, rec, sig []byte) ([32]byte, services.Refund, error) {
			if len(rec) != 28 || !ed25519.Verify(pub, rec, sig) {
				return [32]byte{}, services.Refund{}, types.Errorf(types.CodeBadSignature, "echo record not signed")
			}
			return sha256.Sum256(rec), services.Refund{Client: rec[:20], Amount: binary.BigEndian.Uint64(rec[20:])}, nil
		},
		Sample: func(_ types.Params, _, _ []byte, count, _ uint64) []uint64 {
			out := make([]uint64, count)
			for i := range out {
				out[i] = uint64(i)
			}
			return out
		},
	}
}

// TestSecondService: with a second service declared, a provider commits
// both services for one epoch; a verdict on the second service's record
// slashes by that service's fault fraction from the params and refunds whom
// its record names, leaving the inference commitment alone; a commitment
// to an undeclared service is refused and changes nothing.
func TestSecondService(t *testing.T) {
	// The second service comes with a module of its own, in a test app.
	known := append(services.Default(), echoService())
	mods := append(DefaultModules(), Module{Name: "echo", Services: []*services.Service{echoService()}})
	h := newHarnessOf(t, map[string]uint64{"operator": 10_000_000_000, "prov": 10_000_000_000, "client": 10_000_000_000}, func(p *types.Params) {
		p.EpochLength, p.CommitWindow, p.OpeningWindow = 10, 3, 5
		p.SlashBps = known.DefaultSlashBps()
	}, mods)
	p := h.params
	prov, client := addrOf(key("prov")), addrOf(key("client"))
	mustOK(t, h.blockFull(nil,
		h.txAny("prov", &types.TxBody{Msg: &types.TxBody_BondProvider{BondProvider: &types.MsgBondProvider{Amount: p.MinProviderStake * 2}}}),
		h.txAny("prov", &types.TxBody{Msg: &types.TxBody_RegisterProvider{RegisterProvider: &types.MsgRegisterProvider{Info: info()}}}),
	).TxResults)
	var recs [][]byte
	var leaves [][32]byte
	for i := 0; i < 3; i++ {
		rec := binary.BigEndian.AppendUint64(append([]byte(nil), client...), 7000+uint64(i))
		recs = append(recs, rec)
		leaves = append(leaves, sha256.Sum256(rec))
	}
	root := merkle.Root(leaves)
	for h.height < p.EpochLength {
		h.block()
	}
	commit := func(service string, count uint64) *types.TxBody {
		return &types.TxBody{Msg: &types.TxBody_CommitEpoch{CommitEpoch: &types.MsgCommitEpoch{Service: service, Epoch: 0, Root: root[:], RecordCount: count, TotalBilled: 100}}}
	}
	before, _ := h.app.Snapshot(0)
	res := h.blockFull(nil, h.txAny("prov", commit("storage", 3)))
	if r := res.TxResults[0]; types.Code(r.Code) != types.CodeInvalid || !strings.Contains(r.Log, `unknown service "storage"`) {
		t.Fatalf("undeclared service: code %d %q", r.Code, r.Log)
	}
	if epochs.GetCommitment(before, 0, "storage", prov) != nil {
		t.Fatal("stored a commitment to an undeclared service")
	}
	mustOK(t, h.blockFull(nil, h.txAny("prov", commit("", 5)), h.txAny("prov", commit("echo", 3))).TxResults)
	res = h.blockFull(nil, h.txAny("prov", commit("inference", 5)))
	if r := res.TxResults[0]; r.Code == 0 || !strings.Contains(r.Log, "already committed for epoch 0 (inference)") {
		t.Fatalf("second inference commitment (empty = inference): code %d %q", r.Code, r.Log)
	}
	snap, _ := h.app.Snapshot(0)
	if cms := epochs.Commitments(snap, 0); len(cms) != 2 || cms[0].Service != "echo" || cms[1].Service != "inference" || cms[1].RecordCount != 5 {
		t.Fatalf("commitments %v", cms)
	}
	if e := epochs.Get(snap, 0); e.Commitments != 2 {
		t.Fatalf("epoch counts %d commitments", e.Commitments)
	}
	for path, want := range map[string]string{
		api.CommitmentPath(0, prov):                     "inference",
		api.ServiceCommitmentPath(0, "inference", prov): "inference",
		api.ServiceCommitmentPath(0, "echo", prov):      "echo",
	} {
		v, _, err := h.app.QueryJSON(path, 0)
		if err != nil || v.(api.CommitmentView).Service != want {
			t.Fatalf("%s: %v %v", path, v, err)
		}
	}
	if _, _, err := h.app.QueryJSON(api.ServiceCommitmentPath(0, "storage", prov), 0); err == nil || !strings.Contains(err.Error(), `unknown service "storage"`) {
		t.Fatalf("query of an undeclared service: %v", err)
	}

	for h.height < epochs.Get(snap, 0).SeedHeight {
		h.block()
	}
	report := func(service string, fault uint32, i int) *types.TxBody {
		pr, _ := merkle.Prove(leaves, i)
		m := &types.MsgReportFault{Service: service, Epoch: 0, Provider: prov, Index: uint64(i), Fault: fault,
			Receipt: recs[i], ReceiptSignature: ed25519.Sign(key("prov"), recs[i]), ProofLeft: pr.Left}
		for _, s := range pr.Siblings {
			m.Proof = append(m.Proof, append([]byte(nil), s[:]...))
		}
		return &types.TxBody{Msg: &types.TxBody_ReportFault{ReportFault: m}}
	}
	res = h.blockFull(nil, h.txAny("operator", report("echo", types.FaultRefused, 1)))
	if r := res.TxResults[0]; !strings.Contains(r.Log, "service echo has no fault 2") {
		t.Fatalf("fault kind echo lacks: code %d %q", r.Code, r.Log)
	}
	snap, _ = h.app.Snapshot(0)
	bond, bal := stake.ProviderBond(snap, prov), bank.Balance(snap, client)
	mustOK(t, h.blockFull(nil, h.txAny("operator", report("echo", types.FaultFabricated, 1))).TxResults)
	snap, _ = h.app.Snapshot(0)
	cut := types.MulDivU64(bond, 2500, 10000)
	if got := stake.ProviderBond(snap, prov); got != bond-cut {
		t.Fatalf("bond %d, want %d (25 %% of %d)", got, bond-cut, bond)
	}
	if got := bank.Balance(snap, client); got != bal+7001 {
		t.Fatalf("client %d, want refund 7001 on %d", got, bal)
	}
	if pv := registry.Get(snap, prov); pv.Faults != 1 {
		t.Fatalf("faults %d", pv.Faults)
	}
	// The inference commitment's records are a separate place: the same
	// index there has no verdict (its receipt would be checked as a receipt).
	res = h.blockFull(nil, h.txAny("operator", report("", types.FaultFabricated, 1)))
	if r := res.TxResults[0]; r.Code == 0 {
		t.Fatal("an echo record passed as an inference receipt")
	}
}
