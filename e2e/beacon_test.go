package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"github.com/agoranet/agora/chain/api"
	"testing"
	"time"

	"github.com/cometbft/cometbft/privval"

	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/node"
	"github.com/agoranet/agora/testutil/testnet"
)

// consKeys reads every node's consensus key from its home.
func consKeys(t *testing.T, nw *testnet.Network) []ed25519.PrivateKey {
	t.Helper()
	var keys []ed25519.PrivateKey
	for _, h := range nw.Homes {
		p := node.Paths{Home: h}
		pv := privval.LoadFilePV(p.PrivValKeyFile(), p.PrivValStateFile())
		keys = append(keys, ed25519.PrivateKey(pv.Key.PrivKey.Bytes()))
	}
	return keys
}

// beaconSeeds returns the beacon seed of epoch n for every subset of keys
// with at least min members.
func beaconSeeds(t *testing.T, chainID string, n uint64, keys []ed25519.PrivateKey, min int) map[string]int {
	t.Helper()
	var all []epochs.Contribution
	for _, k := range keys {
		out, err := epochs.VerifyProof(k.Public().(ed25519.PublicKey), chainID, n, epochs.Prove(k, chainID, n))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, epochs.Contribution{Validator: stake.ConsAddress(k.Public().(ed25519.PublicKey)), Output: out})
	}
	seeds := map[string]int{}
	for mask := 0; mask < 1<<len(all); mask++ {
		var cs []epochs.Contribution
		for i := range all {
			if mask&(1<<i) != 0 {
				cs = append(cs, all[i])
			}
		}
		if len(cs) < min {
			continue
		}
		// address order, as the chain iterates them
		for i := 1; i < len(cs); i++ {
			for j := i; j > 0 && bytes.Compare(cs[j].Validator, cs[j-1].Validator) < 0; j-- {
				cs[j], cs[j-1] = cs[j-1], cs[j]
			}
		}
		seeds[string(epochs.SeedFromBeacon(n, cs))] = len(cs)
	}
	return seeds
}

// TestBeaconFourValidators: on a real network of four validators, the
// epochs' seeds come from the VRF beacon carried in vote extensions, with at
// least three contributors, every node agrees, and each seed is the beacon of
// that many of the validators' keys. The beacon tx shows in the block after
// the first window height.
func TestBeaconFourValidators(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-validator network")
	}
	params := types.DefaultParams()
	params.EpochLength, params.CommitWindow, params.BeaconWindow, params.OpeningWindow = 8, 2, 4, 20
	nw := testnet.New(t, testnet.Options{Validators: 4, Accounts: 1, BlockTime: 150 * time.Millisecond, Params: &params})
	keys := consKeys(t, nw)
	ctx := context.Background()
	for n := uint64(0); n < 2; n++ {
		deadline := int64(n+1)*params.EpochLength + params.CommitWindow
		seedHeight := deadline + 1 + params.BeaconWindow
		for i := range nw.Nodes {
			if err := nw.WaitHeight(i, seedHeight, 90*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		seeds := beaconSeeds(t, nw.ChainID, n, keys, 3)
		var ref []byte
		var contributors uint32
		for i := range nw.Nodes {
			var ep api.EpochView
			if err := nw.Client(i).Query(ctx, "/epoch/"+itoa(n), 0, &ep); err != nil {
				t.Fatal(err)
			}
			if ep.SeedHeight != seedHeight || ep.SeedSource != "vrf" || ep.SeedContributors < 3 {
				t.Fatalf("node %d, epoch %d: seed height %d (want %d), source %q, %d contributors; want vrf from at least 3",
					i, n, ep.SeedHeight, seedHeight, ep.SeedSource, ep.SeedContributors)
			}
			if got, ok := seeds[string(ep.Seed)]; !ok || got != int(ep.SeedContributors) {
				t.Fatalf("node %d, epoch %d: seed %x is not the beacon of %d of the validators' keys", i, n, ep.Seed, ep.SeedContributors)
			}
			if i == 0 {
				ref, contributors = ep.Seed, ep.SeedContributors
			} else if !bytes.Equal(ep.Seed, ref) {
				t.Fatalf("node %d's epoch %d seed %x differs from node 0's %x", i, n, ep.Seed, ref)
			}
		}
		h := deadline + 2
		blk, err := nw.Client(0).RPC().Block(ctx, &h)
		if err != nil {
			t.Fatal(err)
		}
		if len(blk.Block.Txs) == 0 || !types.IsBeaconTx(blk.Block.Txs[0]) {
			t.Fatalf("block %d has no beacon tx first (%d txs)", h, len(blk.Block.Txs))
		}
		bt, err := types.DecodeBeaconTx(blk.Block.Txs[0])
		if err != nil || bt.Epoch != n || len(bt.Entries) < 3 {
			t.Fatalf("block %d beacon tx: %v, %+v", h, err, bt)
		}
		t.Logf("epoch %d: seed %x from %d contributors (%d in block %d's beacon tx)", n, ref, contributors, len(bt.Entries), h)
	}
	top := nw.Height(0)
	for i := range nw.Nodes {
		top = min(top, nw.Height(i))
	}
	assertSameChain(t, nw, top)
}
