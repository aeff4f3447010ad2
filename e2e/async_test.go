package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
)

// TestCLIAsyncTwice: two quick `agora tx send --async` from one key, the
// second sent while the first still waits in the mempool (blocks are 3 s
// apart), are both admitted with consecutive nonces (the second learns the
// pending nonce from the node) and both commit.
func TestCLIAsyncTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess CLI test")
	}
	home := filepath.Join(t.TempDir(), "home")
	ports := testnet.FreePorts(t, 3)
	rpc := fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	kr := []string{"--home", home, "--keyring", "test"}
	var alice struct{ Address string }
	runJSON(t, &alice, append([]string{"keys", "add", "alice"}, kr...)...)
	run(t, "init", "--home", home, "--keyring", "test", "--chain-id", "agora-async",
		"--account", alice.Address+"=5000000000",
		"--p2p.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", ports[0]), "--rpc.laddr", rpc,
		"--api.laddr", fmt.Sprintf("127.0.0.1:%d", ports[2]), "--consensus.timeout_commit", "3s")
	p := startAgora(t, "start", "--home", home, "--log-level", "warn")
	c, err := client.New(rpc)
	if err != nil {
		t.Fatal(err)
	}
	waitServing(t, c, p, 2)

	to := testnet.Addr(testnet.Key("async-recipient")).String()
	for i, amount := range []string{"1000", "2000"} {
		var res struct {
			Hash  string
			Nonce uint64
		}
		runJSON(t, &res, append([]string{"tx", "send", to, amount, "--from", "alice", "--async", "--node", rpc}, kr...)...)
		if res.Hash == "" || res.Nonce != uint64(i) {
			t.Fatalf("async send %d: %+v, want nonce %d", i, res, i)
		}
	}
	ctx := context.Background()
	err = poll.Wait(60*time.Second, func() (bool, string) {
		acc, err := c.Account(ctx, testnet.Addr(testnet.Key("async-recipient")))
		return err == nil && acc.Balance == 3000, fmt.Sprintf("recipient %+v (%v)", acc, err)
	})
	if err != nil {
		t.Fatalf("both async sends not committed: %v\n%s", err, p.Output())
	}
	nv, err := c.PendingNonce(ctx, testnet.Addr(testnet.Key("async-recipient")))
	if err != nil {
		t.Fatal(err)
	}
	var sender struct{ Nonce uint64 }
	runJSON(t, &sender, "query", "account", alice.Address, "--node", rpc)
	if sender.Nonce != 2 || nv.Pending != 0 {
		t.Fatalf("sender nonce %d, want 2 (recipient %+v)", sender.Nonce, nv)
	}
}
