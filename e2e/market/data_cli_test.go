package market

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/protocol/blob"
	pdata "github.com/agoranet/agora/protocol/data"
	"github.com/agoranet/agora/testutil/e2eutil"
	"github.com/agoranet/agora/testutil/testnet"
)

// TestDataCLI drives the data market through the agora binary on a real
// node: an owner publishes a directory (as the deterministic tar, whose
// blob ID is the root on chain) hosted by a wasm provider; list and show
// read it back; a buyer off the buyer list is refused at no cost; the
// allowed buyer's grant costs exactly the download price and pays the
// owner exactly the price minus the data fee; an update changes only the
// terms given; a retired dataset sells no grant.
func TestDataCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess CLI test")
	}
	home := filepath.Join(t.TempDir(), "home")
	ports := testnet.FreePorts(t, 3)
	rpc := fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	apiAddr := fmt.Sprintf("127.0.0.1:%d", ports[2])
	kr := []string{"--home", home, "--keyring", "test"}
	var owner, prov, buyer, other struct{ Address string }
	e2eutil.RunJSON(t, &owner, append([]string{"keys", "add", "owner"}, kr...)...)
	e2eutil.RunJSON(t, &prov, append([]string{"keys", "add", "prov"}, kr...)...)
	e2eutil.RunJSON(t, &buyer, append([]string{"keys", "add", "buyer"}, kr...)...)
	e2eutil.RunJSON(t, &other, append([]string{"keys", "add", "other"}, kr...)...)
	e2eutil.Run(t, "init", "--home", home, "--keyring", "test", "--chain-id", "agora-data",
		"--account", owner.Address+"=5000000000", "--account", prov.Address+"=5000000000",
		"--account", buyer.Address+"=5000000000", "--account", other.Address+"=5000000000",
		"--p2p.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", ports[0]), "--rpc.laddr", rpc, "--api.laddr", apiAddr,
		"--consensus.timeout_commit", "200ms")
	p := e2eutil.StartAgora(t, "start", "--home", home, "--log-level", "warn")
	c, _ := client.New(rpc)
	e2eutil.WaitServing(t, c, p, 2)
	node := []string{"--node", rpc}
	data := func(from string, args ...string) map[string]any {
		var res map[string]any
		stdoutJSON(t, &res, append(append(append([]string{"data"}, args...), "--from", from), append(kr, node...)...)...)
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

	dir := filepath.Join(t.TempDir(), "corpus")
	for name, body := range map[string]string{"ca01": "The/at Fulton/np-tl County/nn-tl", "sub/ca02": "Grand/jj-tl jury/nn-tl"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var tarBytes bytes.Buffer
	if err := pdata.TarDir(&tarBytes, dir); err != nil {
		t.Fatal(err)
	}
	root := blob.Of(tarBytes.Bytes())
	module := filepath.Join(t.TempDir(), "wc.wasm")
	if err := os.WriteFile(module, []byte("\x00asm\x01\x00\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	modID := blob.Of([]byte("\x00asm\x01\x00\x00\x00"))

	// A host that is not a registered provider is refused, nothing charged.
	owner0 := balance(owner.Address)
	out := e2eutil.RunFail(t, append(append([]string{"data", "publish", dir, "--host", other.Address, "--run-price", "1", "--from", "owner"}, kr...), node...)...)
	if !strings.Contains(out, "is not a registered provider") || balance(owner.Address) != owner0 {
		t.Fatalf("publish on a non-provider host: %s", out)
	}
	res := data("owner", "publish", dir, "--no-upload", "--host", prov.Address, "--run-price", "2000000", "--download", "--download-price", "1000000",
		"--allow-module", module, "--output-cap", "65536", "--buyer", buyer.Address, "--name", "brown-sample", "--description", "two files", "--licence", "CC0")
	ownerFees := fee(res)
	if res["dataset_id"] != float64(1) || res["root"] != root.String() || res["size"] != float64(tarBytes.Len()) {
		t.Fatalf("publish: %v (want root %s, %d bytes)", res, root, tarBytes.Len())
	}
	type dsView struct {
		ID                      uint64
		Owner, Host, Root, Name string
		Description, Licence    string
		Size                    uint64
		RunPrice                uint64   `json:"run_price"`
		DownloadPrice           uint64   `json:"download_price"`
		OutputCap               uint64   `json:"output_cap"`
		AllowedModules          []string `json:"allowed_modules"`
		Buyers                  []string
		Grants, Earned          uint64
		Retired, Download       bool
	}
	var list []dsView
	e2eutil.RunJSON(t, &list, append([]string{"data", "list"}, node...)...)
	if len(list) != 1 || list[0].ID != 1 || list[0].Root != root.String() || list[0].Size != uint64(tarBytes.Len()) || list[0].Owner != owner.Address || list[0].Host != prov.Address ||
		list[0].Name != "brown-sample" || list[0].RunPrice != 2_000_000 || list[0].DownloadPrice != 1_000_000 || list[0].OutputCap != 65536 ||
		len(list[0].AllowedModules) != 1 || list[0].AllowedModules[0] != modID.String() || len(list[0].Buyers) != 1 || list[0].Buyers[0] != buyer.Address {
		t.Fatalf("list: %+v", list)
	}

	// Not on the buyer list: refused with the chain's reason, nothing charged.
	other0 := balance(other.Address)
	out = e2eutil.RunFail(t, append(append([]string{"data", "buy", "1", "--from", "other"}, kr...), node...)...)
	if !strings.Contains(out, "is not among dataset 1's allowed buyers") || balance(other.Address) != other0 {
		t.Fatalf("buy off the list: %s", out)
	}
	buyer0, ownerMid := balance(buyer.Address), balance(owner.Address)
	res = data("buyer", "buy", "1")
	if res["grant_id"] != float64(1) || res["price"] != float64(1_000_000) {
		t.Fatalf("buy: %v", res)
	}
	if got, want := balance(buyer.Address), buyer0-1_000_000-fee(res); got != want {
		t.Fatalf("buyer %d, want %d", got, want)
	}
	if got, want := balance(owner.Address), ownerMid+1_000_000-1_000_000*500/10000; got != want {
		t.Fatalf("owner %d, want %d (the price minus the 5 %% data fee)", got, want)
	}
	if got, want := balance(owner.Address), owner0-ownerFees+950_000; got != want {
		t.Fatalf("owner %d, want %d", got, want)
	}
	var grants []struct {
		ID    uint64
		Buyer string
		Price uint64
	}
	e2eutil.RunJSON(t, &grants, append([]string{"query", "data", "grants", "1", buyer.Address}, node...)...)
	if len(grants) != 1 || grants[0].Buyer != buyer.Address || grants[0].Price != 1_000_000 {
		t.Fatalf("grants: %+v", grants)
	}

	// What a host asks before serving a download.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ok, err := c.HasGrant(ctx, 1, parseAddr(t, buyer.Address)); err != nil || !ok {
		t.Fatalf("HasGrant(buyer) = %v, %v", ok, err)
	}
	if ok, err := c.HasGrant(ctx, 1, parseAddr(t, other.Address)); err != nil || ok {
		t.Fatalf("HasGrant(other) = %v, %v", ok, err)
	}

	data("owner", "update", "1", "--run-price", "3000000", "--anyone")
	var show struct {
		Dataset dsView
		Grants  []struct{ ID uint64 }
	}
	e2eutil.RunJSON(t, &show, append([]string{"data", "show", "1"}, node...)...)
	d := show.Dataset
	if d.RunPrice != 3_000_000 || len(d.Buyers) != 0 || d.DownloadPrice != 1_000_000 || d.Description != "two files" || d.Licence != "CC0" ||
		len(d.AllowedModules) != 1 || d.Grants != 1 || d.Earned != 950_000 || len(show.Grants) != 1 {
		t.Fatalf("show after update: %+v", show)
	}
	data("owner", "retire", "1")
	other0 = balance(other.Address)
	out = e2eutil.RunFail(t, append(append([]string{"data", "buy", "1", "--from", "other"}, kr...), node...)...)
	if !strings.Contains(out, "dataset 1 is retired: it sells no more grants") || balance(other.Address) != other0 {
		t.Fatalf("buy a retired dataset: %s", out)
	}
	// The node's explorer shows the dataset with its grant.
	var ex struct {
		Dataset struct {
			Retired bool
			Grants  uint64
		}
		Grants []struct{ Buyer string }
		Runs   []struct{ ID uint64 }
	}
	if err := e2eutil.FetchJSON("http://"+apiAddr+"/explorer/api/dataset/1", &ex); err != nil || !ex.Dataset.Retired || ex.Dataset.Grants != 1 ||
		len(ex.Grants) != 1 || ex.Grants[0].Buyer != buyer.Address || ex.Runs == nil || len(ex.Runs) != 0 {
		t.Fatalf("explorer's dataset 1: %+v %v", ex, err)
	}
}

// parseAddr is an address the CLI printed.
func parseAddr(t *testing.T, s string) types.Address {
	t.Helper()
	a, err := types.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
