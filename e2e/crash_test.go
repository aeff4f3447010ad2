package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
)

func crashRecipient(n uint64) types.Address {
	b := binary.BigEndian.AppendUint64([]byte("crash-recipient-"), n)
	return types.AddressFromPubKey(b)
}

// TestCrashSafety kills a node with SIGKILL while transfers stream in, restarts
// it, and checks that every tx committed before the kill is reflected exactly
// once, that the applied txs are exactly the sender's nonces 0..N-1, and that
// balances match to the base unit. It ends with a SIGTERM graceful shutdown.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	home := filepath.Join(t.TempDir(), "node")
	ports := testnet.FreePorts(t, 3)
	rpc := fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	senderKey := testnet.Key("crash-sender")
	sender := testnet.Addr(senderKey)
	const initial = 1_000_000_000_000
	out, err := exec.Command(agoraBin, "init", "--home", home, "--keyring", "test", "--chain-id", "agora-crash",
		"--account", fmt.Sprintf("%s=%d", sender, initial),
		"--p2p.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", ports[0]), "--rpc.laddr", rpc,
		"--api.laddr", fmt.Sprintf("127.0.0.1:%d", ports[2]), "--consensus.timeout_commit", "200ms").CombinedOutput()
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	p := startAgora(t, "start", "--home", home, "--log-level", "warn")
	c, err := client.New(rpc)
	if err != nil {
		t.Fatal(err)
	}
	waitServing(t, c, p, 2)
	params, err := c.Params(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	// Stream signed transfers: tx n sends 1000+n to recipient n.
	type sent struct {
		hash string
		fee  uint64
	}
	var (
		mu        sync.Mutex
		accepted  []sent
		confirmed = map[uint64]int64{} // nonce -> height seen before the kill
	)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for n := uint64(0); n < 5000 && ctx.Err() == nil; n++ {
			body := &types.TxBody{ChainId: "agora-crash", Nonce: n, Msg: &types.TxBody_Send{Send: &types.MsgSend{To: crashRecipient(n), Amount: 1000 + n}}}
			tx, err := client.SignWithMinFee(senderKey, body, params)
			if err != nil {
				t.Error(err)
				return
			}
			hash, err := c.BroadcastSync(ctx, tx)
			if err != nil {
				return // the node was killed
			}
			mu.Lock()
			accepted = append(accepted, sent{hash: hash, fee: body.Fee})
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		next := 0
		for ctx.Err() == nil {
			mu.Lock()
			var hash string
			if next < len(accepted) {
				hash = accepted[next].hash
			}
			mu.Unlock()
			if hash == "" {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			res, err := c.Tx(ctx, hash)
			if err != nil {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if res.Code != 0 {
				t.Errorf("tx %d failed: %s", next, res.Log)
			}
			mu.Lock()
			confirmed[uint64(next)] = res.Height
			mu.Unlock()
			next++
		}
	}()
	// The kill lands once transfers have been committed in 10 blocks, with
	// more streaming in.
	poll.Until(t, 60*time.Second, "transfers committed in 10 blocks", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		heights := map[int64]bool{}
		for _, h := range confirmed {
			heights[h] = true
		}
		return len(heights) >= 10, fmt.Sprintf("%d accepted, %d confirmed in %d blocks", len(accepted), len(confirmed), len(heights))
	})
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.Cmd.Wait()
	stop()
	wg.Wait()
	mu.Lock()
	nConfirmed, nAccepted := len(confirmed), len(accepted)
	mu.Unlock()
	if nConfirmed < 10 {
		t.Fatalf("only %d txs committed before the kill (%d accepted); output:\n%s", nConfirmed, nAccepted, p.Output())
	}
	t.Logf("killed with %d txs accepted, %d confirmed committed", nAccepted, nConfirmed)

	// Restart and check.
	p2 := startAgora(t, "start", "--home", home, "--log-level", "warn")
	waitServing(t, c, p2, 1)
	st, _ := c.Status(context.Background())
	waitServing(t, c, p2, st.SyncInfo.LatestBlockHeight+2)
	ctx2 := context.Background()
	acc, err := c.Account(ctx2, sender)
	if err != nil {
		t.Fatal(err)
	}
	applied := acc.Nonce
	if applied < uint64(nConfirmed) {
		t.Fatalf("sender nonce %d after restart, but %d txs were committed before the kill", applied, nConfirmed)
	}
	want := uint64(initial)
	for n := uint64(0); n < uint64(nAccepted); n++ {
		rb, err := c.Account(ctx2, crashRecipient(n))
		if err != nil {
			t.Fatal(err)
		}
		if n < applied {
			if rb.Balance != 1000+n {
				t.Fatalf("recipient %d balance %d, want %d (applied once)", n, rb.Balance, 1000+n)
			}
			want -= 1000 + n + accepted[n].fee
		} else if rb.Balance != 0 {
			t.Fatalf("recipient %d balance %d for a tx beyond the sender's nonce %d", n, rb.Balance, applied)
		}
		if h, ok := confirmed[n]; ok {
			res, err := c.Tx(ctx2, accepted[n].hash)
			if err != nil || res.Height != h {
				t.Fatalf("tx %d committed at %d before the kill, after restart: %v %v", n, h, res, err)
			}
		}
	}
	if acc.Balance != want {
		t.Fatalf("sender balance %d, want %d", acc.Balance, want)
	}
	// Graceful shutdown: SIGTERM ends the node with exit status 0.
	p2.StopGracefully(t, syscall.SIGTERM, 30*time.Second)
}
