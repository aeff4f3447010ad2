package market

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/engine/wasm/examples"
	"github.com/agoranet/agora/executor"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/internal/jobowner"
	"github.com/agoranet/agora/protocol/blob"
	"github.com/agoranet/agora/provider"
	"github.com/agoranet/agora/testutil/e2eutil"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
	"github.com/agoranet/agora/train"
	"github.com/agoranet/agora/validator"
)

// TestTrainingJobOnTheNetwork: training as a compute job, from the order
// to a served model. Three executors, two training orders (Agora's trainer
// as a WASM job, 4 optimisation steps, a checkpoint every 2), each run by
// two replicas:
//   - order A: the honest executor and one that alters its state after
//     step 3: the replicas disagree, the validators' worker challenges, the
//     bisection narrows the dispute to the one training step 2..3, the
//     validators replay it and vote, the liar is slashed;
//   - order B: the honest executor and one that trains on other data (the
//     corpus reversed): its first checkpoint already differs (the data
//     cursor and the corpus are in the hashed state), the bisection ends at
//     step 0..1, the liar is slashed.
//
// Then the honest model of order A is fetched (byte-identical to the
// native trainer's), registered on chain with its provenance (the chain
// checks the job's own sha256 of the file against the committed result
// list; order B's honest replica, the same bytes, registers a second
// record), served by an inference provider through the gateway, and the
// provider's receipts for it are audited by re-execution on the exact path.
func TestTrainingJobOnTheNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e")
	}
	const steps, tamperStep = 4, 3
	p := types.DefaultParams()
	// 100 ms blocks: the window gives a provider's commit 2 s, room for a
	// loaded CI machine (two blocks were missed there once).
	p.EpochLength, p.CommitWindow, p.BeaconWindow = 10, 20, 2
	// Every receipt and checkpoint is sampled (one step re-executed per
	// checkpoint): the served model's receipts must be audited here.
	p.AuditFloorBps, p.AuditCeilingBps = 10000, 10000
	p.OpeningWindow = 2000
	jp := *p.Jobs
	// A bisection move re-executes a training step (seconds on a loaded
	// machine): 30 s a move, 40 s a vote at 100 ms blocks (a 6 s move
	// window was missed once in CI, and the defender won by default).
	jp.MoveWindow, jp.VoteWindow, jp.ChallengeWindow, jp.LivenessEpochs = 300, 400, 1000, 100
	p.Jobs = &jp
	nw := testnet.New(t, testnet.Options{Validators: 3, Accounts: 6, Balance: 10_000_000_000, Params: &p, BlockTime: 100 * time.Millisecond, LogLevel: slog.LevelError})
	if err := nw.WaitHeight(0, 2, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stopped []chan struct{}
	defer func() {
		cancel()
		for _, ch := range stopped {
			<-ch
		}
	}()
	// One compilation cache for every engine here (as agora up shares one
	// between its executors and its validator): the 5 MB module compiles once.
	cache := t.TempDir()
	mod, err := examples.Build(ctx, "train")
	if err != nil {
		t.Fatal(err)
	}
	// Compiled once ahead (under -race wazero's compiler takes ~25 s on it),
	// as a provider that ran the module before has it in its cache.
	eng, err := wasm.NewEngine(ctx, wasm.Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Compile(ctx, mod); err != nil {
		t.Fatal(err)
	}
	eng.Close(ctx)
	for i, op := range nw.Operators {
		vc := nw.Client(i)
		signer := vc.NewSigner(op)
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("validator", i)
		jv, err := validator.NewJobVerifier(ctx, vc, signer, validator.JobOptions{CacheDir: cache}, nil, log)
		if err != nil {
			t.Fatal(err)
		}
		a, err := validator.NewAuditor(vc, nil)
		if err != nil {
			t.Fatal(err)
		}
		a.FetchRegistered(t.TempDir(), 0) // the served trained model: fetched from the registry
		ch := make(chan struct{})
		stopped = append(stopped, ch)
		go func() {
			defer close(ch)
			defer jv.Close(context.Background())
			validator.NewWorker(vc, a, signer, nil, log).WithJobs(jv).WithInterval(100 * time.Millisecond).Run(ctx)
		}()
	}
	c := nw.Client(0)
	rpc := nw.Configs[0].RPC.Laddr
	// Which executor runs which order follows from the bids: order A asks
	// for collateral 5,000,000 at most 1,000 uagr/Mgas, order B 6,000,000
	// at most 2,000. The honest executor bids on both; the tampering one
	// cannot lock B's collateral; the other-data one asks more than A pays.
	const collA, collB, priceA, priceB = 5_000_000, 6_000_000, 1_000, 2_000
	var exs []*executor.Executor
	for i, k := range nw.Accounts[1:4] {
		cfg := executor.Config{ChainRPC: rpc, Key: k, DataDir: t.TempDir(), CacheDir: cache, Price: priceA, MaxCollateral: 10_000_000, MaxGas: 1 << 40,
			Listen: "127.0.0.1:0", Register: true, Tick: 100 * time.Millisecond}
		switch i {
		case 1:
			cfg.MaxCollateral = collA
			cfg.Tamper = func(lease, step uint64) bool { return step == tamperStep }
		case 2:
			cfg.Price = priceB
			cfg.OtherData = func(uint64) bool { return true }
		}
		ex, err := executor.New(cfg, e2eutil.QuietLog(), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		if err := ex.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer ex.Stop()
		exs = append(exs, ex)
	}
	owner := c.NewSigner(nw.Accounts[0])
	corpus := []byte(strings.Repeat("the quick brown fox jumps over the lazy dog. a stitch in time saves nine. "+
		"every good boy deserves fruit, and the early bird catches the worm. ", 30))
	mid, cid := blob.Of(mod), blob.Of(corpus)
	const gas = 100_000_000_000
	submit := func(price, coll uint64) (uint64, []api.JobLeaseView) {
		per, _ := jobs.Budget(gas, price)
		res, err := owner.Send(ctx, &types.MsgSubmitJob{ModuleHash: mid[:], InputHashes: [][]byte{cid[:]}, InputNames: []string{"corpus.txt"},
			Args: []string{"tiny", fmt.Sprint(steps), "1"}, GasLimit: gas, MemoryPages: 2048, MaxPrice: price,
			Deadline: nw.Height(0) + 3000, Collateral: coll, Replication: 2, BidWindow: 3, CheckpointInterval: 2, Escrow: 2 * per})
		if err != nil {
			t.Fatal(err)
		}
		var id uint64
		fmt.Sscan(res.Events["order_id"], &id)
		_, leases, err := jobowner.WaitLeases(ctx, c, id, 100*time.Millisecond)
		if err != nil || len(leases) != 2 {
			t.Fatal(err, leases)
		}
		if err := jobowner.Upload(ctx, c, nw.Accounts[0], id, leases, map[blob.ID][]byte{mid: mod, cid: corpus}, nil); err != nil {
			t.Fatal(err)
		}
		return id, leases
	}
	_, leasesA := submit(priceA, collA)
	_, leasesB := submit(priceB, collB)
	split := func(leases []api.JobLeaseView, liar *executor.Executor) (liarLease, honestLease uint64) {
		for _, l := range leases {
			switch l.Provider.String() {
			case liar.Address().String():
				liarLease = l.ID
			case exs[0].Address().String():
				honestLease = l.ID
			}
		}
		if liarLease == 0 || honestLease == 0 {
			t.Fatalf("leases %+v: want one to %s and one to %s", leases, exs[0].Address(), liar.Address())
		}
		return liarLease, honestLease
	}
	liarA, honestA := split(leasesA, exs[1])
	liarB, honestB := split(leasesB, exs[2])
	for _, c0 := range []struct {
		name   string
		lease  uint64
		lo, hi uint64
	}{{"the tampering trainer", liarA, tamperStep - 1, tamperStep}, {"the other-data trainer", liarB, 0, 1}} {
		var d api.JobDisputeView
		poll.Until(t, 300*time.Second, c0.name+"'s dispute resolved", func() (bool, string) {
			ds, err := c.JobLeaseDisputes(ctx, c0.lease)
			if err != nil || len(ds) == 0 {
				return false, fmt.Sprint(ds, err)
			}
			d = ds[0]
			return d.Outcome != "", fmt.Sprintf("phase %s %d..%d moves %d", d.Phase, d.Lo, d.Hi, d.Moves)
		})
		t.Logf("%s: dispute %+v", c0.name, d)
		if d.Outcome != "challenger" || d.Lo != c0.lo || d.Hi != c0.hi {
			t.Fatalf("%s's dispute: %+v, want lost by the defender at step %d..%d", c0.name, d, c0.lo, c0.hi)
		}
	}
	// The other-data trainer really trained (its first checkpoint is a
	// state after 2 steps, not a failure): it was caught for its data.
	if cps, err := c.JobCheckpoints(ctx, liarB); err != nil || len(cps) == 0 || cps[0].Steps != 2 || bytes.Equal(cps[0].StateHash, make([]byte, 32)) {
		t.Fatalf("the other-data trainer's checkpoints %+v (%v): want a trained state after step 2", cps, err)
	}
	for lid, want := range map[uint64]string{liarA: "slashed", liarB: "slashed", honestA: "done", honestB: "done"} {
		poll.Until(t, 120*time.Second, fmt.Sprint("lease ", lid, " ", want), func() (bool, string) {
			l, err := c.JobLease(ctx, lid)
			return err == nil && l.Status == want, fmt.Sprint(l.Status, err)
		})
	}
	// The honest replica's model is the trainer's: fetched and checked
	// against the chain like any job's results.
	l, err := c.JobLease(ctx, honestA)
	if err != nil {
		t.Fatal(err)
	}
	got, err := jobowner.Fetch(ctx, c, l, "")
	if err != nil || got.Failed {
		t.Fatal(err, got)
	}
	if !strings.Contains(string(got.Outputs["stdout"]), fmt.Sprintf("step %d/%d loss", steps, steps)) {
		t.Fatalf("stdout %s", got.Outputs["stdout"])
	}
	model := got.Outputs["out/model.gguf"]
	if want := nativeTrained(t, corpus, steps, 1); !bytes.Equal(model, want) {
		t.Fatalf("the honest replica's model (%d bytes) is not the native trainer's (%d bytes)", len(model), len(want))
	}

	// Registered with its provenance. A slashed lease registers nothing.
	reg, err := got.ModelRegistration("out/model.gguf", "tiny-e2e")
	if err != nil {
		t.Fatal(err)
	}
	bad := proto.Clone(reg).(*types.MsgRegisterModel)
	bad.LeaseId = liarA
	if _, err := owner.Send(ctx, bad); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("lease %d did not succeed (status slashed)", liarA)) {
		t.Fatalf("registering the slashed lease's model: %v", err)
	}
	if _, err := owner.Send(ctx, reg); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(model)
	rec, err := c.TrainedModelRecord(ctx, sum[:], honestA)
	if err != nil {
		t.Fatal(err)
	}
	// Order B's honest replica wrote the same bytes: its registration is a
	// second record of the hash (records are keyed by sha256 and lease),
	// listed after order A's; the same lease again is refused.
	lb, err := c.JobLease(ctx, honestB)
	if err != nil {
		t.Fatal(err)
	}
	gotB, err := jobowner.Fetch(ctx, c, lb, "")
	if err != nil || gotB.Failed || !bytes.Equal(gotB.Outputs["out/model.gguf"], model) {
		t.Fatalf("order B's honest model: %v (failed %v)", err, gotB != nil && gotB.Failed)
	}
	regB, err := gotB.ModelRegistration("out/model.gguf", "tiny-e2e-b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Send(ctx, regB); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Send(ctx, reg); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("model %x is already registered from lease %d", sum, honestA)) {
		t.Fatalf("registering lease %d's model twice: %v", honestA, err)
	}
	if recs, err := c.TrainedModelRecords(ctx, sum[:]); err != nil || len(recs) != 2 || recs[0].LeaseID != honestA || recs[1].LeaseID != honestB ||
		recs[1].Name != "tiny-e2e-b" || string(recs[1].BlobID) != string(rec.BlobID) {
		t.Fatalf("records of %x: %+v (%v), want leases %d and %d", sum, recs, err, honestA, honestB)
	}
	mb := blob.Of(model)
	if rec.LeaseID != honestA || rec.LeaseStatus != "done" || rec.Trainer.String() != exs[0].Address().String() ||
		string(rec.ModuleHash) != string(mid[:]) || len(rec.InputHashes) != 1 || string(rec.InputHashes[0]) != string(cid[:]) ||
		rec.Checkpoints != 2 || rec.Steps != steps || string(rec.StateHash) != string(l.StateHash) ||
		string(rec.BlobID) != string(mb[:]) || rec.Size != uint64(len(model)) || strings.Join(rec.Args, ",") != fmt.Sprintf("tiny,%d,1", steps) {
		t.Fatalf("registered model: %+v", rec)
	}

	// Served by an inference provider, through the gateway; its receipts
	// name the registered hash and are audited by re-execution.
	dir := t.TempDir()
	path := filepath.Join(dir, "brown-tiny.gguf")
	if err := os.WriteFile(path, model, 0o644); err != nil {
		t.Fatal(err)
	}
	be, err := provider.NewNativeBackend([]string{path}, native.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	prov, err := provider.New(provider.Config{ChainRPC: rpc, Key: nw.Accounts[4], Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "provider"),
		PriceIn: 1000, PriceOut: 2000, Concurrency: 2, Tick: 100 * time.Millisecond}, be, e2eutil.QuietLog(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := prov.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer prov.Stop()
	gw, err := gateway.New(gateway.Config{ChainRPC: rpc, Key: nw.Accounts[5], Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "gateway"),
		Deposit: 5_000_000, ChannelBlocks: 400, Refresh: 200 * time.Millisecond}, e2eutil.QuietLog(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer gw.Stop()
	pv, err := c.Provider(ctx, prov.Address())
	if err != nil || len(pv.Models) != 1 || string(pv.Models[0].Hash) != string(sum[:]) {
		t.Fatalf("the provider's offer %+v (%v) does not name the registered model %x", pv.Models, err, sum)
	}
	oa := openai.NewClient(option.WithBaseURL(gw.URL()+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	poll.Until(t, 60*time.Second, "the gateway routes brown-tiny", func() (bool, string) {
		res, err := oa.Completions.New(ctx, openai.CompletionNewParams{Model: "brown-tiny",
			Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("the quick brown")}, MaxTokens: openai.Int(8)})
		if err != nil {
			return false, err.Error()
		}
		return len(res.Choices) == 1 && res.Usage.CompletionTokens > 0, fmt.Sprintf("%+v", res)
	})
	var list struct {
		Data []gateway.StoredReceipt `json:"data"`
	}
	e2eutil.GetJSON(t, gw.URL()+"/v1/receipts", &list)
	if len(list.Data) == 0 || list.Data[0].Model != "brown-tiny" || list.Data[0].Provider != prov.Address().String() {
		t.Fatalf("receipts %+v: want brown-tiny's from %s", list.Data, prov.Address())
	}
	e := list.Data[0].Epoch
	// An auditor given no model file: it fetches the registered model from
	// its trainer (checked against the record's blob ID and sha256).
	aud, err := validator.NewAuditor(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer aud.Close()
	fetched := t.TempDir()
	aud.FetchRegistered(fetched, 0)
	var fs []validator.Finding
	poll.Until(t, 120*time.Second, fmt.Sprintf("epoch %d's receipts audited", e), func() (bool, string) {
		fs, err = aud.AuditEpoch(ctx, e)
		if err != nil {
			return false, err.Error()
		}
		for _, f := range fs {
			if f.Provider == prov.Address().String() {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d findings, none of %s", len(fs), prov.Address())
	})
	for _, f := range fs {
		if f.Provider == prov.Address().String() && !f.OK {
			t.Fatalf("the served trained model failed its audit: %+v", f)
		}
	}
	if b, err := os.ReadFile(filepath.Join(fetched, fmt.Sprintf("%x.gguf", sum))); err != nil || !bytes.Equal(b, model) {
		t.Fatalf("the auditor's fetched copy of the registered model: %d bytes, %v", len(b), err)
	}
}

// nativeTrained is the model `agora train --preset tiny` writes for corpus
// (one file), steps and seed.
func nativeTrained(t *testing.T, corpus []byte, steps int, seed uint64) []byte {
	t.Helper()
	p := train.Presets["tiny"]
	cfg, hyp := p.Config, p.Hyper
	hyp.Steps, hyp.Seed = steps, seed
	hyp.Warmup = min(hyp.Warmup, max(steps/10, 1))
	tok, err := train.Tokenizer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ids := tok.Encode(string(corpus), true, false)
	cut := int(float64(len(ids)) * (1 - 0.1))
	tr, err := train.New(cfg, hyp, train.NewData(ids[:cut], cfg.SeqLen, seed), 2)
	if err != nil {
		t.Fatal(err)
	}
	for range steps {
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := tr.WriteGGUFTo(&b, gguf.F32, "agora-trained-tiny"); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
