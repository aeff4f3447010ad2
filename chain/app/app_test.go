package app

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

const testChain = "agora-unit"

func key(label string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte(label))
	return ed25519.NewKeyFromSeed(s[:])
}

func addrOf(k ed25519.PrivateKey) types.Address {
	return types.AddressFromPubKey(k.Public().(ed25519.PublicKey))
}

// harness drives an App directly through ABCI, as CometBFT would.
type harness struct {
	t      *testing.T
	app    *App
	height int64
	params types.Params
	nonces map[string]uint64
}

func newHarness(t *testing.T, accounts map[string]uint64) *harness {
	t.Helper()
	return newHarnessWith(t, accounts, nil)
}

func newHarnessWith(t *testing.T, accounts map[string]uint64, adjust func(*types.Params)) *harness {
	t.Helper()
	return newHarnessOf(t, accounts, adjust, DefaultModules())
}

// newHarnessWithModules is newHarness over an app with the given modules.
func newHarnessWithModules(t *testing.T, accounts map[string]uint64, mods []Module) *harness {
	t.Helper()
	return newHarnessOf(t, accounts, nil, mods)
}

func newHarnessOf(t *testing.T, accounts map[string]uint64, adjust func(*types.Params), mods []Module) *harness {
	t.Helper()
	tree, err := store.OpenMemTree()
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewWithModules(tree, nil, nil, mods)
	if err != nil {
		t.Fatal(err)
	}
	params := types.DefaultParams()
	params.EpochLength = 1000
	if adjust != nil {
		adjust(&params)
	}
	g := types.Genesis{Params: params}
	for label, bal := range accounts {
		g.Accounts = append(g.Accounts, types.GenesisAccount{Address: addrOf(key(label)), Balance: bal})
	}
	// deterministic order for the genesis doc
	sortAccounts(g.Accounts)
	g.Validators = []types.GenesisValidator{{Operator: addrOf(key("operator")), ConsPubKey: types.HexBytes(key("cons").Public().(ed25519.PublicKey)), Bonded: params.MinValidatorStake}}
	bz, _ := json.Marshal(g)
	if _, err := a.InitChain(context.Background(), &abci.InitChainRequest{ChainId: testChain, AppStateBytes: bz, InitialHeight: 1}); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, app: a, params: params, nonces: map[string]uint64{}}
	h.block()
	return h
}

func sortAccounts(a []types.GenesisAccount) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && string(a[j].Address) < string(a[j-1].Address); j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

func (h *harness) block(txs ...[]byte) []*abci.ExecTxResult {
	h.t.Helper()
	h.height++
	hash := sha256.Sum256([]byte{byte(h.height), byte(h.height >> 8)})
	res, err := h.app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{
		Txs: txs, Height: h.height, Hash: hash[:], Time: time.Unix(1_700_000_000+h.height, 0),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.app.Commit(context.Background(), &abci.CommitRequest{}); err != nil {
		h.t.Fatal(err)
	}
	snap, err := h.app.Snapshot(0)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := CheckInvariants(snap); err != nil {
		h.t.Fatalf("after block %d: %v", h.height, err)
	}
	return res.TxResults
}

// tx signs msg from label with its next nonce and the minimum fee.
func (h *harness) tx(label string, msg proto.Message) []byte {
	h.t.Helper()
	body := &types.TxBody{ChainId: testChain, Nonce: h.nonces[label]}
	setBodyMsg(body, msg)
	bz := h.signBody(key(label), body)
	h.nonces[label]++
	return bz
}

// at signs msg from label with its current nonce, without consuming it.
func (h *harness) at(label string, msg proto.Message) []byte {
	h.t.Helper()
	bz := h.tx(label, msg)
	h.nonces[label]--
	return bz
}

func (h *harness) signBody(k ed25519.PrivateKey, body *types.TxBody) []byte {
	h.t.Helper()
	name := types.MsgName(body)
	if body.Fee == 0 {
		body.Fee = h.params.MinFee(name, 400)
	}
	bz, err := types.SignTx(k, body)
	if err != nil {
		h.t.Fatal(err)
	}
	return bz
}

func setBodyMsg(body *types.TxBody, msg proto.Message) {
	if err := types.SetMsg(body, msg); err != nil {
		panic(err)
	}
}

func (h *harness) check(tx []byte) *abci.CheckTxResponse {
	res, err := h.app.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: tx, Type: abci.CHECK_TX_TYPE_CHECK})
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

func (h *harness) appHash() []byte { return h.app.tree.Hash() }

func (h *harness) balance(label string) uint64 {
	snap, err := h.app.Snapshot(0)
	if err != nil {
		h.t.Fatal(err)
	}
	return bank.Balance(snap, addrOf(key(label)))
}

func mustOK(t *testing.T, rs []*abci.ExecTxResult) {
	t.Helper()
	for i, r := range rs {
		if r.Code != 0 {
			t.Fatalf("tx %d failed: code %d %s", i, r.Code, r.Log)
		}
	}
}

func info() *types.ProviderInfo {
	h := sha256.Sum256([]byte("model"))
	return &types.ProviderInfo{Endpoint: "http://127.0.0.1:1", Models: []*types.ModelOffer{{Hash: h[:], Name: "m", ContextLength: 512}}, Capabilities: []string{"chat"}}
}

// TestBadInputRejected checks that each kind of bad tx is refused by CheckTx
// with its own code and a clear log, and that nothing changes: not the
// committed state, not the mempool's view (the signer's next valid tx is
// still accepted with the same nonce).
func TestBadInputRejected(t *testing.T) {
	h := newHarness(t, map[string]uint64{"client": 10_000_000_000, "provider": 10_000_000_000, "poor": 1_000})
	// A provider with a channel from the client, one voucher redeemed, and a
	// second channel that is closed.
	mustOK(t, h.block(
		h.tx("provider", &types.MsgBondProvider{Amount: h.params.MinProviderStake}),
	))
	mustOK(t, h.block(h.tx("provider", &types.MsgRegisterProvider{Info: info()})))
	prov := addrOf(key("provider"))
	mustOK(t, h.block(
		h.tx("client", &types.MsgOpenChannel{Provider: prov, Deposit: 1_000_000, ExpiryHeight: 100}),
		h.tx("client", &types.MsgOpenChannel{Provider: prov, Deposit: 1_000, ExpiryHeight: h.height + 2}),
	))
	mustOK(t, h.block(h.tx("provider", &types.MsgRedeemVoucher{Voucher: types.SignVoucher(key("client"), testChain, 1, 500)})))
	h.block()
	mustOK(t, h.block(h.tx("client", &types.MsgCloseChannel{ChannelId: 2})))

	good := func(label string) []byte {
		return h.tx(label, &types.MsgSend{To: addrOf(key("someone")), Amount: 1})
	}
	validTx := good("client")
	h.nonces["client"]-- // reuse the nonce in the bad variants below
	var envelope types.Tx
	if err := proto.Unmarshal(validTx, &envelope); err != nil {
		t.Fatal(err)
	}
	badSig := proto.Clone(&envelope).(*types.Tx)
	badSig.Signature = append([]byte(nil), badSig.Signature...)
	badSig.Signature[5] ^= 0x40
	badSigBz, _ := proto.Marshal(badSig)

	wrongChainBody := &types.TxBody{ChainId: "other-chain", Nonce: h.nonces["client"], Msg: &types.TxBody_Send{Send: &types.MsgSend{To: addrOf(key("x")), Amount: 1}}}
	replay := h.tx("provider", &types.MsgSend{To: addrOf(key("x")), Amount: 1})
	mustOK(t, h.block(replay))

	// raw signs a body whose message fails stateless validation (SetMsg would refuse it).
	raw := func(label string, msg any) []byte {
		body := &types.TxBody{ChainId: testChain, Nonce: h.nonces[label]}
		switch m := msg.(type) {
		case *types.TxBody_SubmitScores:
			body.Msg = m
		case *types.TxBody_ReportOmission:
			body.Msg = m
		case *types.TxBody_AnswerOmission:
			body.Msg = m
		case *types.TxBody_DisputeReceipt:
			body.Msg = m
		}
		return h.signBody(key(label), body)
	}
	cases := []struct {
		name string
		tx   []byte
		code types.Code
		log  string
	}{
		{"malformed bytes", []byte{0xff, 0x01, 0x02, 0x03}, types.CodeMalformed, "malformed tx envelope"},
		{"empty tx", nil, types.CodeMalformed, "empty tx"},
		{"truncated tx", validTx[:len(validTx)-10], types.CodeMalformed, ""},
		{"bad signature", badSigBz, types.CodeBadSignature, "signature does not verify"},
		{"wrong chain id", h.signBody(key("client"), wrongChainBody), types.CodeWrongChain, `tx is for chain "other-chain"`},
		{"replayed nonce", replay, types.CodeBadNonce, "expects nonce"},
		{"insufficient funds", h.at("poor", &types.MsgSend{To: prov, Amount: 900}), types.CodeInsufficientFunds, "insufficient funds"},
		{"amount overflow", h.at("client", &types.MsgTopUpChannel{ChannelId: 1, Amount: math.MaxUint64}), types.CodeOverflow, "overflow"},
		{"voucher not above redeemed", h.at("provider", &types.MsgRedeemVoucher{Voucher: types.SignVoucher(key("client"), testChain, 1, 500)}), types.CodeVoucher, "not above the 500 already redeemed"},
		{"voucher for another channel", h.at("provider", &types.MsgRedeemVoucher{Voucher: withChannel(types.SignVoucher(key("client"), testChain, 2, 900), 1)}), types.CodeVoucher, "voucher signature does not verify"},
		{"voucher for another chain", h.at("provider", &types.MsgRedeemVoucher{Voucher: types.SignVoucher(key("client"), "other-chain", 1, 900)}), types.CodeVoucher, "voucher signature does not verify"},
		{"voucher above deposit", h.at("provider", &types.MsgRedeemVoucher{Voucher: types.SignVoucher(key("client"), testChain, 1, 1_000_001)}), types.CodeVoucher, "exceeds channel 1 deposit"},
		{"redeem after close", h.at("provider", &types.MsgRedeemVoucher{Voucher: types.SignVoucher(key("client"), testChain, 2, 900)}), types.CodeChannelClosed, "channel 2 is closed"},
		{"redeem by non-provider", h.at("client", &types.MsgRedeemVoucher{Voucher: types.SignVoucher(key("client"), testChain, 1, 900)}), types.CodeUnauthorized, "only the channel's provider"},
		{"fee too low", feeTooLow(h, "client"), types.CodeFeeTooLow, "below the minimum"},
		{"scores out of order", raw("client", &types.TxBody_SubmitScores{SubmitScores: &types.MsgSubmitScores{Epoch: 0, Scores: []*types.ProviderScore{{Provider: bytes20(2), ScoreBps: 1}, {Provider: bytes20(1), ScoreBps: 1}}}}), types.CodeMalformed, "strictly ascending"},
		{"score above 100 %", raw("client", &types.TxBody_SubmitScores{SubmitScores: &types.MsgSubmitScores{Epoch: 0, Scores: []*types.ProviderScore{{Provider: bytes20(1), ScoreBps: 10001}}}}), types.CodeMalformed, "above 10000"},
		{"no scores", raw("client", &types.TxBody_SubmitScores{SubmitScores: &types.MsgSubmitScores{Epoch: 0}}), types.CodeMalformed, "between 1 and"},
		{"scores from a non-validator", h.at("client", &types.MsgSubmitScores{Epoch: 0, Scores: []*types.ProviderScore{{Provider: prov, ScoreBps: 1}}}), types.CodeUnauthorized, "only bonded validators"},
		{"omission without signature", raw("client", &types.TxBody_ReportOmission{ReportOmission: &types.MsgReportOmission{Receipt: []byte{1}}}), types.CodeMalformed, "the serialized receipt (at most 4096 bytes) and its signature"},
		{"omission of a garbage receipt", h.at("client", &types.MsgReportOmission{Receipt: []byte{0xff, 0xff}, ReceiptSignature: make([]byte, 64)}), types.CodeMalformed, "receipt:"},
		{"answer with a ragged proof", raw("provider", &types.TxBody_AnswerOmission{AnswerOmission: &types.MsgAnswerOmission{Proof: [][]byte{make([]byte, 32)}}}), types.CodeMalformed, "same length"},
		{"answer without a challenge", h.at("provider", &types.MsgAnswerOmission{Epoch: 0, Index: 0}), types.CodeNotFound, "no open challenge"},
		{"dispute without receipt", raw("client", &types.TxBody_DisputeReceipt{DisputeReceipt: &types.MsgDisputeReceipt{}}), types.CodeMalformed, "needs the serialized receipt"},
		{"dispute of a garbage receipt", h.at("client", &types.MsgDisputeReceipt{Receipt: []byte{0xff, 0xff}, ReceiptSignature: make([]byte, 64)}), types.CodeMalformed, "receipt:"},
		{"oversize tx", make([]byte, types.MaxTxBytes+1), types.CodeMalformed, "limit"},
	}
	before := h.appHash()
	balances := map[string]uint64{"client": h.balance("client"), "provider": h.balance("provider"), "poor": h.balance("poor")}
	for _, c := range cases {
		res := h.check(c.tx)
		if types.Code(res.Code) != c.code {
			t.Errorf("%s: code %d (%s), want %d (%s); log %q", c.name, res.Code, types.Code(res.Code), c.code, c.code, res.Log)
			continue
		}
		if res.Codespace != Codespace || res.Log == "" || !strings.Contains(res.Log, c.log) {
			t.Errorf("%s: log %q does not say %q", c.name, res.Log, c.log)
		}
	}
	// The failed checks consumed nothing: the signers' next txs, using the
	// nonces the bad txs had, are accepted.
	for _, label := range []string{"client", "provider"} {
		h.nonces[label] = nonceOf(h, label)
		if res := h.check(good(label)); res.Code != 0 {
			t.Fatalf("%s's next tx refused after bad input: %s", label, res.Log)
		}
	}
	if string(h.appHash()) != string(before) {
		t.Fatal("committed state changed by CheckTx")
	}
	for label, b := range balances {
		if got := h.balance(label); got != b {
			t.Fatalf("%s balance changed from %d to %d", label, b, got)
		}
	}

	// A byzantine proposer could still put bad txs in a block: decoding,
	// signature, chain id and nonce failures must then change nothing at all.
	h2Before := h.appHash()
	rs := h.block(cases[0].tx, cases[3].tx, cases[4].tx, cases[5].tx)
	for i, r := range rs {
		if r.Code == 0 {
			t.Fatalf("bad tx %d accepted in a block", i)
		}
	}
	if string(h.appHash()) != string(h2Before) {
		t.Fatal("a block of bad txs changed the state")
	}
}

func withChannel(v *types.Voucher, id uint64) *types.Voucher {
	v.ChannelId = id
	return v
}

func bytes20(b byte) types.Address {
	a := make(types.Address, types.AddressLen)
	for i := range a {
		a[i] = b
	}
	return a
}

func feeTooLow(h *harness, label string) []byte {
	body := &types.TxBody{ChainId: testChain, Nonce: h.nonces[label], Fee: 1, Msg: &types.TxBody_Send{Send: &types.MsgSend{To: addrOf(key("x")), Amount: 1}}}
	bz, err := types.SignTx(key(label), body)
	if err != nil {
		h.t.Fatal(err)
	}
	return bz
}

func nonceOf(h *harness, label string) uint64 {
	snap, _ := h.app.Snapshot(0)
	return bank.GetAccount(snap, addrOf(key(label))).Nonce
}

// TestFailedMessageCostsFeeOnly: a message that fails in a block consumes its
// fee and nonce, and nothing else changes.
func TestFailedMessageCostsFeeOnly(t *testing.T) {
	h := newHarness(t, map[string]uint64{"a": 1_000_000, "b": 0})
	// Two sends admitted separately, but together they overdraw.
	t1 := h.tx("a", &types.MsgSend{To: addrOf(key("b")), Amount: 600_000})
	t2 := h.tx("a", &types.MsgSend{To: addrOf(key("b")), Amount: 600_000})
	rs := h.block(t1, t2)
	if rs[0].Code != 0 || types.Code(rs[1].Code) != types.CodeInsufficientFunds {
		t.Fatalf("codes %d %d", rs[0].Code, rs[1].Code)
	}
	var fee1, fee2 types.TxBody
	decodeBody(t, t1, &fee1)
	decodeBody(t, t2, &fee2)
	if got, want := h.balance("a"), 1_000_000-600_000-fee1.Fee-fee2.Fee; got != want {
		t.Fatalf("a balance %d, want %d", got, want)
	}
	if got := h.balance("b"); got != 600_000 {
		t.Fatalf("b balance %d, want 600000", got)
	}
	if n := nonceOf(h, "a"); n != 2 {
		t.Fatalf("nonce %d, want 2", n)
	}
}

func decodeBody(t *testing.T, tx []byte, body *types.TxBody) {
	d, err := types.DecodeTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	proto.Reset(body)
	proto.Merge(body, d.Body)
}

// TestDeterministicAppHash: two apps fed the same blocks agree on every app hash.
func TestDeterministicAppHash(t *testing.T) {
	accounts := map[string]uint64{"a": 5_000_000, "b": 5_000_000, "c": 5_000_000}
	h1, h2 := newHarness(t, accounts), newHarness(t, accounts)
	for i := 0; i < 5; i++ {
		var txs [][]byte
		for _, from := range []string{"a", "b", "c"} {
			for _, to := range []string{"a", "b", "c", "new" + from} {
				txs = append(txs, h1.tx(from, &types.MsgSend{To: addrOf(key(to)), Amount: uint64(10 + i)}))
			}
		}
		h2.nonces = h1.nonces
		h1.block(txs...)
		h2.block(txs...)
		if string(h1.appHash()) != string(h2.appHash()) {
			t.Fatalf("block %d: app hashes differ", h1.height)
		}
	}
}

// FuzzCheckTx: arbitrary bytes never crash CheckTx and never change state.
func FuzzCheckTx(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x08, 0x01})
	body := &types.TxBody{ChainId: testChain, Fee: 1000, Msg: &types.TxBody_Send{Send: &types.MsgSend{To: make([]byte, 20), Amount: 1}}}
	bz, _ := types.SignTx(key("a"), body)
	f.Add(bz)
	f.Add(types.EncodeBeaconTx(&types.BeaconTx{Epoch: 1, Entries: []types.BeaconEntry{{Validator: make([]byte, 20), Proof: make([]byte, types.VRFProofLen)}}}))
	f.Fuzz(func(t *testing.T, tx []byte) {
		h := fuzzHarness(t)
		before := h.appHash()
		res := h.check(tx)
		if res.Code == 0 {
			return // a valid tx (the fuzzer found a signature? only the seed)
		}
		if res.Log == "" {
			t.Fatalf("rejection without a log, code %d", res.Code)
		}
		if string(h.appHash()) != string(before) {
			t.Fatal("state changed")
		}
	})
}

var fuzzH *harness

func fuzzHarness(t *testing.T) *harness {
	if fuzzH == nil {
		fuzzH = newHarness(t, map[string]uint64{"a": 1_000_000})
	}
	fuzzH.t = t
	return fuzzH
}
