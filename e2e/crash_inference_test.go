package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
)

// TestInferenceCrashSafety kills the gateway and the provider with SIGKILL
// under load, restarts both, and checks: the gateway never signs a lower
// voucher, no receipt it received is lost, and settlement pays exactly the
// receipts the client holds.
func TestInferenceCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	home := filepath.Join(t.TempDir(), "h")
	ports := testnet.FreePorts(t, 5)
	rpc := fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	provListen := fmt.Sprintf("127.0.0.1:%d", ports[3])
	gwListen := fmt.Sprintf("127.0.0.1:%d", ports[4])
	kr := []string{"--home", home, "--keyring", "test"}
	var pk, ck struct{ Address string }
	runJSON(t, &pk, append([]string{"keys", "add", "provider"}, kr...)...)
	runJSON(t, &ck, append([]string{"keys", "add", "client"}, kr...)...)
	run(t, "init", "--home", home, "--keyring", "test", "--chain-id", "agora-crash2", "--epoch-length", "10",
		"--account", pk.Address+"=1000000000", "--account", ck.Address+"=1000000000",
		"--p2p.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", ports[0]), "--rpc.laddr", rpc,
		"--api.laddr", fmt.Sprintf("127.0.0.1:%d", ports[2]), "--consensus.timeout_commit", "200ms")
	model := filepath.Join(home, "tiny.gguf")
	run(t, "model", "new", "--dim", "64", "--layers", "2", "--heads", "4", "--vocab", "600", "--context", "256", "-o", model)
	nodeP := startAgora(t, "start", "--home", home, "--log-level", "warn")
	c, _ := client.New(rpc)
	waitServing(t, c, nodeP, 2)

	provArgs := append([]string{"provider", "start", "--node", rpc, "--model", model, "--listen", provListen, "--price-input", "1000", "--price-output", "2000", "--concurrency", "2", "--log-level", "warn"}, kr...)
	gwArgs := append([]string{"gateway", "start", "--node", rpc, "--listen", gwListen, "--deposit", "50000000", "--log-level", "warn"}, kr...)
	prov := startAgora(t, provArgs...)
	waitHTTP(t, "http://"+provListen+"/healthz", prov)
	gw := startAgora(t, gwArgs...)
	waitHTTP(t, "http://"+gwListen+"/healthz", gw)

	// load
	var mu sync.Mutex
	var got []string // receipt ids the client received
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"model":"tiny","messages":[{"role":"user","content":"q %d %d"}],"max_tokens":6}`, w, i)
				resp, err := http.Post("http://"+gwListen+"/v1/chat/completions", "application/json", strings.NewReader(body))
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				resp.Body.Close()
				if id := resp.Header.Get(gateway.ReceiptIDHeader); resp.StatusCode == 200 && id != "" {
					mu.Lock()
					got = append(got, id)
					mu.Unlock()
				}
			}
		}(w)
	}
	served := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	// The kills land under load, once it has been served for a while.
	poll.Until(t, 60*time.Second, "20 requests served under load", func() (bool, string) {
		n := served()
		return n >= 20, fmt.Sprintf("%d served", n)
	})
	gw.Cmd.Process.Signal(syscall.SIGKILL)
	prov.Cmd.Process.Signal(syscall.SIGKILL)
	gw.Cmd.Wait()
	prov.Cmd.Wait()
	mu.Lock()
	beforeKill := len(got)
	mu.Unlock()
	if beforeKill < 5 {
		t.Fatalf("only %d requests served before the kill", beforeKill)
	}
	paidBefore := gatewayPaid(t, home)

	// restart both; load continues a little; then stop the load
	prov = startAgora(t, provArgs...)
	waitHTTP(t, "http://"+provListen+"/healthz", prov)
	gw = startAgora(t, gwArgs...)
	waitHTTP(t, "http://"+gwListen+"/healthz", gw)
	poll.Until(t, 60*time.Second, "10 more requests served after the restart", func() (bool, string) {
		n := served()
		return n >= beforeKill+10, fmt.Sprintf("%d served, %d before the kill", n, beforeKill)
	})
	close(stop)
	wg.Wait()

	// every receipt the client saw is held by the gateway
	held := map[string]gateway.StoredReceipt{}
	var billed, after uint64
	for {
		var list struct {
			Data []gateway.StoredReceipt `json:"data"`
		}
		getJSON(t, fmt.Sprintf("http://%s/v1/receipts?limit=1000&after=%d", gwListen, after), &list)
		if len(list.Data) == 0 {
			break
		}
		for _, r := range list.Data {
			held[r.ID] = r
			billed += r.Amount
			after = r.Seq
		}
	}
	mu.Lock()
	for i, id := range got {
		if _, ok := held[id]; !ok {
			t.Fatalf("receipt %s (%d of %d, %d before the kill) the client received is not held by the gateway (%d held)", id, i, len(got), beforeKill, len(held))
		}
	}
	total := len(got)
	mu.Unlock()
	t.Logf("%d requests served (%d before the kill), %d receipts held, billed %d", total, beforeKill, len(held), billed)

	// settlement: the provider is paid exactly the receipts the client holds
	poll.Until(t, 90*time.Second, "the provider to redeem the receipts the client holds", func() (bool, string) {
		redeemed := redeemedBy(t, c, pk.Address)
		if redeemed > billed {
			t.Fatalf("provider redeemed %d, more than the %d of receipts the client holds", redeemed, billed)
		}
		return redeemed == billed, fmt.Sprintf("provider redeemed %d of %d", redeemed, billed)
	})
	// stop the gateway gracefully and check it never signed lower
	gw.Cmd.Process.Signal(syscall.SIGTERM)
	gw.Cmd.Wait()
	if after := gatewayPaid(t, home); after < paidBefore {
		t.Fatalf("voucher signed lower after restart: %d < %d", after, paidBefore)
	}
}

func waitHTTP(t *testing.T, url string, p *proc) {
	t.Helper()
	err := poll.Wait(60*time.Second, func() (bool, string) {
		resp, err := http.Get(url)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	if err != nil {
		t.Fatalf("%s not serving: %v; output:\n%s", url, err, p.Output())
	}
}

// gatewayPaid reads the highest voucher the (stopped) gateway ever signed.
func gatewayPaid(t *testing.T, home string) uint64 {
	t.Helper()
	st, err := gateway.OpenStore(filepath.Join(home, "data", "gateway"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	list, err := st.Channels()
	if err != nil {
		t.Fatal(err)
	}
	var paid uint64
	for _, c := range list {
		paid += c.Paid
	}
	return paid
}
