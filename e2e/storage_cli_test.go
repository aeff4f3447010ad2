package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/testutil/e2eutil"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
)

// TestStorageCLI drives storage deals through the agora binary: a
// storage-only provider (agora provider start --storage) registers, the
// client's `agora storage deal FILE` creates the deal and uploads the file,
// the provider accepts and proves epochs; then the provider is stopped and
// its operator answers the next challenge by hand (`agora storage prove`)
// from the replica store it left on disk; `agora storage status` shows the
// epochs. A deal over the k limit is refused with the chain's reason.
func TestStorageCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess CLI test")
	}
	home := filepath.Join(t.TempDir(), "home")
	ports := testnet.FreePorts(t, 4)
	rpc := fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	kr := []string{"--home", home, "--keyring", "test"}
	var cl, prov struct{ Address string }
	e2eutil.RunJSON(t, &cl, append([]string{"keys", "add", "client"}, kr...)...)
	e2eutil.RunJSON(t, &prov, append([]string{"keys", "add", "prov"}, kr...)...)
	e2eutil.Run(t, "init", "--home", home, "--keyring", "test", "--chain-id", "agora-storage",
		"--account", cl.Address+"=5000000000", "--account", prov.Address+"=5000000000",
		"--p2p.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", ports[0]), "--rpc.laddr", rpc, "--api.laddr", fmt.Sprintf("127.0.0.1:%d", ports[2]),
		"--consensus.timeout_commit", "200ms")
	node := e2eutil.StartAgora(t, "start", "--home", home, "--log-level", "warn")
	c, _ := client.New(rpc)
	e2eutil.WaitServing(t, c, node, 2)
	ctx := context.Background()
	nodeFlag := []string{"--node", rpc}

	p := e2eutil.StartAgora(t, append(append([]string{"provider", "start", "--storage", "--key", "prov", "--listen", fmt.Sprintf("127.0.0.1:%d", ports[3])}, kr...), nodeFlag...)...)
	poll.Until(t, 60*time.Second, "the storage provider registered", func() (bool, string) {
		var pv api.ProviderView
		err := c.Query(ctx, api.ProviderPath(mustAddr(t, prov.Address)), 0, &pv)
		return err == nil && pv.Registered && strings.Contains(strings.Join(pv.Capabilities, ","), "storage"), p.Output()
	})

	file := filepath.Join(t.TempDir(), "data.bin")
	r := rand.New(rand.NewPCG(4, 2))
	data := make([]byte, 200_000)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	storage := func(args ...string) []string {
		return append(append(append([]string{"storage"}, args...), kr...), nodeFlag...)
	}
	out := e2eutil.RunFail(t, storage("deal", file, "--epochs", "10", "--k", "17", "--from", "client")...)
	if !strings.Contains(out, "challenges (k) must be between 1 and 16, got 17") {
		t.Fatalf("k=17: %s", out)
	}
	var d api.StorageDealView
	e2eutil.RunJSON(t, &d, storage("deal", file, "--epochs", "40", "--price", "1000", "--collateral", "2000000", "--k", "8", "--from", "client")...)
	if d.ID != 1 || d.Status != "active" || d.Provider.String() != prov.Address || d.Size != uint64(len(data)) || d.Challenges != 8 {
		t.Fatalf("deal %+v", d)
	}
	poll.Until(t, 60*time.Second, "an epoch proved by the provider", func() (bool, string) {
		d, err := c.StorageDeal(ctx, 1)
		return err == nil && d.Proved >= 1, p.Output()
	})
	// The client gets its file back (decoded from the provider's replica,
	// checked against the blob ID); nobody else does.
	back := filepath.Join(t.TempDir(), "back.bin")
	out = e2eutil.Run(t, storage("get", "1", "-O", back, "--from", "client")...)
	if got, err := os.ReadFile(back); err != nil || string(got) != string(data) || !strings.Contains(out, "checked") {
		t.Fatalf("storage get: %v, %d bytes back of %d: %s", err, len(got), len(data), out)
	}
	out = e2eutil.RunFail(t, storage("get", "1", "-O", back+".x", "--from", "prov")...)
	if !strings.Contains(out, "403") || !strings.Contains(out, "go to its client") {
		t.Fatalf("storage get by another account: %s", out)
	}
	if _, err := os.Stat(back + ".x"); err == nil {
		t.Fatal("a refused get left a file")
	}
	p.StopGracefully(t, syscall.SIGTERM, 30*time.Second)

	// The next challenge, answered by hand before its deadline.
	proved := mustDeal(t, c, 1).Proved
	var ch api.StorageChallengeView
	poll.Until(t, 60*time.Second, "the next challenge", func() (bool, string) {
		var err error
		ch, err = c.StorageChallenge(ctx, 1)
		return err == nil && len(ch.Indices) > 0 && mustDeal(t, c, 1).Proved == proved, ""
	})
	out = e2eutil.Run(t, storage("prove", "1", "--from", "prov")...)
	if !strings.Contains(out, fmt.Sprintf("deal 1 epoch %d proved", ch.Epoch)) || !strings.Contains(out, "paid 950 uagr") {
		t.Fatalf("prove: %s", out)
	}
	var st struct {
		Deal   api.StorageDealView
		Epochs []api.StorageEpochView
		Faults []api.StorageFaultView
	}
	e2eutil.RunJSON(t, &st, storage("status", "1")...)
	last := st.Epochs[len(st.Epochs)-1]
	if st.Deal.Proved != proved+1 || last.Epoch != ch.Epoch || !last.Proved || last.Paid != 950 || last.Fee != 50 || st.Deal.Missed != 0 || len(st.Faults) != 0 {
		t.Fatalf("status after the manual proof: %+v", st)
	}
	out = e2eutil.Run(t, storage("status", "1")...)
	if !strings.Contains(out, fmt.Sprintf("epoch %d: proved at", ch.Epoch)) {
		t.Fatalf("status text: %s", out)
	}

	// A deal made while its provider is down stays open; once the provider
	// is back, `storage upload` offers it the file and it accepts.
	small := data[:5000]
	file2 := filepath.Join(t.TempDir(), "small.bin")
	if err := os.WriteFile(file2, small, 0o600); err != nil {
		t.Fatal(err)
	}
	out = e2eutil.RunFail(t, storage("deal", file2, "--epochs", "10", "--k", "4", "--from", "client", "--wait", "20s")...)
	if !strings.Contains(out, "deal 2 stays open: 'agora storage upload 2 FILE'") {
		t.Fatalf("deal with the provider down: %s", out)
	}
	out = e2eutil.RunFail(t, storage("upload", "2", file, "--from", "client")...)
	if !strings.Contains(out, "is not deal 2's file") {
		t.Fatalf("upload of the wrong file: %s", out)
	}
	p = e2eutil.StartAgora(t, append(append([]string{"provider", "start", "--storage", "--key", "prov", "--listen", fmt.Sprintf("127.0.0.1:%d", ports[3])}, kr...), nodeFlag...)...)
	poll.Until(t, 60*time.Second, "the provider serving again", func() (bool, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", ports[3]))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200, p.Output()
	})
	e2eutil.RunJSON(t, &d, storage("upload", "2", file2, "--from", "client")...)
	if d.ID != 2 || d.Status != "active" || d.Provider.String() != prov.Address {
		t.Fatalf("deal 2 after the upload: %+v", d)
	}
	out = e2eutil.Run(t, storage("get", "2", "-O", back, "--from", "client")...)
	if got, err := os.ReadFile(back); err != nil || string(got) != string(small) {
		t.Fatalf("storage get 2: %v: %s", err, out)
	}
}

func mustAddr(t *testing.T, s string) types.Address {
	t.Helper()
	a, err := types.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
