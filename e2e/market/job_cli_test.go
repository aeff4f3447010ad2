package market

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/engine/wasm/examples"
	"github.com/agoranet/agora/protocol/blob"
	pjobs "github.com/agoranet/agora/protocol/jobs"
	"github.com/agoranet/agora/testutil/e2eutil"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
)

// TestJobCLI drives the job market through the agora binary on a real
// node: the owner submits an order for a module file, a provider with the
// wasm capability bids, the chain clears the order after the bid window,
// the provider commits its checkpoints, and the owner's and provider's
// balances move by exactly the gas price of the work (the fee pool taking
// its share); refusals carry the chain's reason.
func TestJobCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess CLI test")
	}
	home := filepath.Join(t.TempDir(), "home")
	ports := testnet.FreePorts(t, 3)
	rpc := fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	apiAddr := fmt.Sprintf("127.0.0.1:%d", ports[2])
	kr := []string{"--home", home, "--keyring", "test"}
	var owner, prov struct{ Address string }
	e2eutil.RunJSON(t, &owner, append([]string{"keys", "add", "owner"}, kr...)...)
	e2eutil.RunJSON(t, &prov, append([]string{"keys", "add", "prov"}, kr...)...)
	e2eutil.Run(t, "init", "--home", home, "--keyring", "test", "--chain-id", "agora-jobs",
		"--account", owner.Address+"=5000000000", "--account", prov.Address+"=5000000000",
		"--p2p.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", ports[0]), "--rpc.laddr", rpc, "--api.laddr", apiAddr,
		"--consensus.timeout_commit", "200ms")
	p := e2eutil.StartAgora(t, "start", "--home", home, "--log-level", "warn")
	c, _ := client.New(rpc)
	e2eutil.WaitServing(t, c, p, 2)
	node := []string{"--node", rpc}
	job := func(from string, args ...string) map[string]any {
		var res map[string]any
		e2eutil.RunJSON(t, &res, append(append(append([]string{"job"}, args...), "--from", from), append(kr, node...)...)...)
		return res
	}
	balance := func(addr string) uint64 {
		var acc struct{ Balance uint64 }
		e2eutil.RunJSON(t, &acc, append([]string{"query", "account", addr}, node...)...)
		return acc.Balance
	}
	fee := func(res map[string]any) uint64 { return uint64(res["fee"].(float64)) }

	var tx map[string]any
	e2eutil.RunJSON(t, &tx, append(append([]string{"tx", "provider", "bond", "100000000", "--from", "prov"}, kr...), node...)...)
	e2eutil.RunJSON(t, &tx, append(append([]string{"tx", "provider", "register", "--from", "prov", "--endpoint", "http://127.0.0.1:9000", "--capability", "wasm"}, kr...), node...)...)

	module := filepath.Join(t.TempDir(), "job.wasm")
	if err := os.WriteFile(module, []byte("\x00asm\x01\x00\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	modHash := blob.Of([]byte("\x00asm\x01\x00\x00\x00")) // orders name blobs by protocol/blob ID
	owner0 := balance(owner.Address)
	res := job("owner", "submit", "--module", module, "--gas", "10000000", "--max-price", "2000", "--collateral", "1000000",
		"--bid-window", "10", "--deadline-in", "200", "--checkpoint-interval", "100", "--no-upload")
	ownerFees := fee(res)
	submitHash := res["hash"].(string)
	if ev := res["events"].(map[string]any); ev["order_id"] != "1" {
		t.Fatalf("submit events %v", ev)
	}
	// A bid above the order's price is refused with the chain's reason
	// (in its block: it costs its fee, nothing else).
	prov0 := balance(prov.Address)
	out := e2eutil.RunFail(t, append(append([]string{"job", "bid", "1", "2001", "1000000", "--from", "prov"}, kr...), node...)...)
	if !strings.Contains(out, "price 2001 above order 1's max_price 2000") {
		t.Fatalf("bid above max: %s", out)
	}
	if b := balance(prov.Address); b != prov0 {
		t.Fatalf("a refused bid cost %d", prov0-b)
	}
	provFees := fee(job("prov", "bid", "1", "1500", "1000000"))
	var st struct {
		Order struct {
			Status     string
			ModuleHash string   `json:"module_hash"`
			LeaseIDs   []uint64 `json:"lease_ids"`
		}
		Leases []struct {
			ID, Paid, Budget uint64
			Status           string
		}
	}
	poll.Until(t, 60*time.Second, "order 1 cleared", func() (bool, string) {
		e2eutil.RunJSON(t, &st, append([]string{"job", "status", "1"}, node...)...)
		return st.Order.Status == "running", st.Order.Status
	})
	if st.Order.ModuleHash != hex.EncodeToString(modHash[:]) || len(st.Leases) != 1 || st.Leases[0].Budget != 15_000 {
		t.Fatalf("order after clearing: %+v", st)
	}
	h := func(s string) string { x := sha256.Sum256([]byte(s)); return hex.EncodeToString(x[:]) }
	provFees += fee(job("prov", "checkpoint", "1", "1", "100", "4000000", h("s100")))
	before := balance(prov.Address)
	out = e2eutil.RunFail(t, append(append([]string{"job", "checkpoint", "1", "3", "200", "5000000", h("s200"), "--from", "prov"}, kr...), node...)...)
	if !strings.Contains(out, "checkpoint 3 out of order: lease 1's next is 2") {
		t.Fatalf("out of order: %s", out)
	}
	if b := balance(prov.Address); b != before {
		t.Fatalf("a refused checkpoint cost %d", before-b)
	}
	provFees += fee(job("prov", "checkpoint", "1", "2", "150", "6000000", h("s150"), "--done", "--result", h("result")))
	e2eutil.RunJSON(t, &st, append([]string{"job", "status", "1"}, node...)...)
	const paid = 6_000_000 * 1_500 / 1_000_000 // 9,000 uagr for 6M gas at 1,500 per million
	if st.Order.Status != "done" || st.Leases[0].Paid != paid {
		t.Fatalf("order after the final checkpoint: %+v", st)
	}
	if got, want := balance(owner.Address), owner0-ownerFees-paid; got != want {
		t.Fatalf("owner balance %d, want %d", got, want)
	}
	// The provider: paid minus the 5 % market fee; its collateral is still
	// locked for the challenge window.
	if got, want := balance(prov.Address), prov0-provFees-1_000_000+paid-paid*500/10000; got != want {
		t.Fatalf("provider balance %d, want %d", got, want)
	}
	var list []struct{ ID uint64 }
	e2eutil.RunJSON(t, &list, append(append([]string{"job", "list", "--from", "owner"}, kr...), node...)...)
	if len(list) != 1 || list[0].ID != 1 {
		t.Fatalf("list: %+v", list)
	}
	// The node's explorer names and describes the market's messages.
	var etx struct {
		Msg    string
		Fields map[string]string
	}
	poll.Until(t, 60*time.Second, "the explorer to index the order", func() (bool, string) {
		err := e2eutil.FetchJSON("http://"+apiAddr+"/explorer/api/tx/"+submitHash, &etx)
		return err == nil && etx.Msg == "submit_job", fmt.Sprint(etx, err)
	})
	if etx.Fields["gas_limit"] != "10000000" || etx.Fields["module_hash"] != hex.EncodeToString(modHash[:]) {
		t.Fatalf("explorer's submit_job: %+v", etx)
	}
	var ej struct {
		Order  struct{ Status string }
		Leases []struct {
			CheckpointList []struct{ Index uint64 } `json:"checkpoint_list"`
		}
	}
	if err := e2eutil.FetchJSON("http://"+apiAddr+"/explorer/api/job/1", &ej); err != nil || ej.Order.Status != "done" || len(ej.Leases) != 1 || len(ej.Leases[0].CheckpointList) != 2 {
		t.Fatalf("explorer's job 1: %+v %v", ej, err)
	}
	var q struct{ Status string }
	e2eutil.RunJSON(t, &q, append([]string{"query", "job", "lease", "1"}, node...)...)
	if q.Status != "done" {
		t.Fatalf("query job lease: %+v", q)
	}
}

// stdoutJSON runs agora and decodes its stdout (progress goes to stderr).
func stdoutJSON(t *testing.T, out any, args ...string) {
	t.Helper()
	cmd := exec.Command(agoraBin, append(args, "--output", "json")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("agora %s: %v\n%s%s", strings.Join(args, " "), err, b, stderr.Bytes())
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("agora %s: not JSON: %v\n%s", strings.Join(args, " "), err, b)
	}
}

// TestJobSubmitResultCLI is a newcomer's path through the binary: a
// jobs-only provider (`provider start --wasm`), `job submit --example
// raytrace` (clearing, upload), `job result` (the files, checked against
// the chain), and the image equals a local run's.
func TestJobSubmitResultCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess CLI test")
	}
	home := filepath.Join(t.TempDir(), "home")
	ports := testnet.FreePorts(t, 4)
	rpc := fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	kr := []string{"--home", home, "--keyring", "test"}
	var owner, prov struct{ Address string }
	e2eutil.RunJSON(t, &owner, append([]string{"keys", "add", "owner"}, kr...)...)
	e2eutil.RunJSON(t, &prov, append([]string{"keys", "add", "prov"}, kr...)...)
	e2eutil.Run(t, "init", "--home", home, "--keyring", "test", "--chain-id", "agora-jobs-cli",
		"--account", owner.Address+"=5000000000", "--account", prov.Address+"=5000000000",
		"--p2p.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", ports[0]), "--rpc.laddr", rpc, "--api.laddr", fmt.Sprintf("127.0.0.1:%d", ports[2]),
		"--consensus.timeout_commit", "200ms")
	node := e2eutil.StartAgora(t, "start", "--home", home, "--log-level", "warn")
	c, _ := client.New(rpc)
	e2eutil.WaitServing(t, c, node, 2)
	provAddr := fmt.Sprintf("127.0.0.1:%d", ports[3])
	p := e2eutil.StartAgora(t, append([]string{"provider", "start", "--wasm", "--key", "prov", "--node", rpc, "--listen", provAddr, "--job-price", "800", "--log-level", "warn"}, kr...)...)
	poll.Until(t, 60*time.Second, "the jobs-only provider registered", func() (bool, string) {
		return strings.Contains(p.Output(), "running compute jobs at http://"+provAddr), p.Output()
	})

	var sub struct {
		OrderID  uint64   `json:"order_id"`
		Leases   []uint64 `json:"leases"`
		Uploaded int      `json:"uploaded"`
	}
	stdoutJSON(t, &sub, append([]string{"job", "submit", "--example", "raytrace", "--bid-window", "15", "--from", "owner", "--node", rpc}, kr...)...)
	if sub.OrderID != 1 || len(sub.Leases) != 1 || sub.Uploaded != 1 {
		t.Fatalf("submit: %+v", sub)
	}
	out := filepath.Join(t.TempDir(), "result")
	var res struct {
		Results string
		Status  string
		Files   []struct{ Name, Path string }
	}
	stdoutJSON(t, &res, "job", "result", "1", "--out", out, "--node", rpc)
	var lease struct {
		ResultHash string `json:"result_hash"`
		Price      uint64
	}
	e2eutil.RunJSON(t, &lease, "query", "job", "lease", "1", "--node", rpc)
	if res.Status != "done" || res.Results != lease.ResultHash || lease.Price != 800 {
		t.Fatalf("result %+v, lease %+v", res, lease)
	}
	png, err := os.ReadFile(filepath.Join(out, "out", "render.png"))
	if err != nil {
		t.Fatal(err)
	}
	// The same job here: the order's seed, the CLI's default limits.
	ctx := context.Background()
	mod, err := examples.Build(ctx, "raytrace")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := wasm.NewEngine(ctx, wasm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	m, err := eng.Compile(ctx, mod)
	if err != nil {
		t.Fatal(err)
	}
	local, err := m.Run(ctx, wasm.Job{Seed: pjobs.JobSeed("agora-jobs-cli", 1), Gas: 1_000_000_000, MemoryPages: 256, CheckpointEvery: 1000})
	if err != nil || local.Failure != nil {
		t.Fatalf("local run: %v %v", err, local.Failure)
	}
	for _, b := range local.Outputs {
		if b.Name == "out/render.png" && !bytes.Equal(b.Data, png) {
			t.Fatal("the fetched render.png differs from the local run's")
		}
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatal("render.png is not a PNG")
	}
	p.StopGracefully(t, syscall.SIGTERM, 30*time.Second)
}
