package app

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"sort"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtproto "github.com/cometbft/cometbft/api/cometbft/types/v1"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519/extra/ecvrf"

	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// vnet is a network of apps, one per validator, each holding its validator's
// consensus key, driven through the whole ABCI 2.0 cycle as CometBFT drives
// it: PrepareProposal (with the previous height's extended commit),
// ProcessProposal on every node, ExtendVote and every other node's
// VerifyVoteExtension, FinalizeBlock and Commit. Every node must end every
// block with the same app hash.
type vnet struct {
	t      *testing.T
	apps   []*App
	cons   []ed25519.PrivateKey
	params types.Params
	height int64
	last   abci.ExtendedCommitInfo // the extended commit of `height`
	nonce  uint64                  // the user account's
	// silent validators send empty extensions (they withhold their contribution).
	silent map[int]bool
}

func consKey(i int) ed25519.PrivateKey { return key(fmt.Sprintf("beacon-cons-%d", i)) }

func consAddr(k ed25519.PrivateKey) []byte {
	h := sha256.Sum256(k.Public().(ed25519.PublicKey))
	return h[:20]
}

// newVnet starts n validators with equal stake; withKeys false gives them no
// consensus key (a node that cannot extend its votes).
func newVnet(t *testing.T, n int, withKeys bool, adjust func(*types.Params)) *vnet {
	t.Helper()
	p := types.DefaultParams()
	p.EpochLength, p.CommitWindow, p.BeaconWindow, p.OpeningWindow = 10, 2, 4, 3
	if adjust != nil {
		adjust(&p)
	}
	g := types.Genesis{Params: p, Accounts: []types.GenesisAccount{{Address: addrOf(key("user")), Balance: 1_000_000_000_000}}}
	v := &vnet{t: t, params: p, silent: map[int]bool{}}
	for i := 0; i < n; i++ {
		k := consKey(i)
		v.cons = append(v.cons, k)
		g.Validators = append(g.Validators, types.GenesisValidator{
			Operator: addrOf(key(fmt.Sprintf("beacon-op-%d", i))), ConsPubKey: types.HexBytes(k.Public().(ed25519.PublicKey)), Bonded: p.MinValidatorStake,
		})
	}
	bz, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		tree, err := store.OpenMemTree()
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(tree, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if withKeys {
			if err := a.SetBeaconKey(v.cons[i]); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.InitChain(context.Background(), &abci.InitChainRequest{ChainId: testChain, AppStateBytes: bz, InitialHeight: 1}); err != nil {
			t.Fatal(err)
		}
		v.apps = append(v.apps, a)
	}
	return v
}

// proposer is the node proposing the next height (round robin).
func (v *vnet) proposer() int { return int(v.height+1) % len(v.apps) }

func (v *vnet) hash(variant byte) []byte {
	h := sha256.Sum256([]byte{byte(v.height + 1), byte((v.height + 1) >> 8), variant})
	return h[:]
}

// prepare is node p's proposal for the next height.
func (v *vnet) prepare(p int, txs ...[]byte) [][]byte {
	v.t.Helper()
	res, err := v.apps[p].PrepareProposal(context.Background(), &abci.PrepareProposalRequest{
		MaxTxBytes: 1 << 20, Txs: txs, LocalLastCommit: v.last, Height: v.height + 1,
		Time: time.Unix(1_700_000_000+v.height+1, 0), ProposerAddress: consAddr(v.cons[p]),
	})
	if err != nil {
		v.t.Fatal(err)
	}
	return res.Txs
}

// process returns how many nodes accept a proposal of txs for the next height.
func (v *vnet) process(txs [][]byte) int {
	v.t.Helper()
	ok := 0
	for _, a := range v.apps {
		res, err := a.ProcessProposal(context.Background(), &abci.ProcessProposalRequest{Txs: txs, Height: v.height + 1, Hash: v.hash(0)})
		if err != nil {
			v.t.Fatal(err)
		}
		if res.Status == abci.PROCESS_PROPOSAL_STATUS_ACCEPT {
			ok++
		}
	}
	return ok
}

// decide commits txs as the next block on every node: each extends its
// precommit, every other node verifies the extension, then all finalize and
// commit. It returns node 0's FinalizeBlock response.
func (v *vnet) decide(txs [][]byte, hash []byte, at time.Time) *abci.FinalizeBlockResponse {
	v.t.Helper()
	ctx := context.Background()
	h := v.height + 1
	var votes []abci.ExtendedVoteInfo
	for i, a := range v.apps {
		ev, err := a.ExtendVote(ctx, &abci.ExtendVoteRequest{Hash: hash, Height: h, Time: at, Txs: txs})
		if err != nil {
			v.t.Fatal(err)
		}
		ext := ev.VoteExtension
		if v.silent[i] {
			ext = nil
		}
		for j, b := range v.apps {
			if j == i {
				continue
			}
			vr, err := b.VerifyVoteExtension(ctx, &abci.VerifyVoteExtensionRequest{Hash: hash, ValidatorAddress: consAddr(v.cons[i]), Height: h, VoteExtension: ext})
			if err != nil {
				v.t.Fatal(err)
			}
			if vr.Status != abci.VERIFY_VOTE_EXTENSION_STATUS_ACCEPT {
				v.t.Fatalf("height %d: node %d rejected node %d's honest vote extension", h, j, i)
			}
		}
		votes = append(votes, abci.ExtendedVoteInfo{
			Validator:     abci.Validator{Address: consAddr(v.cons[i]), Power: int64(v.params.MinValidatorStake / v.params.PowerReduction)},
			VoteExtension: ext, BlockIdFlag: cmtproto.BlockIDFlagCommit,
		})
	}
	var first *abci.FinalizeBlockResponse
	var appHash []byte
	for i, a := range v.apps {
		res, err := a.FinalizeBlock(ctx, &abci.FinalizeBlockRequest{Txs: txs, Height: h, Hash: hash, Time: at})
		if err != nil {
			v.t.Fatal(err)
		}
		if _, err := a.Commit(ctx, &abci.CommitRequest{}); err != nil {
			v.t.Fatal(err)
		}
		if i == 0 {
			first, appHash = res, res.AppHash
		} else if !bytes.Equal(res.AppHash, appHash) {
			v.t.Fatalf("height %d: node %d's app hash %X differs from node 0's %X", h, i, res.AppHash, appHash)
		}
	}
	snap, _ := v.apps[0].Snapshot(0)
	if err := CheckInvariants(snap); err != nil {
		v.t.Fatalf("after block %d: %v", h, err)
	}
	v.height = h
	v.last = abci.ExtendedCommitInfo{Votes: votes}
	return first
}

// step runs one honest height: the proposer's proposal, accepted by all.
func (v *vnet) step(txs ...[]byte) *abci.FinalizeBlockResponse {
	v.t.Helper()
	block := v.prepare(v.proposer(), txs...)
	if n := v.process(block); n != len(v.apps) {
		v.t.Fatalf("height %d: honest proposal accepted by %d of %d nodes", v.height+1, n, len(v.apps))
	}
	return v.decide(block, v.hash(0), time.Unix(1_700_000_000+v.height+1, 0))
}

func (v *vnet) epoch(n uint64) *types.Epoch {
	snap, err := v.apps[0].Snapshot(0)
	if err != nil {
		v.t.Fatal(err)
	}
	return epochs.Get(snap, n)
}

func (v *vnet) send(amount uint64) []byte {
	body := &types.TxBody{ChainId: testChain, Nonce: v.nonce, Msg: &types.TxBody_Send{Send: &types.MsgSend{To: addrOf(key("someone")), Amount: amount}}}
	body.Fee = v.params.MinFee("send", 400)
	bz, err := types.SignTx(key("user"), body)
	if err != nil {
		v.t.Fatal(err)
	}
	v.nonce++
	return bz
}

// wantSeed is the beacon seed of epoch n from the validators keys, written
// out here from the rule in ARCHITECTURE.md, independently of chain/epochs:
// ECVRF-EDWARDS25519-SHA512-ELL2 over "agora/epoch-beacon/v1" ||
// u16be(len chain) || chain || u64be(n), then sha256("agora/epoch-seed/v2" ||
// u64be(n) || (cons address || VRF output) in address order).
func wantSeed(t *testing.T, n uint64, keys []ed25519.PrivateKey) []byte {
	t.Helper()
	alpha := []byte("agora/epoch-beacon/v1")
	alpha = binary.BigEndian.AppendUint16(alpha, uint16(len(testChain)))
	alpha = append(alpha, testChain...)
	alpha = binary.BigEndian.AppendUint64(alpha, n)
	type contrib struct{ addr, out []byte }
	var cs []contrib
	for _, k := range keys {
		beta, err := ecvrf.ProofToHash(ecvrf.Prove(voi.PrivateKey(k), alpha))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, contrib{consAddr(k), beta})
	}
	sort.Slice(cs, func(i, j int) bool { return bytes.Compare(cs[i].addr, cs[j].addr) < 0 })
	h := sha256.New()
	h.Write([]byte("agora/epoch-seed/v2"))
	h.Write(binary.BigEndian.AppendUint64(nil, n))
	for _, c := range cs {
		h.Write(c.addr)
		h.Write(c.out)
	}
	return h.Sum(nil)
}

func eventOf(evs []abci.Event, typ string) map[string]string {
	for _, e := range evs {
		if e.Type == typ {
			m := map[string]string{}
			for _, a := range e.Attributes {
				m[a.Key] = a.Value
			}
			return m
		}
	}
	return nil
}

// TestBeaconSeedFromVoteExtensions: with four validators, each node's VRF
// proof flows from its vote extension through the next proposer's beacon tx
// into state, and epoch 0's seed is the beacon formula over all four outputs,
// recomputed here from the keys.
func TestBeaconSeedFromVoteExtensions(t *testing.T) {
	v := newVnet(t, 4, true, nil)
	p := v.params
	deadline := p.EpochLength + p.CommitWindow // epoch 0's commit deadline
	var seedRes *abci.FinalizeBlockResponse
	for v.height < deadline+1+p.BeaconWindow {
		var txs [][]byte
		if v.height+1 == deadline+2 {
			txs = append(txs, v.send(5)) // a user tx beside the beacon tx
		}
		res := v.step(txs...)
		if res == nil {
			t.Fatal("no response")
		}
		h := v.height
		switch {
		case h <= deadline+1 || h > deadline+1+p.BeaconWindow:
			// no window height before: no beacon tx
			if len(res.TxResults) > 0 && eventOf(res.TxResults[0].Events, "beacon") != nil {
				t.Fatalf("block %d carries a beacon tx outside epoch 0's window", h)
			}
		case h == deadline+2:
			// the first block after a window height carries all four proofs
			if len(res.TxResults) != 2 {
				t.Fatalf("block %d: %d txs, want the beacon tx and the send", h, len(res.TxResults))
			}
			ev := eventOf(res.TxResults[0].Events, "beacon")
			if res.TxResults[0].Code != 0 || ev == nil || ev["epoch"] != "0" || ev["entries"] != "4" || ev["recorded"] != "4" {
				t.Fatalf("block %d beacon result: code %d %q, event %v", h, res.TxResults[0].Code, res.TxResults[0].Log, ev)
			}
			if res.TxResults[1].Code != 0 {
				t.Fatalf("the send beside the beacon tx failed: %s", res.TxResults[1].Log)
			}
		default:
			// everything is recorded: later proposers have nothing to add
			if len(res.TxResults) != 0 {
				t.Fatalf("block %d: %d txs, want none (all contributions recorded)", h, len(res.TxResults))
			}
		}
		if h == deadline+1+p.BeaconWindow {
			seedRes = res
		}
	}
	e := v.epoch(0)
	if e.SeedHeight != deadline+1+p.BeaconWindow {
		t.Fatalf("seed height %d, want commit deadline %d + 1 + window %d", e.SeedHeight, deadline, p.BeaconWindow)
	}
	if want := wantSeed(t, 0, v.cons); !bytes.Equal(e.Seed, want) {
		t.Fatalf("seed %x, want %x", e.Seed, want)
	}
	if e.SeedSource != epochs.SourceVRF || e.SeedContributors != 4 {
		t.Fatalf("seed source %q with %d contributors, want vrf with 4", e.SeedSource, e.SeedContributors)
	}
	ev := eventOf(seedRes.Events, "epoch_seed")
	if ev == nil || ev["epoch"] != "0" || ev["source"] != "vrf" || ev["contributors"] != "4" || ev["seed"] != fmt.Sprintf("%x", e.Seed) {
		t.Fatalf("epoch_seed event %v", ev)
	}
	if view := api.EpochViewOf(e); view.SeedSource != "vrf" || view.SeedContributors != 4 {
		t.Fatalf("epoch view %+v", view)
	}
	snap, _ := v.apps[0].Snapshot(0)
	if cs := epochs.Contributions(snap, 0); len(cs) != 0 {
		t.Fatalf("%d contributions left in state after the seed", len(cs))
	}
	// Epoch 1 draws its own, different seed the same way.
	for v.height < 2*p.EpochLength+p.CommitWindow+1+p.BeaconWindow {
		v.step()
	}
	if e1 := v.epoch(1); !bytes.Equal(e1.Seed, wantSeed(t, 1, v.cons)) || e1.SeedSource != "vrf" || bytes.Equal(e1.Seed, e.Seed) {
		t.Fatalf("epoch 1 seed %x (%s), want %x", e1.Seed, e1.SeedSource, wantSeed(t, 1, v.cons))
	}
}

// TestBeaconSeedIgnoresSeedBlockHash is the regression for the grindable
// seed: two chains identical up to the seed height, whose seed blocks differ
// in hash, time and txs (what a grinding proposer varies), draw the same
// seed. With the block-hash seed they drew different ones.
func TestBeaconSeedIgnoresSeedBlockHash(t *testing.T) {
	a, b := newVnet(t, 4, true, nil), newVnet(t, 4, true, nil)
	p := a.params
	seedHeight := p.EpochLength + p.CommitWindow + 1 + p.BeaconWindow
	for a.height < seedHeight-1 {
		a.step()
		b.step()
	}
	blockA := a.prepare(a.proposer())
	hashA := a.hash(0)
	a.decide(blockA, hashA, time.Unix(1_700_000_000+seedHeight, 0))
	// b's proposer grinds: another tx, another time, another hash.
	blockB := b.prepare(b.proposer(), b.send(1))
	hashB := b.hash(99)
	if n := b.process(blockB); n != 4 {
		t.Fatalf("ground proposal accepted by %d of 4", n)
	}
	b.decide(blockB, hashB, time.Unix(1_700_000_000+seedHeight+17, 0))
	ea, eb := a.epoch(0), b.epoch(0)
	if len(ea.Seed) != 32 || !bytes.Equal(ea.Seed, eb.Seed) {
		t.Fatalf("seeds differ with the seed block: %x vs %x", ea.Seed, eb.Seed)
	}
	if bytes.Equal(ea.Seed, epochs.Seed(0, hashA)) || bytes.Equal(eb.Seed, epochs.Seed(0, hashB)) {
		t.Fatal("seed is the block-hash seed")
	}
	if !bytes.Equal(ea.Seed, wantSeed(t, 0, a.cons)) {
		t.Fatalf("seed %x is not the beacon of the four validators", ea.Seed)
	}
}

// dropEntry returns a beacon tx without validator addr's entry (nil when
// nothing is left): what a proposer that withholds a contribution sends.
func dropEntry(t *testing.T, tx []byte, addr []byte) []byte {
	t.Helper()
	bt, err := types.DecodeBeaconTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	var keep []types.BeaconEntry
	for _, e := range bt.Entries {
		if !bytes.Equal(e.Validator, addr) {
			keep = append(keep, e)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	bt.Entries = keep
	return types.EncodeBeaconTx(bt)
}

// TestBeaconWithholding: what a proposer can still do is leave an honest
// contribution out of its block; the contribution is offered again at every
// height of the window, so it is kept out only when every proposer of the
// window leaves it out. Then the seed is the beacon of the others.
func TestBeaconWithholding(t *testing.T) {
	for _, c := range []struct {
		name      string
		colluders int // how many of the window's proposers leave validator 3 out
		want      []int
	}{
		{"one honest proposer in the window", 3, []int{0, 1, 2, 3}},
		{"every proposer of the window colludes", 4, []int{0, 1, 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := newVnet(t, 4, true, nil)
			p := v.params
			deadline := p.EpochLength + p.CommitWindow
			victim := consAddr(v.cons[3])
			window := 0
			for v.height < deadline+1+p.BeaconWindow {
				if _, ok := epochs.BeaconEpoch(p, v.height); !ok {
					v.step()
					continue
				}
				block := v.prepare(v.proposer())
				if window < c.colluders && len(block) > 0 && types.IsBeaconTx(block[0]) {
					if bt := dropEntry(t, block[0], victim); bt != nil {
						block[0] = bt
					} else {
						block = block[1:]
					}
				}
				window++
				if n := v.process(block); n != 4 {
					t.Fatalf("height %d: proposal accepted by %d of 4", v.height+1, n)
				}
				v.decide(block, v.hash(0), time.Unix(1_700_000_000+v.height+1, 0))
			}
			var keys []ed25519.PrivateKey
			for _, i := range c.want {
				keys = append(keys, v.cons[i])
			}
			e := v.epoch(0)
			if !bytes.Equal(e.Seed, wantSeed(t, 0, keys)) || e.SeedContributors != uint32(len(keys)) {
				t.Fatalf("seed %x from %d contributors, want the beacon of validators %v", e.Seed, e.SeedContributors, c.want)
			}
		})
	}
}

// TestBeaconRejectsForgeries: ProcessProposal rejects every beacon tx a
// proposer could forge or misplace, VerifyVoteExtension rejects malformed and
// forged extensions (and accepts, but never counts, a valid proof for another
// epoch), CheckTx refuses beacon txs, and a forged beacon tx that reaches
// FinalizeBlock anyway (a block synced rather than voted on) records nothing.
func TestBeaconRejectsForgeries(t *testing.T) {
	v := newVnet(t, 4, true, nil)
	p := v.params
	deadline := p.EpochLength + p.CommitWindow
	for v.height < deadline+1 { // the next block carries epoch 0's first proofs
		v.step()
	}
	honest := v.prepare(v.proposer())
	if len(honest) != 1 || !types.IsBeaconTx(honest[0]) {
		t.Fatalf("proposal at %d: %d txs, want the beacon tx", v.height+1, len(honest))
	}
	bt, err := types.DecodeBeaconTx(honest[0])
	if err != nil || len(bt.Entries) != 4 {
		t.Fatalf("beacon tx: %v, %d entries", err, len(bt.Entries))
	}
	intruder := key("beacon-intruder")
	with := func(mut func(b *types.BeaconTx)) []byte {
		c := &types.BeaconTx{Epoch: bt.Epoch}
		for _, e := range bt.Entries {
			c.Entries = append(c.Entries, types.BeaconEntry{Validator: bytes.Clone(e.Validator), Proof: bytes.Clone(e.Proof)})
		}
		mut(c)
		return types.EncodeBeaconTx(c)
	}
	// Proofs for epoch 1 by the real validators, in address order.
	epoch1 := with(func(b *types.BeaconTx) {
		b.Epoch = 1
		for i := range b.Entries {
			for _, k := range v.cons {
				if bytes.Equal(consAddr(k), b.Entries[i].Validator) {
					b.Entries[i].Proof = epochs.Prove(k, testChain, 1)
				}
			}
		}
	})
	intruderEntry := types.BeaconEntry{Validator: consAddr(intruder), Proof: epochs.Prove(intruder, testChain, 0)}
	withIntruder := with(func(b *types.BeaconTx) {
		b.Entries = append(b.Entries, intruderEntry)
		sort.Slice(b.Entries, func(i, j int) bool { return bytes.Compare(b.Entries[i].Validator, b.Entries[j].Validator) < 0 })
	})
	user := v.send(3)
	v.nonce--
	cases := []struct {
		name string
		txs  [][]byte
	}{
		{"proof made with another key", [][]byte{with(func(b *types.BeaconTx) { b.Entries[0].Proof = epochs.Prove(intruder, testChain, 0) })}},
		{"proof with a flipped bit", [][]byte{with(func(b *types.BeaconTx) { b.Entries[1].Proof[40] ^= 1 })}},
		{"proof of another chain", [][]byte{with(func(b *types.BeaconTx) {
			for i := range b.Entries {
				for _, k := range v.cons {
					if bytes.Equal(consAddr(k), b.Entries[i].Validator) {
						b.Entries[i].Proof = epochs.Prove(k, "other-chain", 0)
					}
				}
			}
		})}},
		{"valid proofs for another epoch", [][]byte{epoch1}},
		{"valid proof from a key that is no validator", [][]byte{withIntruder}},
		{"beacon tx not first", [][]byte{user, honest[0]}},
		{"two beacon txs", [][]byte{honest[0], honest[0]}},
		{"entries out of order", [][]byte{with(func(b *types.BeaconTx) { b.Entries[0], b.Entries[1] = b.Entries[1], b.Entries[0] })}},
		{"trailing byte", [][]byte{append(bytes.Clone(honest[0]), 0)}},
		{"magic only", [][]byte{[]byte(types.BeaconTxMagic)}},
	}
	for _, c := range cases {
		if n := v.process(c.txs); n != 0 {
			t.Errorf("%s: accepted by %d of 4 nodes", c.name, n)
		}
	}
	if n := v.process(honest); n != 4 {
		t.Fatalf("the honest proposal is accepted by %d of 4 nodes", n)
	}

	// Vote extensions.
	ctx := context.Background()
	verify := func(from int, ext []byte) abci.VerifyVoteExtensionStatus {
		res, err := v.apps[0].VerifyVoteExtension(ctx, &abci.VerifyVoteExtensionRequest{ValidatorAddress: consAddr(v.cons[from]), Height: v.height + 1, VoteExtension: ext})
		if err != nil {
			t.Fatal(err)
		}
		return res.Status
	}
	reject, accept := abci.VERIFY_VOTE_EXTENSION_STATUS_REJECT, abci.VERIFY_VOTE_EXTENSION_STATUS_ACCEPT
	for _, c := range []struct {
		name string
		ext  []byte
		want abci.VerifyVoteExtensionStatus
	}{
		{"empty", nil, accept},
		{"honest", types.EncodeVoteExtension(0, epochs.Prove(v.cons[1], testChain, 0)), accept},
		{"garbage", []byte("not an extension"), reject},
		{"truncated", types.EncodeVoteExtension(0, epochs.Prove(v.cons[1], testChain, 0))[:50], reject},
		{"another validator's proof", types.EncodeVoteExtension(0, epochs.Prove(v.cons[2], testChain, 0)), reject},
		{"an outsider's proof", types.EncodeVoteExtension(0, epochs.Prove(intruder, testChain, 0)), reject},
		{"proof that does not match its epoch", types.EncodeVoteExtension(1, epochs.Prove(v.cons[1], testChain, 0)), reject},
		// Valid, but for another epoch: the vote stands, the proof is never counted.
		{"valid proof for another epoch", types.EncodeVoteExtension(7, epochs.Prove(v.cons[1], testChain, 7)), accept},
	} {
		if got := verify(1, c.ext); got != c.want {
			t.Errorf("extension %s: %s, want %s", c.name, got, c.want)
		}
	}
	// A proposer given that other-epoch proof leaves it out of its beacon tx.
	saved := v.last
	v.last = abci.ExtendedCommitInfo{Votes: append([]abci.ExtendedVoteInfo(nil), saved.Votes...)}
	for i := range v.last.Votes {
		if bytes.Equal(v.last.Votes[i].Validator.Address, consAddr(v.cons[1])) {
			v.last.Votes[i].VoteExtension = types.EncodeVoteExtension(7, epochs.Prove(v.cons[1], testChain, 7))
		}
	}
	prop := v.prepare(v.proposer())
	pb, err := types.DecodeBeaconTx(prop[0])
	if err != nil || len(pb.Entries) != 3 {
		t.Fatalf("beacon tx from votes with one other-epoch proof: %v, %d entries, want 3", err, len(pb.Entries))
	}
	for _, e := range pb.Entries {
		if bytes.Equal(e.Validator, consAddr(v.cons[1])) {
			t.Fatal("the other-epoch proof was carried")
		}
	}
	v.last = saved

	// CheckTx refuses a beacon tx, even a valid one.
	res, err := v.apps[0].CheckTx(ctx, &abci.CheckTxRequest{Tx: honest[0], Type: abci.CHECK_TX_TYPE_CHECK})
	if err != nil {
		t.Fatal(err)
	}
	if types.Code(res.Code) != types.CodeMalformed || !strings.Contains(res.Log, "cannot be submitted") {
		t.Fatalf("CheckTx of a beacon tx: code %d %q", res.Code, res.Log)
	}

	// A forged beacon tx finalized anyway (as a syncing node would see a
	// block voted in by a faulty majority): it fails, records nothing, and
	// the user tx after it still runs.
	forged := cases[0].txs[0]
	fin := v.decide([][]byte{forged, user}, v.hash(0), time.Unix(1_700_000_000+v.height+1, 0))
	v.nonce++
	if types.Code(fin.TxResults[0].Code) != types.CodeInvalid || !strings.Contains(fin.TxResults[0].Log, "does not verify") {
		t.Fatalf("forged beacon tx in a block: code %d %q", fin.TxResults[0].Code, fin.TxResults[0].Log)
	}
	if fin.TxResults[1].Code != 0 {
		t.Fatalf("user tx after the forged beacon tx: %s", fin.TxResults[1].Log)
	}
	snap, _ := v.apps[0].Snapshot(0)
	if cs := epochs.Contributions(snap, 0); len(cs) != 0 {
		t.Fatalf("a forged beacon tx recorded %d contributions", len(cs))
	}
	// The honest proofs come again with the next height's votes.
	for v.height < deadline+1+p.BeaconWindow {
		v.step()
	}
	if e := v.epoch(0); !bytes.Equal(e.Seed, wantSeed(t, 0, v.cons)) || e.SeedContributors != 4 {
		t.Fatalf("seed after the forgery: %x from %d", e.Seed, e.SeedContributors)
	}
}

// TestBeaconFallbackToBlockHash: with no contribution (no node can extend its
// votes: vote extensions disabled), the seed is the seed block's hash seed
// and the record says so; a genesis without a beacon (beacon_window 0) keeps
// the block-hash seed at commit deadline + 1 and writes no source at all.
func TestBeaconFallbackToBlockHash(t *testing.T) {
	for _, c := range []struct {
		name       string
		window     int64
		wantSource string // in the record
	}{
		{"vote extensions off", 4, epochs.SourceBlockHash},
		{"genesis without beacon", 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := newVnet(t, 2, false, func(p *types.Params) { p.BeaconWindow = c.window })
			p := v.params
			seedHeight := p.EpochLength + p.CommitWindow + 1 + c.window
			var res *abci.FinalizeBlockResponse
			var hash []byte
			for v.height < seedHeight {
				hash = v.hash(0)
				res = v.step()
			}
			e := v.epoch(0)
			if e.SeedHeight != seedHeight || !bytes.Equal(e.Seed, epochs.Seed(0, hash)) {
				t.Fatalf("seed %x at %d, want the hash seed of block %d", e.Seed, e.SeedHeight, seedHeight)
			}
			if e.SeedSource != c.wantSource || e.SeedContributors != 0 {
				t.Fatalf("seed source %q (%d contributors), want %q", e.SeedSource, e.SeedContributors, c.wantSource)
			}
			if ev := eventOf(res.Events, "epoch_seed"); ev == nil || ev["source"] != "block_hash" {
				t.Fatalf("epoch_seed event %v", ev)
			}
			if view := api.EpochViewOf(e); view.SeedSource != "block_hash" {
				t.Fatalf("view source %q", view.SeedSource)
			}
		})
	}
}

func TestPrepareProposalFitsMaxTxBytes(t *testing.T) {
	v := newVnet(t, 4, true, nil)
	p := v.params
	for v.height < p.EpochLength+p.CommitWindow+1 {
		v.step()
	}
	user := v.send(1)
	full := v.prepare(v.proposer(), user)
	if len(full) != 2 || !types.IsBeaconTx(full[0]) {
		t.Fatalf("%d txs", len(full))
	}
	// Room for the beacon tx only: the user tx waits for the next block.
	res, err := v.apps[0].PrepareProposal(context.Background(), &abci.PrepareProposalRequest{
		MaxTxBytes: protoTxSize(full[0]) + protoTxSize(user) - 1, Txs: [][]byte{user}, LocalLastCommit: v.last, Height: v.height + 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Txs) != 1 || !bytes.Equal(res.Txs[0], full[0]) {
		t.Fatalf("%d txs with room for one", len(res.Txs))
	}
	// A beacon-looking tx from the mempool (CheckTx refuses them) is dropped.
	res, err = v.apps[0].PrepareProposal(context.Background(), &abci.PrepareProposalRequest{
		MaxTxBytes: 1 << 20, Txs: [][]byte{full[0], user}, Height: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Txs) != 1 || !bytes.Equal(res.Txs[0], user) {
		t.Fatalf("%d txs, want only the user tx", len(res.Txs))
	}
}
