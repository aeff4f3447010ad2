package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/engine/wasm/examples"
	"github.com/agoranet/agora/executor"
	"github.com/agoranet/agora/internal/jobowner"
	"github.com/agoranet/agora/protocol/blob"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
	"github.com/agoranet/agora/train"
	"github.com/agoranet/agora/validator"
)

// TestTrainingJobTamperCaught: training as a compute job on the network.
// Two executors run the same training order (Agora's trainer as a WASM
// job, 4 optimisation steps, a checkpoint every 2); one alters its state
// after step 3. The replicas' checkpoints disagree, the validators'
// worker challenges, the bisection narrows the dispute to the one training
// step 2..3, the validators replay it and vote, and the tampering lease is
// slashed while the honest one finishes with the model the trainer
// computes.
func TestTrainingJobTamperCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e")
	}
	const steps, tamperStep = 4, 3
	p := types.DefaultParams()
	p.EpochLength, p.CommitWindow, p.BeaconWindow = 10, 2, 2
	p.AuditFloorBps, p.AuditCeilingBps = 0, 0
	jp := *p.Jobs
	jp.MoveWindow, jp.VoteWindow, jp.ChallengeWindow, jp.LivenessEpochs = 60, 80, 1000, 100
	p.Jobs = &jp
	nw := testnet.New(t, testnet.Options{Validators: 3, Accounts: 3, Balance: 10_000_000_000, Params: &p, BlockTime: 100 * time.Millisecond, LogLevel: slog.LevelError})
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
	var exs []*executor.Executor
	for i, k := range nw.Accounts[1:] {
		cfg := executor.Config{ChainRPC: rpc, Key: k, DataDir: t.TempDir(), CacheDir: cache, Price: 1000, MaxCollateral: 10_000_000, MaxGas: 1 << 40,
			Listen: "127.0.0.1:0", Register: true, Tick: 100 * time.Millisecond}
		if i == 1 {
			cfg.Tamper = func(lease, step uint64) bool { return step == tamperStep }
		}
		ex, err := executor.New(cfg, quietLog(), prometheus.NewRegistry())
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
	const gas, price, coll = 100_000_000_000, 1_000, 5_000_000
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
	var liarLease, honestLease uint64
	for _, l := range leases {
		if l.Provider.String() == exs[1].Address().String() {
			liarLease = l.ID
		} else {
			honestLease = l.ID
		}
	}
	var d api.JobDisputeView
	poll.Until(t, 300*time.Second, "the tampering trainer's dispute resolved", func() (bool, string) {
		ds, err := c.JobLeaseDisputes(ctx, liarLease)
		if err != nil || len(ds) == 0 {
			return false, fmt.Sprint(ds, err)
		}
		d = ds[0]
		return d.Outcome != "", fmt.Sprintf("phase %s %d..%d moves %d", d.Phase, d.Lo, d.Hi, d.Moves)
	})
	t.Logf("dispute %+v", d)
	if d.Outcome != "challenger" || d.Lo != tamperStep-1 || d.Hi != tamperStep {
		t.Fatalf("dispute: %+v", d)
	}
	for lid, want := range map[uint64]string{liarLease: "slashed", honestLease: "done"} {
		poll.Until(t, 120*time.Second, fmt.Sprint("lease ", lid, " ", want), func() (bool, string) {
			l, err := c.JobLease(ctx, lid)
			return err == nil && l.Status == want, fmt.Sprint(l.Status, err)
		})
	}
	// The honest replica's model is the trainer's: fetched and checked
	// against the chain like any job's results.
	l, err := c.JobLease(ctx, honestLease)
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
	want := nativeTrained(t, corpus, steps, 1)
	if m := got.Outputs["out/model.gguf"]; !bytes.Equal(m, want) {
		t.Fatalf("the honest replica's model (%d bytes) is not the native trainer's (%d bytes)", len(m), len(want))
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
