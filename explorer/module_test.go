package explorer

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/app"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// tipModule is a throwaway module that exists only in this test: it
// declares one message, "tip" (MsgTip, generated from testdata/tip.proto
// for tests only), carried in TxBody's generic module_msg; it pays the
// recipient and counts the tips each account received under tip/<address>.
func tipModule() app.Module {
	spec := types.DeclareModuleMsg("tip", func() *MsgTip { return &MsgTip{} },
		func(m *MsgTip) error {
			if err := types.ValidAddress(m.To); err != nil {
				return errors.New("tip: recipient " + err.Error())
			}
			if m.Amount == 0 || m.Amount > 1000 {
				return errors.New("tip: between 1 and 1000 uagr")
			}
			return nil
		},
		func(m *MsgTip) types.Description {
			return types.Description{Fields: [][2]string{{"to", types.Address(m.To).String()}, {"amount", strconv.FormatUint(m.Amount, 10)}},
				Touches: []types.Address{m.To}}
		})
	return app.Module{Name: "tips", Msgs: []types.MsgSpec{spec}, Handlers: map[string]app.Handler{
		"tip": func(kv store.KV, _ app.Ctx, d *types.DecodedTx) ([][2]string, error) {
			m := d.Msg.(*MsgTip)
			if err := bank.Send(kv, d.Signer, m.To, m.Amount); err != nil {
				return nil, err
			}
			k := append([]byte("tip/"), m.To...)
			n, _ := strconv.ParseUint(string(kv.Get(k)), 10, 64)
			kv.Set(k, []byte(strconv.FormatUint(n+1, 10)))
			return [][2]string{{"tips", strconv.FormatUint(n+1, 10)}}, nil
		},
	}}
}

const tipGas = 300_000

func tipGenesis(t *testing.T, client types.Address, withTipGas bool) (types.Params, []byte) {
	t.Helper()
	p := types.DefaultParams()
	p.Gas = maps(p.Gas)
	if withTipGas {
		p.Gas["tip"] = tipGas
	}
	g := types.Genesis{Params: p, Accounts: []types.GenesisAccount{{Address: client, Balance: 1_000_000_000}},
		Validators: []types.GenesisValidator{{Operator: addrOf(testKey(t, 40)), ConsPubKey: types.HexBytes(testKey(t, 41).Public().(ed25519.PublicKey)), Bonded: p.MinValidatorStake}}}
	bz, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	return p, bz
}

func maps(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func openApp(t *testing.T, mods []app.Module, genesis []byte) (*app.App, error) {
	t.Helper()
	tree, err := store.OpenMemTree()
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.NewWithModules(tree, nil, nil, mods)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.InitChain(context.Background(), &abci.InitChainRequest{ChainId: "test", AppStateBytes: genesis, InitialHeight: 1})
	return a, err
}

// signTip signs a tip set through reg; an invalid tip, which reg refuses to
// set, is carried in a module_msg by hand so the chain can refuse it.
func signTip(t *testing.T, reg *types.MsgRegistry, k ed25519.PrivateKey, nonce, fee uint64, m *MsgTip) []byte {
	t.Helper()
	body := &types.TxBody{ChainId: "test", Nonce: nonce, Fee: fee}
	if err := reg.Set(body, m); err != nil {
		// An invalid tip: carry it as is, for the chain to refuse.
		bz, _ := proto.Marshal(m)
		body.Msg = &types.TxBody_ModuleMsg{ModuleMsg: &types.ModuleMsg{TypeUrl: "tip", Value: bz}}
	}
	raw, err := types.SignTx(k, body)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestThrowawayModule registers a module that exists only in this test and
// sees its message validated, named (gas, events), executed and indexed
// through the module table alone: no switch in chain/ or explorer/ names it.
func TestThrowawayModule(t *testing.T) {
	client, to := testKey(t, 30), addrOf(testKey(t, 31))
	mods := append(app.DefaultModules(), tipModule())
	params, genesis := tipGenesis(t, addrOf(client), true)

	// A module's message needs its gas in genesis like the chain's own.
	_, noGas := tipGenesis(t, addrOf(client), false)
	if _, err := openApp(t, mods, noGas); err == nil || !strings.Contains(err.Error(), `missing cost for message "tip"`) {
		t.Fatalf("genesis without the tip's gas: %v", err)
	}
	a, err := openApp(t, mods, genesis)
	if err != nil {
		t.Fatal(err)
	}
	reg := a.Msgs()
	if spec, ok := reg.Lookup("tip"); !ok || spec.Name != "tip" || !slices.Contains(reg.Names(), "send") {
		t.Fatalf("registry: tip %v, names %v", ok, reg.Names())
	}

	good := signTip(t, reg, client, 0, 10_000_000, &MsgTip{To: to, Amount: 300})
	check := func(a *app.App, tx []byte) *abci.CheckTxResponse {
		res, err := a.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: tx, Type: abci.CHECK_TX_TYPE_CHECK})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// Without the module the same tx is refused as unknown.
	plain, err := openApp(t, app.DefaultModules(), genesis)
	if err != nil {
		t.Fatal(err)
	}
	if res := check(plain, good); res.Code == 0 || !strings.Contains(res.Log, `unknown module message "tip"`) {
		t.Fatalf("app without the module: code %d log %q", res.Code, res.Log)
	}

	// Validated: the module's validator refuses a tip above 1000 uagr.
	bad := signTip(t, reg, client, 0, 10_000_000, &MsgTip{To: to, Amount: 5000})
	if res := check(a, bad); res.Code != uint32(types.CodeMalformed) || !strings.Contains(res.Log, "tip: between 1 and 1000 uagr") {
		t.Fatalf("bad tip: code %d log %q", res.Code, res.Log)
	}
	// Named: its gas is looked up by its name, "tip".
	cheap := signTip(t, reg, client, 0, params.MinFee("send", 200), &MsgTip{To: to, Amount: 300})
	if res := check(a, cheap); res.Code != uint32(types.CodeFeeTooLow) || !strings.Contains(res.Log, "tip tx") {
		t.Fatalf("tip with a send's fee: code %d log %q", res.Code, res.Log)
	}

	// Executed: a block with the good tip and the bad one.
	hash := sha256.Sum256([]byte("block 1"))
	when := time.Unix(1_700_000_001, 0)
	fin, err := a.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Txs: [][]byte{good, bad}, Height: 1, Hash: hash[:], Time: when})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Commit(context.Background(), &abci.CommitRequest{}); err != nil {
		t.Fatal(err)
	}
	r0, r1 := fin.TxResults[0], fin.TxResults[1]
	if r0.Code != 0 || len(r0.Events) != 1 {
		t.Fatalf("good tip: code %d log %q events %v", r0.Code, r0.Log, r0.Events)
	}
	attrs := events(r0.Events)[0].Attrs
	if attrs["msg"] != "tip" || attrs["tips"] != "1" || attrs["fee"] != "10000000" {
		t.Fatalf("good tip's event: %v", attrs)
	}
	if r1.Code == 0 || !strings.Contains(r1.Log, "tip: between 1 and 1000 uagr") || len(r1.Events) != 0 {
		t.Fatalf("bad tip in a block: code %d log %q", r1.Code, r1.Log)
	}
	snap, err := a.Snapshot(0)
	if err != nil {
		t.Fatal(err)
	}
	if got := bank.GetAccount(snap, to).Balance; got != 300 {
		t.Fatalf("recipient balance %d, want 300", got)
	}
	if got := bank.GetAccount(snap, addrOf(client)).Balance; got != 1_000_000_000-300-10_000_000 {
		t.Fatalf("client balance %d, want %d", got, 1_000_000_000-300-10_000_000)
	}
	if got := string(snap.Get(append([]byte("tip/"), to...))); got != "1" {
		t.Fatalf("tip count %q, want 1", got)
	}

	// Indexed: the explorer describes the tip by its declaration.
	blk := &BlockData{Height: 1, Hash: hash[:], Time: when, Txs: [][]byte{good, bad}, Events: events(fin.Events)}
	for _, r := range fin.TxResults {
		blk.Results = append(blk.Results, TxResult{Code: r.Code, Log: r.Log, Events: events(r.Events)})
	}
	index := func(reg *types.MsgRegistry) *Tx {
		x, err := OpenIndex(t.TempDir(), params.EpochLength)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		if reg != nil {
			x.SetMsgs(reg)
		}
		if err := x.Apply(blk); err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(good)
		tx, err := x.Tx(hex.EncodeToString(h[:]))
		if err != nil || tx == nil {
			t.Fatalf("indexed tip: %v %v", tx, err)
		}
		if reg != nil {
			byTo, err := x.AccountTxs(to, 10)
			if err != nil || len(byTo) != 1 || byTo[0].Hash != tx.Hash {
				t.Fatalf("recipient's txs: %+v %v", byTo, err)
			}
		}
		return tx
	}
	tx := index(reg)
	if tx.Msg != "tip" || tx.Fields["to"] != to.String() || tx.Fields["amount"] != "300" || tx.Results["tips"] != "1" ||
		!slices.Contains(tx.Accounts, to.String()) || tx.Fee != 10_000_000 {
		t.Fatalf("indexed tip: %+v", tx)
	}
	// An index that does not know the module cannot describe it.
	if tx := index(nil); tx.Msg != "undecodable" || len(tx.Fields) != 0 {
		t.Fatalf("tip indexed without its module: %+v", tx)
	}
}
