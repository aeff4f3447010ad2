package app

import (
	"context"
	"encoding/json"
	"github.com/agoranet/agora/chain/api"
	"strings"
	"sync"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/chain/types"
)

func (h *harness) pending(label string) api.NonceView {
	h.t.Helper()
	res, err := h.app.Query(context.Background(), &abci.QueryRequest{Path: "/nonce/" + addrOf(key(label)).String()})
	if err != nil || res.Code != 0 {
		h.t.Fatalf("nonce query: %v %s", err, res.GetLog())
	}
	var v api.NonceView
	if err := json.Unmarshal(res.Value, &v); err != nil {
		h.t.Fatal(err)
	}
	return v
}

// TestPendingNonce: the /nonce query answers committed + the account's txs
// admitted by CheckTx, and stays right across a commit once CometBFT's
// recheck has replayed the mempool's remaining txs; a read that comes during
// the commit waits (mempool lock) for the rebuilt check state.
func TestPendingNonce(t *testing.T) {
	h := newHarness(t, map[string]uint64{"alice": 10_000_000_000, "bob": 10_000_000_000})
	to := addrOf(key("someone"))
	send := func() []byte { return h.tx("alice", &types.MsgSend{To: to, Amount: 1}) }
	mustOK(t, h.block(send()))

	txs := [][]byte{send(), send(), send(), send()}
	for i, tx := range txs {
		if r := h.check(tx); r.Code != 0 {
			t.Fatalf("check tx %d: %s", i, r.Log)
		}
	}
	if v := h.pending("alice"); v.Committed != 1 || v.Pending != 5 || v.Height != h.height {
		t.Fatalf("after 4 admitted: %+v, want committed 1 pending 5 at %d", v, h.height)
	}
	if v := h.pending("bob"); v.Committed != 0 || v.Pending != 0 {
		t.Fatalf("bob: %+v", v)
	}
	// a refused tx (a nonce already taken in the mempool) changes nothing
	if r := h.check(h.signBody(key("alice"), &types.TxBody{ChainId: testChain, Nonce: 2, Msg: &types.TxBody_Send{Send: &types.MsgSend{To: to, Amount: 1}}})); r.Code != uint32(types.CodeBadNonce) {
		t.Fatalf("duplicate nonce admitted: %+v", r)
	}
	if v := h.pending("alice"); v.Pending != 5 {
		t.Fatalf("after a refused tx: %+v", v)
	}

	// The first two go into a block. CometBFT holds its mempool lock over the
	// commit and the recheck of the two left; a read meanwhile waits for both.
	var mempool sync.Mutex
	h.app.SetMempoolLocker(&mempool)
	mempool.Lock()
	mustOK(t, h.block(txs[0], txs[1]))
	got := make(chan api.NonceView)
	go func() { got <- h.pending("alice") }()
	for _, tx := range txs[2:] {
		res, err := h.app.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: tx, Type: abci.CHECK_TX_TYPE_RECHECK})
		if err != nil || res.Code != 0 {
			t.Fatalf("recheck: %v %+v", err, res)
		}
	}
	mempool.Unlock()
	if v := <-got; v.Committed != 3 || v.Pending != 5 {
		t.Fatalf("read across the commit: %+v, want committed 3 pending 5", v)
	}
	mustOK(t, h.block(txs[2], txs[3]))
	if v := h.pending("alice"); v.Committed != 5 || v.Pending != 5 {
		t.Fatalf("all committed: %+v", v)
	}

	// not committed state: no proof, no past height; bad addresses refused
	for _, req := range []*abci.QueryRequest{
		{Path: "/nonce/" + addrOf(key("alice")).String(), Prove: true},
		{Path: "/nonce/" + addrOf(key("alice")).String(), Height: 2},
		{Path: "/nonce/nothex"},
	} {
		res, err := h.app.Query(context.Background(), req)
		if err != nil || res.Code == 0 {
			t.Fatalf("query %+v answered: %v %+v", req, err, res)
		}
	}
	if _, _, err := h.app.QueryJSON("/nonce/"+addrOf(key("alice")).String(), 2); err == nil || !strings.Contains(err.Error(), "no past heights") {
		t.Fatalf("QueryJSON at a height: %v", err)
	}
	if v, _, err := h.app.QueryJSON("/nonce/"+addrOf(key("alice")).String(), 0); err != nil || v.(api.NonceView).Pending != 5 {
		t.Fatalf("QueryJSON: %v %v", v, err)
	}
}
