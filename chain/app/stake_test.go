package app

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"github.com/agoranet/agora/chain/api"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// blockFull finalizes and commits a block and returns the whole response.
func (h *harness) blockFull(mb []abci.Misbehavior, txs ...[]byte) *abci.FinalizeBlockResponse {
	h.t.Helper()
	h.height++
	hash := sha256.Sum256([]byte{byte(h.height), byte(h.height >> 8), 7})
	res, err := h.app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{
		Txs: txs, Height: h.height, Hash: hash[:], Time: time.Unix(1_700_000_000+h.height, 0), Misbehavior: mb,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.app.Commit(context.Background(), &abci.CommitRequest{}); err != nil {
		h.t.Fatal(err)
	}
	snap, _ := h.app.Snapshot(0)
	if err := CheckInvariants(snap); err != nil {
		h.t.Fatalf("after block %d: %v", h.height, err)
	}
	return res
}

func (h *harness) txAny(label string, body *types.TxBody) []byte {
	body.ChainId, body.Nonce = testChain, h.nonces[label]
	h.nonces[label]++
	return h.signBody(key(label), body)
}

func updatePower(t *testing.T, res *abci.FinalizeBlockResponse, consPub []byte) (int64, bool) {
	t.Helper()
	for _, u := range res.ValidatorUpdates {
		if string(u.PubKeyBytes) == string(consPub) {
			return u.Power, true
		}
	}
	return 0, false
}

func TestValidatorBondUnbondJail(t *testing.T) {
	h := newHarness(t, map[string]uint64{"op2": 10_000_000_000})
	p := h.params
	cons := types.HexBytes(key("cons2").Public().(ed25519.PublicKey))
	op2 := addrOf(key("op2"))

	// Bond below the minimum is refused; at the minimum it creates the validator
	// and CometBFT is told its power.
	res := h.blockFull(nil, h.txAny("op2", &types.TxBody{Msg: &types.TxBody_BondValidator{BondValidator: &types.MsgBondValidator{ConsPubKey: cons, Amount: p.MinValidatorStake - 1}}}))
	if types.Code(res.TxResults[0].Code) != types.CodeInsufficientFunds {
		t.Fatalf("bond below min: code %d %s", res.TxResults[0].Code, res.TxResults[0].Log)
	}
	res = h.blockFull(nil, h.txAny("op2", &types.TxBody{Msg: &types.TxBody_BondValidator{BondValidator: &types.MsgBondValidator{ConsPubKey: cons, Amount: 3 * p.MinValidatorStake}}}))
	mustOK(t, res.TxResults)
	if pw, ok := updatePower(t, res, cons); !ok || pw != int64(3*p.MinValidatorStake/p.PowerReduction) {
		t.Fatalf("validator update after bond: %v %d", ok, pw)
	}
	// The same key cannot back a second validator.
	res = h.blockFull(nil, h.txAny("operator", &types.TxBody{Msg: &types.TxBody_BondValidator{BondValidator: &types.MsgBondValidator{ConsPubKey: cons, Amount: p.MinValidatorStake}}}))
	if res.TxResults[0].Code == 0 {
		t.Fatal("consensus key reused")
	}

	// Unbond half: power drops now; the stake comes back after the unbonding period.
	balBefore := h.balance("op2")
	res = h.blockFull(nil, h.txAny("op2", &types.TxBody{Msg: &types.TxBody_UnbondValidator{UnbondValidator: &types.MsgUnbondValidator{Amount: p.MinValidatorStake}}}))
	mustOK(t, res.TxResults)
	unbondHeight := h.height
	if pw, _ := updatePower(t, res, cons); pw != int64(2*p.MinValidatorStake/p.PowerReduction) {
		t.Fatalf("power after unbond %d", pw)
	}
	feePaid := balBefore - h.balance("op2")
	for h.height < unbondHeight+p.UnbondingPeriod-1 {
		h.block()
	}
	if got := h.balance("op2"); got != balBefore-feePaid {
		t.Fatalf("unbonded stake paid early: %d", got)
	}
	h.block() // completion height
	if got := h.balance("op2"); got != balBefore-feePaid+p.MinValidatorStake {
		t.Fatalf("after unbonding period balance %d, want %d", got, balBefore-feePaid+p.MinValidatorStake)
	}

	// Double-sign evidence: slashed 5 % and jailed (power 0); unjail only after the jail period.
	snap, _ := h.app.Snapshot(0)
	supply := bank.Supply(snap)
	bonded := stake.GetValidator(snap, op2).Bonded
	res = h.blockFull([]abci.Misbehavior{{Type: abci.MISBEHAVIOR_TYPE_DUPLICATE_VOTE, Validator: abci.Validator{Address: stake.ConsAddress(cons), Power: 1}, Height: h.height}})
	if pw, ok := updatePower(t, res, cons); !ok || pw != 0 {
		t.Fatalf("jailed validator still has power %d", pw)
	}
	cut := bonded * p.SlashDoubleSignBps / 10000
	snap, _ = h.app.Snapshot(0)
	v := stake.GetValidator(snap, op2)
	if !v.Jailed || v.Bonded != bonded-cut || bank.Supply(snap) != supply-cut {
		t.Fatalf("after slash: %+v, supply %d (want bonded %d, supply %d)", v, bank.Supply(snap), bonded-cut, supply-cut)
	}
	res = h.blockFull(nil, h.txAny("op2", &types.TxBody{Msg: &types.TxBody_UnjailValidator{UnjailValidator: &types.MsgUnjailValidator{}}}))
	if types.Code(res.TxResults[0].Code) != types.CodeInvalid {
		t.Fatalf("early unjail: %d %s", res.TxResults[0].Code, res.TxResults[0].Log)
	}
	for h.height < v.JailedUntil {
		h.block()
	}
	res = h.blockFull(nil, h.txAny("op2", &types.TxBody{Msg: &types.TxBody_UnjailValidator{UnjailValidator: &types.MsgUnjailValidator{}}}))
	mustOK(t, res.TxResults)
	if pw, _ := updatePower(t, res, cons); pw != int64((bonded-cut)/p.PowerReduction) {
		t.Fatalf("power after unjail %d", pw)
	}
}

func TestSlashReachesUnbondings(t *testing.T) {
	tree, _ := store.OpenMemTree()
	p := types.DefaultParams()
	op := addrOf(key("v"))
	prov := addrOf(key("p"))
	bank.Mint(tree, op, 10_000_000_000)
	bank.Mint(tree, prov, 1_000_000_000)
	if err := stake.BondValidator(tree, p, op, key("c").Public().(ed25519.PublicKey), 2_000_000_000); err != nil {
		t.Fatal(err)
	}
	stake.UnbondValidator(tree, p, 10, op, 1_000_000_000)
	stake.BondProvider(tree, prov, 400_000_000)
	stake.UnbondProvider(tree, p, 10, prov, 100_000_000, 0)
	supply := bank.Supply(tree)
	cut, err := stake.SlashValidator(tree, op, 1000) // 10 %
	if err != nil || cut != 200_000_000 {
		t.Fatalf("validator slash %d %v", cut, err)
	}
	if u := stake.Unbondings(tree, op); u[0].Amount != 900_000_000 {
		t.Fatalf("unbonding after slash %d", u[0].Amount)
	}
	dest := addrOf(key("victim"))
	cut, err = stake.SlashProvider(tree, prov, 5000, dest) // 50 % to a victim
	if err != nil || cut != 200_000_000 || bank.Balance(tree, dest) != 200_000_000 || stake.ProviderBond(tree, prov) != 150_000_000 {
		t.Fatalf("provider slash %d %v", cut, err)
	}
	if bank.Supply(tree) != supply-200_000_000 {
		t.Fatal("validator slash should burn, provider slash to a victim should not")
	}
	if err := CheckInvariants(tree); err != nil {
		t.Fatal(err)
	}
	n, err := stake.CompleteUnbondings(tree, 10+p.UnbondingPeriod)
	if err != nil || n != 2 {
		t.Fatalf("completed %d %v", n, err)
	}
	if err := CheckInvariants(tree); err != nil {
		t.Fatal(err)
	}
}

func TestProviderBondRules(t *testing.T) {
	h := newHarness(t, map[string]uint64{"prov": 10_000_000_000})
	p := h.params
	// register without bond refused
	res := h.blockFull(nil, h.txAny("prov", &types.TxBody{Msg: &types.TxBody_RegisterProvider{RegisterProvider: &types.MsgRegisterProvider{Info: info()}}}))
	if types.Code(res.TxResults[0].Code) != types.CodeInsufficientFunds {
		t.Fatalf("register without bond: %d %s", res.TxResults[0].Code, res.TxResults[0].Log)
	}
	mustOK(t, h.blockFull(nil,
		h.txAny("prov", &types.TxBody{Msg: &types.TxBody_BondProvider{BondProvider: &types.MsgBondProvider{Amount: p.MinProviderStake + 5}}}),
		h.txAny("prov", &types.TxBody{Msg: &types.TxBody_RegisterProvider{RegisterProvider: &types.MsgRegisterProvider{Info: info()}}}),
	).TxResults)
	// cannot unbond below the minimum while registered
	res = h.blockFull(nil, h.txAny("prov", &types.TxBody{Msg: &types.TxBody_UnbondProvider{UnbondProvider: &types.MsgUnbondProvider{Amount: 6}}}))
	if types.Code(res.TxResults[0].Code) != types.CodeInvalid {
		t.Fatalf("unbond below min: %d %s", res.TxResults[0].Code, res.TxResults[0].Log)
	}
	// the model index finds it; after deregistering it does not, and it may unbond all
	v, _, err := h.app.QueryJSON("/providers/model/"+hex.EncodeToString(info().Models[0].Hash), 0)
	if err != nil || len(v.([]api.ProviderView)) != 1 {
		t.Fatalf("providers for model: %v %v", v, err)
	}
	mustOK(t, h.blockFull(nil,
		h.txAny("prov", &types.TxBody{Msg: &types.TxBody_DeregisterProvider{DeregisterProvider: &types.MsgDeregisterProvider{}}}),
		h.txAny("prov", &types.TxBody{Msg: &types.TxBody_UnbondProvider{UnbondProvider: &types.MsgUnbondProvider{Amount: p.MinProviderStake + 5}}}),
	).TxResults)
	v, _, _ = h.app.QueryJSON("/providers/model/"+hex.EncodeToString(info().Models[0].Hash), 0)
	if len(v.([]api.ProviderView)) != 0 {
		t.Fatal("deregistered provider still indexed")
	}
	// a channel to a deregistered provider cannot be opened
	res = h.blockFull(nil, h.txAny("prov", &types.TxBody{Msg: &types.TxBody_OpenChannel{OpenChannel: &types.MsgOpenChannel{Provider: addrOf(key("prov")), Deposit: 1, ExpiryHeight: 1000}}}))
	if types.Code(res.TxResults[0].Code) != types.CodeNotFound {
		t.Fatalf("channel to deregistered provider: %d", res.TxResults[0].Code)
	}
}

// TestPruning: with KeepRecent, old versions disappear from storage but the
// latest state and its hash are unaffected.
func TestPruning(t *testing.T) {
	a := newHarness(t, map[string]uint64{"a": 1_000_000})
	b := newHarness(t, map[string]uint64{"a": 1_000_000})
	a.app.KeepRecent = 20
	for i := 0; i < 2*pruneEvery+5; i++ {
		tx := a.tx("a", &types.MsgSend{To: addrOf(key("z")), Amount: 1})
		b.nonces = a.nonces
		a.block(tx)
		b.block(tx)
	}
	if string(a.appHash()) != string(b.appHash()) {
		t.Fatal("pruning changed the app hash")
	}
	if _, err := a.app.Snapshot(pruneEvery - 20); err == nil {
		t.Fatal("a pruned version is still readable")
	}
	if _, err := a.app.Snapshot(a.height - 5); err != nil {
		t.Fatalf("a recent version is gone: %v", err)
	}
	if _, err := b.app.Snapshot(pruneEvery - 20); err != nil {
		t.Fatalf("without pruning the version should remain: %v", err)
	}
}
