package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/testutil/testnet"
)

// TestSignerMempoolFull: a node whose mempool holds two txs, and twelve
// transfers sent at once from one account through one Signer. The mempool
// refuses most of them at first ("mempool is full"); the signer resubmits
// each with its own nonce until it is admitted, never skipping one, so all
// twelve commit and no tx is refused for its nonce. A tx then refused for
// good (insufficient funds) gives its nonce back: the next one commits with it.
func TestSignerMempoolFull(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	nw := testnet.New(t, testnet.Options{Accounts: 1, Balance: 1_000_000_000, MempoolSize: 2, BlockTime: 300 * time.Millisecond})
	if err := nw.WaitHeight(0, 2, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	c := nw.Client(0)
	s := c.NewSigner(nw.Accounts[0])
	to := testnet.Addr(testnet.Key("mempool-full-recipient"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	results := make([]*client.TxResult, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i], errs[i] = s.Send(ctx, &types.MsgSend{To: to, Amount: uint64(1000 + i)})
		}(i)
	}
	wg.Wait()
	var want uint64
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("send %d: %v", i, errs[i])
		}
		if results[i].Code != 0 || results[i].Height == 0 {
			t.Fatalf("send %d: %+v", i, results[i])
		}
		want += uint64(1000 + i)
	}
	st := s.Stats()
	if st.Resubmitted == 0 {
		t.Fatalf("the mempool of 2 never refused a tx (stats %+v): the test did not exercise resubmission", st)
	}
	if st.Resynced != 0 {
		t.Fatalf("a tx was refused for its nonce (stats %+v)", st)
	}
	acc, err := c.Account(ctx, s.Address())
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Account(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Nonce != n || got.Balance != want {
		t.Fatalf("sender nonce %d (want %d), recipient balance %d (want %d)", acc.Nonce, n, got.Balance, want)
	}

	// refused for good: its nonce is not lost
	_, err = s.Send(ctx, &types.MsgSend{To: to, Amount: 10_000_000_000})
	var te *client.TxError
	if !errors.As(err, &te) || te.Code != types.CodeInsufficientFunds || te.Height != 0 {
		t.Fatalf("overspend: %v", err)
	}
	if _, err := s.Send(ctx, &types.MsgSend{To: to, Amount: 1}); err != nil {
		t.Fatalf("send after a refusal: %v", err)
	}
	nv, err := c.PendingNonce(ctx, s.Address())
	if err != nil {
		t.Fatal(err)
	}
	if nv.Committed != n+1 || nv.Pending != n+1 {
		t.Fatalf("nonces after the refusal: %+v, want %d", nv, n+1)
	}
}
