package executor_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/executor"
	"github.com/agoranet/agora/internal/blobstore"
	"github.com/agoranet/agora/protocol/blob"
	pjobs "github.com/agoranet/agora/protocol/jobs"
	"github.com/agoranet/agora/testutil/jobsim"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
	"github.com/prometheus/client_golang/prometheus"
)

// age sets the modification time of blob id's data file in s to t.
func age(t *testing.T, s *blobstore.Store, id blob.ID, at time.Time) {
	t.Helper()
	found := false
	filepath.WalkDir(s.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == id.String() {
			found = true
			return os.Chtimes(p, at, at)
		}
		return err
	})
	if !found {
		t.Fatalf("blob %s not stored", id)
	}
}

// TestGarbageCollection: a lease's module stays while the lease can be
// challenged, its results while they are fresh (KeepResults blocks after
// it ended); a blob nothing references goes once older than the grace
// period, a fresh one stays.
func TestGarbageCollection(t *testing.T) {
	params := types.DefaultParams()
	params.Jobs.ChallengeWindow = 4
	nw := testnet.New(t, testnet.Options{Accounts: 2, Params: &params})
	c := nw.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const keep = 8
	ex, err := executor.New(executor.Config{ChainRPC: nw.Configs[0].RPC.Laddr, Key: nw.Accounts[1], DataDir: t.TempDir(), Price: 1000,
		MaxCollateral: 10_000_000, Listen: "127.0.0.1:0", Register: true, Tick: 100 * time.Millisecond, KeepResults: keep,
		GCInterval: time.Hour}, quiet(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer ex.Stop()
	st := ex.Store()

	mod := jobsim.CounterModule(5)
	l := waitDone(t, ctx, c, submit(t, ctx, c, nw.Accounts[0], mod, 1_000_000, 5).ID)
	resID := blob.ID(l.ResultHash)
	res, err := st.Get(resID)
	if err != nil {
		t.Fatalf("result list: %v", err)
	}
	list, err := pjobs.DecodeResults(res)
	if err != nil || len(list.Outputs) == 0 {
		t.Fatalf("result list %v: %+v", err, list)
	}
	orphanOld, _ := st.PutBytes([]byte("uploaded once, referenced by nothing"))
	orphanNew, _ := st.PutBytes([]byte("uploaded a moment ago"))
	long := time.Now().Add(-time.Hour)
	for _, id := range []blob.ID{blob.Of(mod), resID, list.Outputs[0].ID, orphanOld} {
		age(t, st, id, long)
	}
	has := func(want map[blob.ID]bool) {
		t.Helper()
		for id, w := range want {
			if st.Has(id) != w {
				t.Fatalf("blob %s stored: %v, want %v", id, st.Has(id), w)
			}
		}
	}

	// Just done: still challengeable, results fresh.
	h := nw.Height(0)
	gs, err := ex.CollectGarbage(ctx, h, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if gs.Blobs != 1 {
		t.Fatalf("collected %+v, want only the old orphan", gs)
	}
	has(map[blob.ID]bool{blob.Of(mod): true, resID: true, list.Outputs[0].ID: true, orphanOld: false, orphanNew: true})

	// Collateral released and KeepResults blocks after the end: nothing
	// references the module or the results any more.
	poll.Until(t, 60*time.Second, "the lease's collateral released and its results stale", func() (bool, string) {
		l, err = c.JobLease(ctx, l.ID)
		return err == nil && l.CollateralReleased && nw.Height(0) >= l.EndedHeight+keep, l.Status
	})
	gs, err = ex.CollectGarbage(ctx, nw.Height(0), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if gs.Blobs != 3 {
		t.Fatalf("collected %+v, want the module, the result list and its output", gs)
	}
	has(map[blob.ID]bool{blob.Of(mod): false, resID: false, list.Outputs[0].ID: false, orphanNew: true})
}
