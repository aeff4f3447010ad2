package e2e

import (
	"context"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/blobtree"
	"github.com/agoranet/agora/chain/types"
	pstorage "github.com/agoranet/agora/protocol/storage"
	"github.com/agoranet/agora/storer"
	"github.com/agoranet/agora/testutil/e2eutil"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
)

// TestStorageEndToEnd: a client makes a deal with a storage-only
// provider (the storer role registering itself), uploads the blob, and the
// storer seals its replica and accepts the deal; epochs pass with its
// proofs on chain and each one paid exactly. The storer is restarted and
// keeps proving from the replica on disk. Then half of the replica's
// bytes are lost on disk: the storer cannot answer the next challenge,
// the chain records the miss at the deadline and slashes miss_slash_bps of
// the collateral to the client.
func TestStorageEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e")
	}
	params := types.DefaultParams()
	params.EpochLength, params.CommitWindow, params.BeaconWindow, params.OpeningWindow = 8, 1, 0, 2
	params.Storage.ProofWindow = 5
	nw := testnet.New(t, testnet.Options{Accounts: 2, Params: &params, BlockTime: 150 * time.Millisecond})
	c := nw.Client(0)
	rpc := nw.Configs[0].RPC.Laddr
	clientKey, provKey := nw.Accounts[0], nw.Accounts[1]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if err := nw.WaitHeight(0, 2, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	start := func() (*storer.Storer, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		s, err := storer.New(storer.Config{ChainRPC: rpc, Key: provKey, DataDir: dir, Listen: "127.0.0.1:0", Register: true,
			Tick: 100 * time.Millisecond, MaxTotal: 1 << 20}, e2eutil.QuietLog(), reg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return s, reg
	}
	s, reg := start()
	pv, err := c.Provider(ctx, s.Address())
	if err != nil || !pv.Registered || len(pv.Models) != 0 {
		t.Fatalf("storer not registered as a storage-only provider: %v %+v", err, pv)
	}

	r := rand.New(rand.NewPCG(19, 19))
	data := make([]byte, 4*blobtree.ChunkSize+5000)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	id := blobtree.BlobID(uint64(len(data)), blobtree.Root(blobtree.SegmentLeaves(data)))
	const epochs, price, collateral = 200, 10_000, 20_000_000
	signer := c.NewSigner(clientKey)
	res, err := signer.Send(ctx, &types.MsgCreateDeal{BlobId: id[:], Size: uint64(len(data)), Epochs: epochs, PricePerEpoch: price,
		Collateral: collateral, Challenges: 16, Provider: s.Address()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events["deal_id"] != "1" {
		t.Fatalf("deal id %q", res.Events["deal_id"])
	}
	chainID, _ := c.ChainID(ctx)
	// A wrong blob is refused by the storer, nothing accepted.
	bad := append([]byte(nil), data...)
	bad[0] ^= 1
	if _, err := pstorage.Put(ctx, http.DefaultClient, s.URL(), 1, pstorage.SignUpload(clientKey, chainID, 1, id[:]), bad); err == nil ||
		!strings.Contains(err.Error(), "the bytes hash to blob") {
		t.Fatalf("upload of wrong bytes: %v", err)
	}
	// An upload not signed by the deal's client is refused.
	if _, err := pstorage.Put(ctx, http.DefaultClient, s.URL(), 1, pstorage.SignUpload(provKey, chainID, 1, id[:]), data); err == nil ||
		!strings.Contains(err.Error(), "deal 1's client is") {
		t.Fatalf("upload by another account: %v", err)
	}
	st, err := pstorage.Put(ctx, http.DefaultClient, s.URL(), 1, pstorage.SignUpload(clientKey, chainID, 1, id[:]), data)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.StorageDeal(ctx, 1)
	if err != nil || d.Status != "active" || d.ReplicaRoot.String() != st.ReplicaRoot {
		t.Fatalf("deal after the upload: %v %+v (storer says root %s)", err, d, st.ReplicaRoot)
	}

	// Three epochs proved and paid.
	poll.Until(t, 60*time.Second, "three proved epochs", func() (bool, string) {
		d, err := c.StorageDeal(ctx, 1)
		return err == nil && d.Proved >= 3, d.Status
	})
	// A restart: the storer reloads its replica and proves on.
	s.Stop()
	s, reg = start()
	defer func() { s.Stop() }()
	proved := mustDeal(t, c, 1).Proved
	poll.Until(t, 60*time.Second, "a proof after the restart", func() (bool, string) {
		return mustDeal(t, c, 1).Proved > proved, ""
	})
	eps, err := c.StorageEpochs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range eps {
		if !e.Proved || e.Paid != price*95/100 || e.Fee != price*5/100 {
			t.Fatalf("epoch %+v: want proved and paid %d (fee %d)", e, price*95/100, price*5/100)
		}
	}
	poll.True(t, 10*time.Second, "the restarted storer counting its proofs", func() bool {
		return metricValue(t, reg, "agora_storer_proofs_sent_total") >= 1
	})

	if d := mustDeal(t, c, 1); d.Missed != 0 {
		t.Fatalf("an honest storer missed: %+v", d)
	}
	// Half the replica's bytes are lost on disk.
	path := storer.ReplicaPath(dir, id)
	rep, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(rep)/2; i++ {
		rep[i] = 0
	}
	if err := os.WriteFile(path, rep, 0o644); err != nil {
		t.Fatal(err)
	}
	var f api.StorageFaultView
	poll.Until(t, 60*time.Second, "a recorded miss", func() (bool, string) {
		fs, err := c.StorageFaults(ctx, 1)
		if err != nil || len(fs) == 0 {
			return false, ""
		}
		f = fs[0]
		return true, ""
	})
	d = mustDeal(t, c, 1)
	if f.Slashed != collateral*params.Storage.MissSlashBps/10000 || f.Refunded != price || f.Consecutive != 1 || f.Provider.String() != s.Address().String() {
		t.Fatalf("fault %+v", f)
	}
	if d.Missed < 1 || d.Locked > collateral-f.Slashed || d.Paid != d.Proved*price*95/100 {
		t.Fatalf("deal after the miss: %+v", d)
	}
	poll.True(t, 10*time.Second, "the storer counting its failure", func() bool {
		return metricValue(t, reg, "agora_storer_proof_failures_total") >= 1
	})
}

func mustDeal(t *testing.T, c interface {
	StorageDeal(context.Context, uint64) (api.StorageDealView, error)
}, id uint64) api.StorageDealView {
	t.Helper()
	d, err := c.StorageDeal(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// metricValue is the value of a counter or gauge registered in reg (0
// when it has not been set).
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			m := mf.GetMetric()[0]
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}
