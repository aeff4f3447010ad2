package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/testutil/testnet"
)

// TestCLI drives a node through the agora binary as an operator would.
func TestCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess CLI test")
	}
	home := filepath.Join(t.TempDir(), "home")
	ports := testnet.FreePorts(t, 3)
	rpc := fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	api := fmt.Sprintf("127.0.0.1:%d", ports[2])
	kr := []string{"--home", home, "--keyring", "test"}

	// keys first, so the client can be funded at genesis
	var alice struct{ Address string }
	runJSON(t, &alice, append([]string{"keys", "add", "alice"}, kr...)...)
	run(t, append([]string{"keys", "add", "prov"}, kr...)...)
	var prov struct{ Address string }
	runJSON(t, &prov, append([]string{"keys", "show", "prov"}, kr...)...)
	if out := runFail(t, append([]string{"keys", "add", "alice"}, kr...)...); !strings.Contains(out, "already exists") {
		t.Fatalf("duplicate key: %s", out)
	}
	run(t, "init", "--home", home, "--keyring", "test", "--chain-id", "agora-cli",
		"--account", alice.Address+"=5000000000", "--account", prov.Address+"=5000000000",
		"--p2p.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", ports[0]), "--rpc.laddr", rpc, "--api.laddr", api,
		"--consensus.timeout_commit", "200ms")
	if out := runFail(t, "init", "--home", home, "--keyring", "test"); !strings.Contains(out, "already holds a node") {
		t.Fatalf("second init: %s", out)
	}
	p := startAgora(t, "start", "--home", home, "--log-level", "warn")
	c, _ := client.New(rpc)
	waitServing(t, c, p, 2)
	// a second process on the same home is refused clearly
	if out := runFail(t, "start", "--home", home, "--api.laddr", "127.0.0.1:0"); !strings.Contains(out, "already running") {
		t.Fatalf("second start: %s", out)
	}

	node := []string{"--node", rpc}
	tx := func(from string, args ...string) map[string]any {
		var res map[string]any
		runJSON(t, &res, append(append(append([]string{"tx"}, args...), "--from", from), append(kr, node...)...)...)
		return res
	}
	tx("alice", "send", prov.Address, "1234")
	var acc struct {
		Balance uint64
		Nonce   uint64
	}
	runJSON(t, &acc, append([]string{"query", "account", prov.Address}, node...)...)
	if acc.Balance != 5_000_001_234 {
		t.Fatalf("provider balance %d", acc.Balance)
	}
	tx("prov", "provider", "bond", "100000000")
	tx("prov", "provider", "register", "--endpoint", "http://127.0.0.1:9000", "--model", "tiny:"+strings.Repeat("ab", 32)+":2048", "--price-input", "5", "--price-output", "9")
	var pv struct {
		Registered bool
		Models     []struct{ Name string }
	}
	runJSON(t, &pv, append([]string{"query", "provider", prov.Address}, node...)...)
	if !pv.Registered || len(pv.Models) != 1 || pv.Models[0].Name != "tiny" {
		t.Fatalf("provider %+v", pv)
	}
	res := tx("alice", "channel", "open", prov.Address, "100000", "1000")
	events := res["events"].(map[string]any)
	if events["channel_id"] != "1" {
		t.Fatalf("open channel events %v", events)
	}
	var v struct{ Signature string }
	runJSON(t, &v, append(append([]string{"tx", "voucher", "1", "4000", "--from", "alice"}, kr...), node...)...)
	tx("prov", "channel", "redeem", "1", "4000", v.Signature)
	var ch struct {
		Redeemed  uint64
		Remaining uint64
	}
	runJSON(t, &ch, append([]string{"query", "channel", "1"}, node...)...)
	if ch.Redeemed != 4000 || ch.Remaining != 96000 {
		t.Fatalf("channel %+v", ch)
	}
	// redeeming the same voucher again is refused with the chain's reason
	out := runFail(t, append(append([]string{"tx", "channel", "redeem", "1", "4000", v.Signature, "--from", "prov"}, kr...), node...)...)
	if !strings.Contains(out, "not above the 4000 already redeemed") || !strings.Contains(out, "bad_voucher") {
		t.Fatalf("double redeem: %s", out)
	}
	// commitments: none yet for epoch 0; a service the chain does not know
	// is refused by name
	var cms []map[string]any
	runJSON(t, &cms, append([]string{"query", "commitments", "0"}, node...)...)
	if len(cms) != 0 {
		t.Fatalf("commitments of epoch 0: %v", cms)
	}
	if out := runFail(t, append([]string{"query", "commitment", "0", prov.Address}, node...)...); !strings.Contains(out, "no commitment by "+prov.Address+" for epoch 0") {
		t.Fatalf("missing commitment: %s", out)
	}
	if out := runFail(t, append([]string{"query", "commitment", "0", prov.Address, "--service", "storage"}, node...)...); !strings.Contains(out, `unknown service "storage"`) {
		t.Fatalf("unknown service: %s", out)
	}
	if out := runFail(t, append(append([]string{"tx", "epoch", "commit", "0", strings.Repeat("ab", 32), "1", "1", "--service", "storage", "--from", "prov"}, kr...), node...)...); !strings.Contains(out, `unknown service "storage"`) {
		t.Fatalf("commit of an unknown service: %s", out)
	}
	// a proof-verified read
	proofOut := run(t, append([]string{"query", "proof", "6163632f" + alice.Address}, node...)...)
	if !strings.Contains(proofOut, "proof verified") {
		t.Fatalf("proof: %s", proofOut)
	}

	// the JSON API and metrics
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + api + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/v1/status"); code != 200 || !strings.Contains(body, `"chain_id": "agora-cli"`) {
		t.Fatalf("status %d %s", code, body)
	}
	if code, body := get("/v1/channel/1"); code != 200 || !strings.Contains(body, `"redeemed": 4000`) {
		t.Fatalf("channel %d %s", code, body)
	}
	if code, body := get("/v1/nope"); code != 404 || !strings.Contains(body, "unknown query path") {
		t.Fatalf("unknown path %d %s", code, body)
	}
	if code, _ := get("/v1/account/zz"); code != 400 {
		t.Fatalf("bad address answered %d", code)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "agora_app_height") || !strings.Contains(body, `agora_app_txs_total{code="ok"}`) || !strings.Contains(body, "cometbft_consensus_height") {
		t.Fatalf("metrics %d: %.2000s", code, body)
	}

	// testnet writes a ready-to-start 4-validator network
	dir := filepath.Join(t.TempDir(), "tn")
	run(t, "testnet", "--validators", "4", "--out", dir, "--base-port", "36656")
	for k := 0; k < 4; k++ {
		for _, f := range []string{"config/genesis.json", "config/agora.toml", "config/priv_validator_key.json", "config/node_key.json", "keyring-test/validator.json"} {
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("node%d", k), f)); err != nil {
				t.Fatal(err)
			}
		}
	}
	g0, _ := os.ReadFile(filepath.Join(dir, "node0", "config", "genesis.json"))
	g3, _ := os.ReadFile(filepath.Join(dir, "node3", "config", "genesis.json"))
	if string(g0) != string(g3) || strings.Count(string(g0), `"cons_pub_key"`) != 4 {
		t.Fatal("testnet genesis not shared or missing validators")
	}
	cfg3, _ := os.ReadFile(filepath.Join(dir, "node3", "config", "agora.toml"))
	if !strings.Contains(string(cfg3), "127.0.0.1:36686") || strings.Count(string(cfg3), "@127.0.0.1:") != 3 {
		t.Fatalf("node3 config:\n%s", cfg3)
	}
}
