package e2e

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
)

// TestFourValidatorsFaultTolerance: with 4 equal validators, one stopped
// node does not stop the chain and catches up on restart to the same app
// hash; two stopped nodes halt it (no 2/3 majority) and after restart it
// resumes without a fork.
func TestFourValidatorsFaultTolerance(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-validator network")
	}
	const blockTime = 300 * time.Millisecond
	nw := testnet.New(t, testnet.Options{Validators: 4, Accounts: 1, BlockTime: blockTime})
	for i := 0; i < 4; i++ {
		if err := nw.WaitHeight(i, 3, 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	sender := nw.Client(0).NewSigner(nw.Accounts[0])
	dest := testnet.Addr(testnet.Key("dest"))
	var sent uint64
	send := func(amount uint64) {
		t.Helper()
		if _, err := sender.Send(ctx, &types.MsgSend{To: dest, Amount: amount}); err != nil {
			t.Fatal(err)
		}
		sent += amount
	}
	send(10)

	// One of four down: the other three (75% of the power) keep committing.
	nw.Stop(3)
	h := nw.Height(0)
	if err := nw.WaitHeight(0, h+4, 60*time.Second); err != nil {
		t.Fatalf("chain stopped with one validator down: %v", err)
	}
	send(20)
	// Restart: it catches up to the others and agrees on the app hash.
	nw.Start(3, 0)
	target := nw.Height(0) + 2
	for i := 0; i < 4; i++ {
		if err := nw.WaitHeight(i, target, 90*time.Second); err != nil {
			t.Fatalf("after restart: %v", err)
		}
	}
	assertSameChain(t, nw, target)

	// Two of four down: 50% < 2/3, so no block can be committed.
	nw.Stop(2)
	nw.Stop(3)
	// A height in flight (its precommits sent before the stops) may still
	// commit, as soon as they are processed: the running nodes settle once
	// both are at one height and it holds for two block times.
	stalled, since := int64(-1), time.Time{} // the height both are at, since when
	poll.Until(t, 30*time.Second, "the running nodes to settle on one height", func() (bool, string) {
		h0, h1 := nw.Height(0), nw.Height(1)
		if h0 != h1 {
			stalled = -1
			return false, fmt.Sprintf("node 0 at %d, node 1 at %d", h0, h1)
		}
		if h0 != stalled {
			stalled, since = h0, time.Now()
		}
		return time.Since(since) >= 2*blockTime, fmt.Sprintf("both at %d", h0)
	})
	// No block can be committed now, and nothing marks that none will be:
	// watch for one. The window outlasts a round whose proposer is down (it
	// times out after TimeoutPropose) and then a dozen block times, in which
	// a chain still able to commit would.
	window := nw.Configs[0].Consensus.TimeoutPropose + 12*blockTime
	if poll.Wait(window, func() (bool, string) { return nw.Height(0) > stalled || nw.Height(1) > stalled, "" }) == nil {
		if got := nw.Height(0); got > stalled {
			t.Fatalf("blocks committed with half the validators down: %d -> %d", stalled, got)
		}
		t.Fatalf("node 1 committed with half the validators down: %d -> %d", stalled, nw.Height(1))
	}
	// Both back: consensus resumes and all four agree, block by block.
	nw.Start(2, 0)
	nw.Start(3, 0)
	target = stalled + 3
	for i := 0; i < 4; i++ {
		if err := nw.WaitHeight(i, target, 120*time.Second); err != nil {
			t.Fatalf("after restarting two: %v", err)
		}
	}
	send(30)
	target = nw.Height(0) + 1
	for i := 0; i < 4; i++ {
		if err := nw.WaitHeight(i, target, 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	assertSameChain(t, nw, target)
	for i := 0; i < 4; i++ {
		acc, err := nw.Client(i).Account(ctx, dest)
		if err != nil {
			t.Fatal(err)
		}
		if acc.Balance != sent {
			t.Fatalf("node %d: destination balance %d, want %d", i, acc.Balance, sent)
		}
	}
}

// assertSameChain checks every node has the same block hash at each height up
// to h, and the same app hash after h.
func assertSameChain(t *testing.T, nw *testnet.Network, h int64) {
	t.Helper()
	for height := int64(1); height <= h; height++ {
		var ref []byte
		for i, n := range nw.Nodes {
			meta := n.Comet().BlockStore().LoadBlockMeta(height)
			if meta == nil {
				t.Fatalf("node %d has no block %d", i, height)
			}
			if i == 0 {
				ref = meta.BlockID.Hash
			} else if !bytes.Equal(ref, meta.BlockID.Hash) {
				t.Fatalf("fork at height %d: node 0 %X, node %d %X", height, ref, i, meta.BlockID.Hash)
			}
		}
	}
	var ref []byte
	for i, n := range nw.Nodes {
		snap, err := n.App().Snapshot(h)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if i == 0 {
			ref = snap.Hash()
		} else if !bytes.Equal(ref, snap.Hash()) {
			t.Fatalf("node %d app hash at %d differs", i, h)
		}
	}
}
