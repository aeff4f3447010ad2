package executor_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/engine/wasm/examples"
	"github.com/agoranet/agora/executor"
	"github.com/agoranet/agora/internal/blobstore"
	"github.com/agoranet/agora/internal/jobowner"
	"github.com/agoranet/agora/protocol/blob"
	pjobs "github.com/agoranet/agora/protocol/jobs"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
)

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// submit posts an order for mod and uploads it once leased; it returns
// the order's lease.
func submit(t *testing.T, ctx context.Context, c *client.Client, owner ed25519.PrivateKey, mod []byte, gas, interval uint64) api.JobLeaseView {
	t.Helper()
	id := blob.Of(mod)
	const maxPrice = 2000
	per, _ := jobs.Budget(gas, maxPrice)
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.NewSigner(owner).Send(ctx, &types.MsgSubmitJob{ModuleHash: id[:], GasLimit: gas, MemoryPages: 1024, MaxPrice: maxPrice,
		Collateral: 1_000_000, Replication: 1, BidWindow: 2, CheckpointInterval: interval, Deadline: st.SyncInfo.LatestBlockHeight + 1000, Escrow: per})
	if err != nil {
		t.Fatal(err)
	}
	order, _ := strconv.ParseUint(res.Events["order_id"], 10, 64)
	_, leases, err := jobowner.WaitLeases(ctx, c, order, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := jobowner.Upload(ctx, c, owner, order, leases, map[blob.ID][]byte{id: mod}, nil); err != nil {
		t.Fatal(err)
	}
	return leases[0]
}

func waitDone(t *testing.T, ctx context.Context, c *client.Client, lease uint64) api.JobLeaseView {
	t.Helper()
	var l api.JobLeaseView
	poll.Until(t, 150*time.Second, fmt.Sprintf("lease %d done", lease), func() (bool, string) {
		var err error
		l, err = c.JobLease(ctx, lease)
		return err == nil && l.Status == "done", fmt.Sprint(l.Status, l.Checkpoints, err)
	})
	return l
}

// TestTamperedExecutorLosesDispute: an executor whose Tamper hook flips a
// byte after step 3 commits a wrong first checkpoint; the owner challenges
// it and bisects against an honest local run; the executor defends from
// its own states (and serves them for the disputed steps) until one step
// is left, and the validator's vote (the honest post-state) gives the
// challenger the win. A job that runs out of gas is committed as failed:
// a final checkpoint with the zero state hash and a result list naming
// the failure.
func TestTamperedExecutorLosesDispute(t *testing.T) {
	params := types.DefaultParams()
	params.Jobs.ChallengeWindow = 500
	params.Jobs.MoveWindow = 50
	params.EpochLength = 200 // liveness: 2 epochs without a checkpoint (compiling counts, slow under -race)
	nw := testnet.New(t, testnet.Options{Accounts: 2, Params: &params})
	c := nw.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ownerKey, provKey := nw.Accounts[0], nw.Accounts[1]
	mod, err := examples.Build(ctx, "raytrace")
	if err != nil {
		t.Fatal(err)
	}
	const tamperStep = 3
	reg := prometheus.NewRegistry()
	ex, err := executor.New(executor.Config{ChainRPC: nw.Configs[0].RPC.Laddr, Key: provKey, DataDir: t.TempDir(), Price: 1000, MaxCollateral: 10_000_000,
		Listen: "127.0.0.1:0", Register: true, Tick: 100 * time.Millisecond,
		Tamper: func(lease, step uint64) bool { return lease == 1 && step == tamperStep }}, quiet(), reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer ex.Stop()

	// An upload for an order not leased to this executor (too cheap for
	// it: it never bids) is refused, and nothing is stored.
	{
		id := blob.Of(mod)
		st, _ := c.Status(ctx)
		res, err := c.NewSigner(ownerKey).Send(ctx, &types.MsgSubmitJob{ModuleHash: id[:], GasLimit: 1_000_000, MemoryPages: 16, MaxPrice: 500,
			Collateral: 1_000_000, Replication: 1, BidWindow: 50, CheckpointInterval: 1, Deadline: st.SyncInfo.LatestBlockHeight + 1000, Escrow: 500})
		if err != nil {
			t.Fatal(err)
		}
		order, _ := strconv.ParseUint(res.Events["order_id"], 10, 64)
		chainID, _ := c.ChainID(ctx)
		bc := &blobstore.Client{Base: ex.URL(), Header: func(r *http.Request, id blob.ID) error {
			r.Header.Set(pjobs.UploadHeader, pjobs.SignUpload(ownerKey, chainID, order, id))
			return nil
		}}
		err = bc.Upload(ctx, id, bytes.NewReader(mod), int64(len(mod)))
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("order %d has no lease to this provider", order)) {
			t.Fatalf("upload for an order not leased here: %v", err)
		}
		if ex.Store().Has(id) {
			t.Fatal("a refused upload was stored")
		}
		if _, err := c.NewSigner(ownerKey).Send(ctx, &types.MsgCancelJob{OrderId: order}); err != nil {
			t.Fatal(err)
		}
	}

	const gas, interval = 20_000_000_000, 5
	l := waitDone(t, ctx, c, submit(t, ctx, c, ownerKey, mod, gas, interval).ID)
	if l.ID != 1 || l.Checkpoints != 3 || l.OrderID != 2 {
		t.Fatalf("lease %+v", l)
	}

	// Out of gas: a failed job, committed as protocol/jobs says (before
	// the dispute, which slashes the executor below the bond bids need).
	fl := waitDone(t, ctx, c, submit(t, ctx, c, ownerKey, mod, 50_000_000, interval).ID)
	cps, _ := c.JobCheckpoints(ctx, fl.ID)
	last := cps[len(cps)-1]
	if !last.Done || !bytes.Equal(last.StateHash, pjobs.FailedState[:]) || last.GasUsed != 50_000_000 {
		t.Fatalf("failed job's final checkpoint %+v", last)
	}
	r, err := jobowner.Fetch(ctx, c, fl, "")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Failed || !bytes.Contains(r.Outputs[pjobs.FailureOutput], []byte("out of gas")) {
		t.Fatalf("failed job's results: %+v %q", r.List, r.Outputs[pjobs.FailureOutput])
	}

	// The honest states of steps 0..5.
	eng, err := wasm.NewEngine(ctx, wasm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	m, err := eng.Compile(ctx, mod)
	if err != nil {
		t.Fatal(err)
	}
	chainID, _ := c.ChainID(ctx)
	in, err := m.Start(ctx, wasm.Job{Seed: pjobs.JobSeed(chainID, l.OrderID), Gas: gas, MemoryPages: 1024, CheckpointEvery: interval})
	if err != nil {
		t.Fatal(err)
	}
	honest := [][32]byte{in.StateHash()}
	for i := 0; i < interval; i++ {
		if _, err := in.Step(ctx); err != nil {
			t.Fatal(err)
		}
		honest = append(honest, in.StateHash())
	}
	in.Close(ctx)
	cps, _ = c.JobCheckpoints(ctx, l.ID)
	if bytes.Equal(cps[0].StateHash, honest[interval][:]) {
		t.Fatal("the tampered checkpoint matches the honest state: the hook did nothing")
	}

	// The owner challenges checkpoint 1 (steps 0..5).
	owner := c.NewSigner(ownerKey)
	res, err := owner.Send(ctx, &types.MsgChallengeCheckpoint{LeaseId: l.ID, Index: 1})
	if err != nil {
		t.Fatal(err)
	}
	disputeID, _ := strconv.ParseUint(res.Events["dispute_id"], 10, 64)
	if disputeID == 0 {
		t.Fatalf("challenge events %v", res.Events)
	}
	var d api.JobDisputeView
	poll.Until(t, 30*time.Second, "the executor's bisect move", func() (bool, string) {
		d, err = c.JobDispute(ctx, disputeID)
		return err == nil && d.Phase == "pick", fmt.Sprint(d.Phase, err)
	})
	// n = min(k, 5) = 5 parts: the hashes at steps 1..4, from its states.
	if len(d.Hashes) != 4 {
		t.Fatalf("dispute %+v", d)
	}
	for j, h := range d.Hashes {
		step := j + 1
		want := step < tamperStep
		if got := bytes.Equal(h, honest[step][:]); got != want {
			t.Fatalf("the defender's hash at step %d agrees with the honest run: %v, want %v", step, got, want)
		}
	}
	// It serves a disputed step's state, which hashes to what it claimed.
	resp, err := http.Get(ex.URL() + pjobs.StatePath(l.ID, 2))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var s wasm.State
	if err := s.UnmarshalBinary(b); err != nil || s.Hash() != honest[2] {
		t.Fatalf("served state at step 2: %v (hash matches: %v)", err, err == nil && s.Hash() == honest[2])
	}
	// The first part whose end the challenger disputes: steps 2..3.
	if _, err := owner.Send(ctx, &types.MsgPickInterval{DisputeId: disputeID, Part: tamperStep - 1}); err != nil {
		t.Fatal(err)
	}
	d, _ = c.JobDispute(ctx, disputeID)
	if d.Phase != "vote" || d.Lo != tamperStep-1 || d.Hi != tamperStep {
		t.Fatalf("after the pick: %+v", d)
	}
	if _, err := c.NewSigner(nw.Operators[0]).Send(ctx, &types.MsgVoteStep{DisputeId: disputeID, PostStateHash: honest[tamperStep][:]}); err != nil {
		t.Fatal(err)
	}
	d, _ = c.JobDispute(ctx, disputeID)
	if d.Phase != "resolved" || d.Outcome != jobs.OutcomeChallenger {
		t.Fatalf("resolved dispute: %+v", d)
	}
	if got := counter(t, reg, "agora_executor_dispute_moves_total"); got != 1 {
		t.Fatalf("dispute moves metric %v", got)
	}

}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}

// TestConcurrencyLimitQueues: with one slot, a second lease waits
// "queued" (its blobs in) while the first runs, and runs once the first
// is done. The first job is held mid-run by the test-only hook, so the
// overlap does not depend on timing.
func TestConcurrencyLimitQueues(t *testing.T) {
	params := types.DefaultParams()
	params.EpochLength = 200 // liveness: the held job commits nothing meanwhile
	nw := testnet.New(t, testnet.Options{Accounts: 2, Params: &params})
	c := nw.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mod, err := examples.Build(ctx, "raytrace")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	reg := prometheus.NewRegistry()
	ex, err := executor.New(executor.Config{ChainRPC: nw.Configs[0].RPC.Laddr, Key: nw.Accounts[1], DataDir: t.TempDir(), Price: 1000, MaxCollateral: 10_000_000,
		MaxConcurrent: 1, Listen: "127.0.0.1:0", Register: true, Tick: 100 * time.Millisecond,
		Tamper: func(lease, step uint64) bool {
			if lease == 1 && step == 1 {
				<-release // hold the first job (and its slot) after its first step
			}
			return false
		}}, quiet(), reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer ex.Stop()
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	status := func(lease uint64) pjobs.LeaseStatus {
		var st pjobs.LeaseStatus
		resp, err := http.Get(ex.URL() + pjobs.LeasePath(lease))
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		return st
	}
	first := submit(t, ctx, c, nw.Accounts[0], mod, 20_000_000_000, 5)
	poll.Until(t, 30*time.Second, "the first job running", func() (bool, string) {
		st := status(first.ID)
		return st.Phase == "running", fmt.Sprintf("%+v", st)
	})
	second := submit(t, ctx, c, nw.Accounts[0], append(append([]byte(nil), mod...), 0, 0, 0, 0, 0, 0, 0, 0, 0), 20_000_000_000, 5)
	poll.Until(t, 30*time.Second, "the second job queued", func() (bool, string) {
		st := status(second.ID)
		return st.Phase == "queued", fmt.Sprintf("%+v", st)
	})
	if r, q := gauge(t, reg, "agora_executor_jobs_running"), gauge(t, reg, "agora_executor_jobs_queued"); r != 1 || q != 1 {
		t.Fatalf("running %v, queued %v; want 1 and 1", r, q)
	}
	if st := status(first.ID); st.Phase != "running" || st.Committed != 0 {
		t.Fatalf("the first job while held: %+v", st)
	}
	close(release)
	released = true
	waitDone(t, ctx, c, first.ID)
	waitDone(t, ctx, c, second.ID)
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}
