package app

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/blobtree"
	"github.com/agoranet/agora/chain/storage"
	"github.com/agoranet/agora/chain/types"
)

// storH drives the storage market through real blocks (the harness checks
// every invariant, the storage escrow one included, after each block) and
// keeps each account's fees, so balances can be checked to the unit.
type storH struct {
	*harness
	fees map[string]uint64
	base map[string]uint64 // balance + fees after the providers bonded
}

var storLabels = []string{"operator", "client", "p1", "p2", "p3", "nocap", "outsider"}

// Short epochs so that a thousand of them run in seconds: epoch n's seed is
// drawn at the end of height 4n+6, its proofs are due by 4n+8.
func storParams(p *types.Params) {
	p.EpochLength = 4
	p.CommitWindow = 1
	p.BeaconWindow = 0
	p.OpeningWindow = 1
	p.Storage = &types.StorageParams{FeeBps: 500, ProofWindow: 2, MissSlashBps: 1000, MaxMisses: 3, ScoreMissBps: 2500, ScoreProofBps: 500}
}

func newStorHarness(t *testing.T, adjust func(*types.Params)) *storH {
	t.Helper()
	accts := map[string]uint64{}
	for _, l := range storLabels {
		accts[l] = 10_000_000_000
	}
	s := &storH{harness: newHarnessWith(t, accts, func(p *types.Params) {
		storParams(p)
		if adjust != nil {
			adjust(p)
		}
	}), fees: map[string]uint64{}}
	for _, p := range []string{"p1", "p2", "p3", "nocap"} {
		// Storage only: no model (like a wasm-only provider).
		inf := &types.ProviderInfo{Endpoint: "http://127.0.0.1:1", Capabilities: []string{storage.Capability}}
		if p == "nocap" {
			inf = info()
		}
		s.ok(p, &types.MsgBondProvider{Amount: 2 * s.params.MinProviderStake})
		s.ok(p, &types.MsgRegisterProvider{Info: inf})
	}
	s.base = map[string]uint64{}
	for _, l := range storLabels {
		s.base[l] = s.balance(l) + s.fees[l]
	}
	return s
}

// sign signs msg from label with its next nonce and the minimum fee for
// the signed tx's size, counting the fee. A message that fails stateless
// validation is carried as is, for the chain to refuse.
func (s *storH) sign(label string, msg proto.Message) ([]byte, uint64) {
	s.t.Helper()
	body := &types.TxBody{ChainId: testChain, Nonce: s.nonces[label]}
	if err := s.app.Msgs().Set(body, msg); err != nil && body.Msg == nil {
		s.t.Fatal(err)
	}
	name := s.app.Msgs().Name(body)
	var tx []byte
	for fee := s.params.MinFee(name, 0); ; {
		body.Fee = fee
		var err error
		if tx, err = types.SignTx(key(label), body); err != nil {
			s.t.Fatal(err)
		}
		if need := s.params.MinFee(name, len(tx)); need > fee {
			fee = need
			continue
		}
		break
	}
	s.nonces[label]++
	s.fees[label] += body.Fee
	return tx, body.Fee
}

// send runs msg from label alone in a block and returns the result code
// and log; a malformed message (refused before the fee) costs nothing.
func (s *storH) send(label string, msg proto.Message) (types.Code, string) {
	s.t.Helper()
	tx, fee := s.sign(label, msg)
	res := s.block(tx)
	if types.Code(res[0].Code) == types.CodeMalformed {
		s.nonces[label]--
		s.fees[label] -= fee
	}
	return types.Code(res[0].Code), res[0].Log
}

func (s *storH) ok(label string, msg proto.Message) {
	s.t.Helper()
	if code, log := s.send(label, msg); code != 0 {
		s.t.Fatalf("%s %T: code %d %s", label, msg, code, log)
	}
}

func (s *storH) until(height int64) {
	for s.height < height {
		s.block()
	}
}

func (s *storH) addr(label string) types.Address { return addrOf(key(label)) }

func (s *storH) deal(id uint64) api.StorageDealView {
	s.t.Helper()
	v, _, err := s.app.QueryJSON(api.StorageDealPath(id), 0)
	if err != nil {
		s.t.Fatal(err)
	}
	return v.(api.StorageDealView)
}

func (s *storH) faults(id uint64) []api.StorageFaultView {
	s.t.Helper()
	v, _, err := s.app.QueryJSON(api.StorageFaultsPath(id), 0)
	if err != nil {
		s.t.Fatal(err)
	}
	return v.([]api.StorageFaultView)
}

func (s *storH) challenge(id uint64) api.StorageChallengeView {
	s.t.Helper()
	v, _, err := s.app.QueryJSON(api.StorageChallengePath(id), 0)
	if err != nil {
		s.t.Fatal(err)
	}
	return v.(api.StorageChallengeView)
}

// net is what label gained (negative: paid) since the harness was set
// up, fees aside.
func (s *storH) net(label string) int64 {
	return int64(s.balance(label)) + int64(s.fees[label]) - int64(s.base[label])
}

func (s *storH) storageBal() uint64 {
	snap, _ := s.app.Snapshot(0)
	return bank.Balance(snap, storage.Account)
}

// fingerprint hashes the market's whole state and every balance (each
// label's with its fees added back), so a refused message that changed
// anything but its signer's fee shows.
func (s *storH) fingerprint() [32]byte {
	snap, _ := s.app.Snapshot(0)
	h := sha256.New()
	for _, pre := range []string{"sto", "seq/storage_"} {
		snap.Iterate([]byte(pre), func(k, v []byte) bool {
			h.Write(k)
			h.Write(v)
			return true
		})
	}
	for _, l := range storLabels[1:] { // not the validator: epoch settlements pay it
		binary.Write(h, binary.BigEndian, s.balance(l)+s.fees[l])
	}
	binary.Write(h, binary.BigEndian, bank.Balance(snap, storage.Account))
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// blob is n pseudo-random bytes.
func blob(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func createMsg(r *blobtree.Replica, epochs, price, collateral uint64, k uint32) *types.MsgCreateDeal {
	return &types.MsgCreateDeal{BlobId: r.ID[:], Size: r.Size, Epochs: epochs, PricePerEpoch: price, Collateral: collateral, Challenges: k}
}

func acceptMsg(id uint64, r *blobtree.Replica) *types.MsgAcceptDeal {
	root := r.Root()
	return &types.MsgAcceptDeal{DealId: id, ReplicaRoot: root[:]}
}

// proofs answers indices from replica r, or reports the first index it
// cannot answer (lost[i]).
func proofs(t *testing.T, r *blobtree.Replica, indices []uint64, lost map[uint64]bool) ([]*types.StorageProof, bool) {
	t.Helper()
	var out []*types.StorageProof
	for _, i := range indices {
		if lost[i] { // the tree's hashes are kept; the segment's bytes are gone
			return nil, false
		}
		p, err := r.Prove(i)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, storage.ProofOf(p))
	}
	return out, true
}

// awaitChallenge runs blocks until deal id's current epoch is challenged
// and returns the challenge.
func (s *storH) awaitChallenge(id uint64) api.StorageChallengeView {
	s.t.Helper()
	c := s.challenge(id)
	s.until(c.SeedHeight)
	c = s.challenge(id)
	if len(c.Indices) == 0 {
		s.t.Fatalf("deal %d: no challenge after the seed height %d", id, c.SeedHeight)
	}
	return c
}

// TestStorageHonestThousandEpochs: a provider that keeps its replica
// passes 1,000 epochs of challenges; each proved epoch pays exactly the
// price minus fee_bps, the fee pool gets the rest, and at the end the
// collateral comes back and the escrow is empty.
func TestStorageHonestThousandEpochs(t *testing.T) {
	s := newStorHarness(t, nil)
	const epochs, price, collateral = 1000, 10_000, 50_000_000
	r := blobtree.NewReplica(blob(1, 5*1024+300), s.addr("p1")) // 6 segments, the last short
	s.ok("client", createMsg(r, epochs, price, collateral, 4))
	if got := s.net("client"); got != -epochs*price {
		t.Fatalf("client escrowed %d, want %d", -got, epochs*price)
	}
	s.ok("p1", acceptMsg(1, r))
	if d := s.deal(1); d.Status != "active" || d.Locked != collateral || d.Escrow != epochs*price || d.Provider.String() != s.addr("p1").String() {
		t.Fatalf("accepted deal: %+v", d)
	}
	first := s.deal(1).NextEpoch
	segs := map[uint64]bool{}
	for e := uint64(0); e < epochs; e++ {
		c := s.awaitChallenge(1)
		if c.Epoch != first+e {
			t.Fatalf("challenge for epoch %d, want %d", c.Epoch, first+e)
		}
		for _, i := range c.Indices {
			segs[i] = true
		}
		ps, _ := proofs(t, r, c.Indices, nil)
		s.ok("p1", &types.MsgProveStorage{DealId: 1, Epoch: c.Epoch, Proofs: ps})
		if e == 0 {
			if got := s.net("p1"); got != -collateral+price*95/100 {
				t.Fatalf("after one epoch p1 net %d, want %d", got, -collateral+price*95/100)
			}
		}
	}
	d := s.deal(1)
	if d.Status != "done" || d.Proved != epochs || d.Missed != 0 || d.Escrow != 0 || d.Locked != 0 || d.Score != storage.FullScore {
		t.Fatalf("deal after %d epochs: %+v", epochs, d)
	}
	if d.Paid != epochs*price*95/100 || d.Fees != epochs*price*5/100 {
		t.Fatalf("paid %d fees %d, want %d and %d", d.Paid, d.Fees, epochs*price*95/100, epochs*price*5/100)
	}
	if got := s.net("p1"); got != epochs*price*95/100 {
		t.Fatalf("p1 earned %d, want %d (collateral back)", got, epochs*price*95/100)
	}
	if got := s.net("client"); got != -epochs*price {
		t.Fatalf("client spent %d, want %d", -got, epochs*price)
	}
	if got := s.storageBal(); got != 0 {
		t.Fatalf("storage account holds %d after the deal", got)
	}
	if len(segs) != 6 {
		t.Fatalf("1,000 epochs challenged %d of 6 segments", len(segs))
	}
	v, _, err := s.app.QueryJSON(api.StorageEpochsPath(1), 0)
	if err != nil {
		t.Fatal(err)
	}
	if eps := v.([]api.StorageEpochView); len(eps) != epochs || !eps[0].Proved || eps[0].Paid != price*95/100 || eps[0].Fee != price*5/100 {
		t.Fatalf("%d epoch records, first %+v", len(eps), eps[0])
	}
	if _, _, err := s.app.QueryJSON(api.StorageChallengePath(1), 0); err == nil || !strings.Contains(err.Error(), "deal 1 is done: no challenge") {
		t.Fatalf("challenge of a done deal: %v", err)
	}
}

// TestStorageLossCaught: a provider that lost 10 % of the blob's chunks
// answers every epoch whose challenges miss them and cannot answer the
// first that hits one: that epoch is a miss at its deadline, with
// miss_slash_bps of the collateral and the epoch's price going to the
// client. A forged answer for a lost segment is refused.
func TestStorageLossCaught(t *testing.T) {
	s := newStorHarness(t, nil)
	const price, collateral = 10_000, 50_000_000
	data := blob(2, 10*blobtree.ChunkSize)
	r := blobtree.NewReplica(data, s.addr("p1"))
	lost := map[uint64]bool{}
	for i := uint64(3 * blobtree.SegmentsPerChunk); i < 4*blobtree.SegmentsPerChunk; i++ {
		lost[i] = true // chunk 3 of 10
	}
	s.ok("client", createMsg(r, 50, price, collateral, 16))
	s.ok("p1", acceptMsg(1, r))
	proved := uint64(0)
	for {
		c := s.awaitChallenge(1)
		ps, ok := proofs(t, r, c.Indices, lost)
		if !ok {
			// A forged answer: the real proofs with the lost segment's
			// bytes replaced by zeros (what the provider no longer has).
			ps, _ = proofs(t, r, c.Indices, nil)
			for j, i := range c.Indices {
				if lost[i] {
					ps[j].Segment = make([]byte, len(ps[j].Segment))
					before := s.fingerprint()
					code, log := s.send("p1", &types.MsgProveStorage{DealId: 1, Epoch: c.Epoch, Proofs: ps})
					if code != types.CodeInvalid || !strings.Contains(log, fmt.Sprintf("proof %d (segment %d) fails", j, i)) {
						t.Fatalf("forged proof: code %d %s", code, log)
					}
					if s.fingerprint() != before {
						t.Fatal("a refused proof changed state")
					}
					break
				}
			}
			s.until(c.Deadline)
			d := s.deal(1)
			fs := s.faults(1)
			if len(fs) != 1 || d.Missed != 1 || d.Proved != proved {
				t.Fatalf("after the first lost challenge: %d faults, deal %+v", len(fs), d)
			}
			f := fs[0]
			wantSlash := uint64(collateral) * 1000 / 10000
			if f.Epoch != c.Epoch || f.Height != c.Deadline || f.Slashed != wantSlash || f.Refunded != price || f.Consecutive != 1 || f.Dropped ||
				f.Score != storage.FullScore-2500 {
				t.Fatalf("fault %+v, want epoch %d at %d slashing %d", f, c.Epoch, c.Deadline, wantSlash)
			}
			if d.Locked != collateral-wantSlash || d.Escrow != (50-proved-1)*price || d.Status != "active" {
				t.Fatalf("deal after the miss: %+v", d)
			}
			if got := s.net("client"); got != -50*price+int64(price+wantSlash) {
				t.Fatalf("client net %d, want %d", got, -50*price+int64(price+wantSlash))
			}
			pass := math.Pow(0.9, 16) // (1 − f)^k
			t.Logf("10 %% lost, k=16: caught in epoch %d after %d passed epochs (P(pass) = %.3f per epoch, %.2f passes expected)", c.Epoch, proved, pass, pass/(1-pass))
			return
		}
		s.ok("p1", &types.MsgProveStorage{DealId: 1, Epoch: c.Epoch, Proofs: ps})
		proved++
		if proved > 40 {
			t.Fatal("40 epochs of 16 challenges never hit the lost 10 %")
		}
	}
}

// TestStorageSharedCopyRefused: two deals on one blob, one per provider.
// B cannot post A's replica root, and B holding only A's copy cannot
// answer its own challenges with it: the proofs decode to garbage under
// B's key (or do not match B's root).
func TestStorageSharedCopyRefused(t *testing.T) {
	// Epochs long enough for both acceptances to fall in one.
	s := newStorHarness(t, func(p *types.Params) { p.EpochLength, p.Storage.ProofWindow = 20, 10 })
	data := blob(3, 8*1024)
	a := blobtree.NewReplica(data, s.addr("p1"))
	b := blobtree.NewReplica(data, s.addr("p2"))
	s.ok("client", createMsg(a, 10, 1000, 1_000_000, 4))
	s.ok("client", createMsg(a, 10, 1000, 1_000_000, 4))
	s.ok("p1", acceptMsg(1, a))
	before := s.fingerprint()
	code, log := s.send("p2", acceptMsg(2, a))
	if code != types.CodeInvalid || !strings.Contains(log, "already posted for deal 1: each provider seals its own replica") {
		t.Fatalf("B posting A's root: code %d %s", code, log)
	}
	if s.fingerprint() != before {
		t.Fatal("a refused accept changed state")
	}
	// B posts the root of a replica of its own (sealed once, then thrown
	// away) and answers with A's copy.
	s.ok("p2", acceptMsg(2, b))
	c := s.awaitChallenge(2)
	ps, _ := proofs(t, a, c.Indices, nil)
	before = s.fingerprint()
	code, log = s.send("p2", &types.MsgProveStorage{DealId: 2, Epoch: c.Epoch, Proofs: ps})
	if code != types.CodeInvalid || !strings.Contains(log, "proof 0 (segment") || !strings.Contains(log, "fails") {
		t.Fatalf("B answering with A's replica: code %d %s", code, log)
	}
	if s.fingerprint() != before {
		t.Fatal("a refused proof changed state")
	}
	// A's own proofs for deal 1 pass in the same epoch: the copy is A's.
	c1 := s.challenge(1)
	ps1, _ := proofs(t, a, c1.Indices, nil)
	s.ok("p1", &types.MsgProveStorage{DealId: 1, Epoch: c1.Epoch, Proofs: ps1})
	s.until(c.Deadline)
	if d := s.deal(2); d.Missed != 1 || d.Proved != 0 {
		t.Fatalf("B's deal after its refused proofs: %+v", d)
	}
	if d := s.deal(1); d.Proved != 1 || d.Missed != 0 {
		t.Fatalf("A's deal: %+v", d)
	}
}

// TestStorageReopen: a provider that stops proving is slashed gradually
// (10 % of what is left per miss), dropped after max_misses in a row with
// the rest of its collateral to the client, and the deal reopens for
// another provider, which posts its own replica root and finishes it.
// A short outage (fewer misses than max_misses) is not fatal.
func TestStorageReopen(t *testing.T) {
	s := newStorHarness(t, nil)
	const epochs, price, collateral = 12, 10_000, 10_000_000
	data := blob(4, 3000)
	r1 := blobtree.NewReplica(data, s.addr("p1"))
	r2 := blobtree.NewReplica(data, s.addr("p2"))
	m := createMsg(r1, epochs, price, collateral, 2)
	m.Provider = s.addr("p1")
	s.ok("client", m)
	code, log := s.send("p2", acceptMsg(1, r2))
	if code != types.CodeUnauthorized || !strings.Contains(log, "may only be accepted by "+s.addr("p1").String()) {
		t.Fatalf("accept by another than the named provider: code %d %s", code, log)
	}
	s.ok("p1", acceptMsg(1, r1))
	prove := func(label string, r *blobtree.Replica) {
		t.Helper()
		c := s.awaitChallenge(1)
		ps, _ := proofs(t, r, c.Indices, nil)
		s.ok(label, &types.MsgProveStorage{DealId: 1, Epoch: c.Epoch, Proofs: ps})
	}
	skip := func() {
		t.Helper()
		c := s.awaitChallenge(1)
		s.until(c.Deadline)
	}
	// Proved, a two-epoch outage, proved again: not fatal.
	prove("p1", r1)
	skip()
	skip()
	if d := s.deal(1); d.ConsecutiveMisses != 2 || d.Status != "active" || d.Score != storage.FullScore-2*2500 {
		t.Fatalf("after a short outage: %+v", d)
	}
	prove("p1", r1)
	if d := s.deal(1); d.ConsecutiveMisses != 0 || d.Score != storage.FullScore-2*2500+500 {
		t.Fatalf("after recovering: %+v", d)
	}
	// Then it stops for good: three misses in a row drop it.
	locked := s.deal(1).Locked
	want := collateral - collateral/10 - (collateral-collateral/10)/10
	if locked != uint64(want) {
		t.Fatalf("locked %d after two misses, want %d", locked, want)
	}
	var slashes uint64
	for i := 0; i < 3; i++ {
		skip()
		cut := locked / 10
		slashes += cut
		locked -= cut
	}
	fs := s.faults(1)
	if len(fs) != 5 || !fs[4].Dropped || fs[4].Consecutive != 3 || fs[4].Forfeited != locked || fs[3].Dropped {
		t.Fatalf("faults: %+v", fs)
	}
	d := s.deal(1)
	if d.Status != "open" || len(d.Provider) != 0 || d.Locked != 0 || d.EpochsDone != 7 || d.Proved != 2 || d.Missed != 5 || d.Reopened != 1 ||
		len(d.Dropped) != 1 || d.Dropped[0].String() != s.addr("p1").String() || len(d.NamedProvider) != 0 {
		t.Fatalf("dropped deal: %+v", d)
	}
	// The client got every missed epoch's price and all of p1's collateral.
	if got := s.net("client"); got != -epochs*price+5*price+collateral {
		t.Fatalf("client net %d, want %d", got, -epochs*price+5*price+collateral)
	}
	if got := s.net("p1"); got != -collateral+2*price*95/100 {
		t.Fatalf("p1 net %d, want %d", got, -collateral+2*price*95/100)
	}
	code, log = s.send("p1", acceptMsg(1, r1))
	if code != types.CodeUnauthorized || !strings.Contains(log, "was dropped from deal 1") {
		t.Fatalf("dropped provider re-accepting: code %d %s", code, log)
	}
	// Another provider takes the rest of the deal with its own replica.
	s.ok("p2", acceptMsg(1, r2))
	for s.deal(1).Status == "active" {
		prove("p2", r2)
	}
	d = s.deal(1)
	if d.Status != "done" || d.Proved != 7 || d.Missed != 5 || d.Escrow != 0 || d.Locked != 0 {
		t.Fatalf("finished deal: %+v", d)
	}
	if got := s.net("p2"); got != 5*price*95/100 {
		t.Fatalf("p2 net %d, want %d", got, 5*price*95/100)
	}
	if d.Paid+d.Fees+d.Refunded != epochs*price || d.Slashed != collateral {
		t.Fatalf("escrow not settled exactly: paid %d + fees %d + refunded %d; slashed %d", d.Paid, d.Fees, d.Refunded, d.Slashed)
	}
	if s.storageBal() != 0 {
		t.Fatalf("storage account holds %d", s.storageBal())
	}
}

// TestStorageBadInput: each bad message is refused with a clear error and
// changes nothing but its signer's fee.
func TestStorageBadInput(t *testing.T) {
	// Long epochs and proof windows: every refused message below runs in a
	// block of its own, and no deadline may pass meanwhile (the
	// fingerprint would change for that).
	s := newStorHarness(t, func(p *types.Params) { p.EpochLength, p.Storage.ProofWindow = 40, 30 })
	data := blob(5, 4096)
	r := blobtree.NewReplica(data, s.addr("p1"))
	s.ok("client", createMsg(r, 5, 1000, 1_000_000, 4))
	s.ok("client", createMsg(r, 5, 1000, 1_000_000, 4)) // deal 2 stays open
	s.ok("p1", acceptMsg(1, r))
	c := s.challenge(1)
	if len(c.Indices) != 0 {
		t.Fatal("challenged before the seed")
	}
	good := func() []*types.StorageProof { // computed once challenged
		ps, _ := proofs(t, r, s.challenge(1).Indices, nil)
		return ps
	}
	type tc struct {
		name  string
		label string
		msg   func() proto.Message
		code  types.Code
		want  string
	}
	before := []tc{
		{"k above 16", "client", func() proto.Message { return createMsg(r, 5, 1000, 1, 17) }, types.CodeMalformed, "challenges (k) must be between 1 and 16, got 17"},
		{"blob over 1 GiB", "client", func() proto.Message {
			m := createMsg(r, 5, 1000, 1, 4)
			m.Size = 1<<30 + 1
			return m
		}, types.CodeMalformed, "size 1073741825 out of range"},
		{"no price", "client", func() proto.Message { return createMsg(r, 5, 0, 1, 4) }, types.CodeMalformed, "price_per_epoch must be positive"},
		{"escrow overflow", "client", func() proto.Message { return createMsg(r, 1<<28, 1<<40, 1, 4) }, types.CodeOverflow, "overflows"},
		{"escrow unaffordable", "client", func() proto.Message { return createMsg(r, 1000, 1<<40, 1, 4) }, types.CodeInsufficientFunds, ""},
		{"accept without the storage capability", "nocap", func() proto.Message { return acceptMsg(2, blobtree.NewReplica(data, s.addr("nocap"))) },
			types.CodeUnauthorized, `does not declare the "storage" capability`},
		{"accept by an unregistered account", "outsider", func() proto.Message { return acceptMsg(2, blobtree.NewReplica(data, s.addr("outsider"))) },
			types.CodeUnauthorized, "is not a registered provider"},
		{"accept by the client", "client", func() proto.Message { return acceptMsg(2, r) }, types.CodeUnauthorized, "cannot accept its own deal"},
		{"accept an active deal", "p2", func() proto.Message { return acceptMsg(1, blobtree.NewReplica(data, s.addr("p2"))) }, types.CodeInvalid, "deal 1 is active, not open"},
		{"accept a missing deal", "p2", func() proto.Message { return acceptMsg(9, r) }, types.CodeNotFound, "deal 9 does not exist"},
		{"cancel an active deal", "client", func() proto.Message { return &types.MsgCancelDeal{DealId: 1} }, types.CodeInvalid, "only an open deal can be cancelled"},
		{"cancel another's deal", "outsider", func() proto.Message { return &types.MsgCancelDeal{DealId: 2} }, types.CodeUnauthorized, "only deal 2's client may cancel it"},
		{"proof before the seed", "p1", func() proto.Message {
			ps, _ := proofs(t, r, []uint64{0, 1, 2, 3}, nil)
			return &types.MsgProveStorage{DealId: 1, Epoch: c.Epoch, Proofs: ps}
		}, types.CodeInvalid, fmt.Sprintf("epoch %d is not challenged yet (its seed is drawn at the end of height %d)", c.Epoch, c.SeedHeight)},
	}
	run := func(cases []tc) {
		for _, x := range cases {
			t.Run(x.name, func(t *testing.T) {
				fp := s.fingerprint()
				code, log := s.send(x.label, x.msg())
				if code != x.code || !strings.Contains(log, x.want) {
					t.Fatalf("code %d %q, want %d %q", code, log, x.code, x.want)
				}
				if s.fingerprint() != fp {
					t.Fatal("state changed")
				}
			})
		}
	}
	run(before)
	c = s.awaitChallenge(1)
	other := c.Indices[0] + 1
	if other >= blobtree.SegmentCount(r.Size) {
		other = 0
	}
	after := []tc{
		{"wrong index", "p1", func() proto.Message {
			ps := good()
			p, _ := r.Prove(other)
			ps[0] = storage.ProofOf(p)
			return &types.MsgProveStorage{DealId: 1, Epoch: c.Epoch, Proofs: ps}
		}, types.CodeInvalid, fmt.Sprintf("proof 0 answers segment %d, the challenge is segment %d", other, c.Indices[0])},
		{"wrong replica path", "p1", func() proto.Message {
			ps := good()
			ps[1].ReplicaPath[0][0] ^= 1
			return &types.MsgProveStorage{DealId: 1, Epoch: c.Epoch, Proofs: ps}
		}, types.CodeInvalid, "proof 1 (segment"},
		{"wrong data path", "p1", func() proto.Message {
			ps := good()
			ps[2].DataPath[0][0] ^= 1
			return &types.MsgProveStorage{DealId: 1, Epoch: c.Epoch, Proofs: ps}
		}, types.CodeInvalid, "proof 2 (segment"},
		{"too few proofs", "p1", func() proto.Message {
			return &types.MsgProveStorage{DealId: 1, Epoch: c.Epoch, Proofs: good()[:3]}
		}, types.CodeInvalid, "3 proofs for 4 challenges"},
		{"a future epoch", "p1", func() proto.Message {
			return &types.MsgProveStorage{DealId: 1, Epoch: c.Epoch + 1, Proofs: good()}
		}, types.CodeInvalid, fmt.Sprintf("epoch %d is not challenged yet", c.Epoch+1)},
		{"not the provider", "p2", func() proto.Message {
			return &types.MsgProveStorage{DealId: 1, Epoch: c.Epoch, Proofs: good()}
		}, types.CodeUnauthorized, "is not deal 1's provider"},
		{"an open deal", "p1", func() proto.Message {
			return &types.MsgProveStorage{DealId: 2, Epoch: c.Epoch, Proofs: good()}
		}, types.CodeInvalid, "deal 2 is open: nothing to prove"},
		{"a short prev_leaf", "p1", func() proto.Message {
			ps := good()
			ps[0].PrevLeaf = ps[0].PrevLeaf[:31]
			return &types.MsgProveStorage{DealId: 1, Epoch: c.Epoch, Proofs: ps}
		}, types.CodeMalformed, "prev_leaf must be 32 bytes"},
	}
	run(after)
	// Past the deadline the epoch is a miss and proofs for it are refused.
	ps := good()
	s.until(c.Deadline)
	run([]tc{{"proof after the deadline", "p1", func() proto.Message {
		return &types.MsgProveStorage{DealId: 1, Epoch: c.Epoch, Proofs: ps}
	}, types.CodeInvalid, fmt.Sprintf("epoch %d's deadline (height %d) has passed", c.Epoch, c.Deadline)}})
	// A good proof of the next epoch passes; proving it again is refused.
	c = s.awaitChallenge(1)
	ps = good()
	s.ok("p1", &types.MsgProveStorage{DealId: 1, Epoch: c.Epoch, Proofs: ps})
	run([]tc{{"proof twice", "p1", func() proto.Message {
		return &types.MsgProveStorage{DealId: 1, Epoch: c.Epoch, Proofs: ps}
	}, types.CodeInvalid, fmt.Sprintf("epoch %d is already proved", c.Epoch)}})
	// The open deal is cancelled and refunded in full.
	net := s.net("client")
	s.ok("client", &types.MsgCancelDeal{DealId: 2})
	if d := s.deal(2); d.Status != "cancelled" || d.Escrow != 0 || d.Refunded != 5000 || s.net("client") != net+5000 {
		t.Fatalf("cancelled deal %+v, client net %d → %d", d, net, s.net("client"))
	}
}

// TestStorageProviderRegistration: a provider may register with only the
// storage capability and no model; without it (or wasm) a model is needed.
func TestStorageProviderRegistration(t *testing.T) {
	h := newHarnessWith(t, map[string]uint64{"a": 10_000_000_000, "b": 10_000_000_000}, storParams)
	mustOK(t, h.block(h.tx("a", &types.MsgBondProvider{Amount: h.params.MinProviderStake}), h.tx("b", &types.MsgBondProvider{Amount: h.params.MinProviderStake})))
	mustOK(t, h.block(h.tx("a", &types.MsgRegisterProvider{Info: &types.ProviderInfo{Endpoint: "http://127.0.0.1:1", Capabilities: []string{"storage"}}})))
	if v, _, err := h.app.QueryJSON(api.ProviderPath(addrOf(key("a"))), 0); err != nil || !v.(api.ProviderView).Registered {
		t.Fatalf("storage-only provider not registered: %v %+v", err, v)
	}
	err := types.SetMsg(&types.TxBody{ChainId: testChain}, &types.MsgRegisterProvider{Info: &types.ProviderInfo{Endpoint: "http://127.0.0.1:1", Capabilities: []string{"chat"}}})
	if err == nil || !strings.Contains(err.Error(), "none only with the wasm, storage or zk capability") {
		t.Fatalf("a model-less chat provider: %v", err)
	}
}

// TestStorageNeedsParams: a genesis without params.storage has no storage
// market.
func TestStorageNeedsParams(t *testing.T) {
	s := newStorHarness(t, func(p *types.Params) { p.Storage = nil })
	r := blobtree.NewReplica(blob(6, 100), s.addr("p1"))
	code, log := s.send("client", createMsg(r, 5, 1000, 1, 4))
	if code != types.CodeInvalid || !strings.Contains(log, "this chain has no storage market") {
		t.Fatalf("code %d %s", code, log)
	}
}

// TestStorageDetectionRate measures detection on chain: 100 deals, each on
// its own blob of which the provider lost 10 % of the segments, are
// challenged with k segments per epoch until each is caught. The fraction
// of challenged epochs that passed must match the formula (1 − f)^k
// (0.656 at k = 4, 0.185 at k = 16) within 3.5 standard deviations, and
// the chain's first fault of each deal must be the epoch its lost segments
// were first challenged.
func TestStorageDetectionRate(t *testing.T) {
	for _, k := range []uint32{4, 16} {
		t.Run(fmt.Sprintf("k=%d", k), func(t *testing.T) { detectionRate(t, k) })
	}
}

func detectionRate(t *testing.T, k uint32) {
	s := newStorHarness(t, func(p *types.Params) { p.Storage.MaxMisses = 100 })
	const deals, segs = 100, 20
	reps := make([]*blobtree.Replica, deals+1)
	lost := make([]map[uint64]bool, deals+1)
	var txs [][]byte
	for i := 1; i <= deals; i++ {
		reps[i] = blobtree.NewReplica(blob(uint64(100+i), segs*blobtree.SegmentSize), s.addr("p1"))
		lost[i] = map[uint64]bool{}
		r := rand.New(rand.NewPCG(uint64(i), 3))
		for len(lost[i]) < segs/10 {
			lost[i][r.Uint64N(segs)] = true
		}
		tx, _ := s.sign("client", createMsg(reps[i], 50, 1000, 1_000_000, k))
		txs = append(txs, tx)
	}
	mustOK(t, s.block(txs...))
	txs = nil
	for i := 1; i <= deals; i++ {
		tx, _ := s.sign("p1", acceptMsg(uint64(i), reps[i]))
		txs = append(txs, tx)
	}
	mustOK(t, s.block(txs...))
	caught := map[int]bool{}
	caughtAt := map[int]uint64{}
	provedBy := map[int]uint64{}
	passed, trials := 0, 0
	for len(caught) < deals {
		c := s.awaitChallenge(1) // every deal was accepted in the same block: same epochs
		txs = nil
		for i := 1; i <= deals; i++ {
			if caught[i] {
				continue
			}
			ci := s.challenge(uint64(i))
			if ci.Epoch != c.Epoch {
				t.Fatalf("deal %d at epoch %d, deal 1 at %d", i, ci.Epoch, c.Epoch)
			}
			trials++
			ps, ok := proofs(t, reps[i], ci.Indices, lost[i])
			if !ok {
				caught[i], caughtAt[i] = true, ci.Epoch
				continue
			}
			passed++
			provedBy[i]++
			tx, _ := s.sign("p1", &types.MsgProveStorage{DealId: uint64(i), Epoch: ci.Epoch, Proofs: ps})
			txs = append(txs, tx)
		}
		mustOK(t, s.block(txs...))
		s.until(c.Deadline)
		if trials > 20*deals {
			t.Fatal("detection never finished")
		}
	}
	for i := 1; i <= deals; i++ {
		// The chain recorded the first miss exactly where the lost
		// segments were first challenged.
		fs := s.faults(uint64(i))
		if d := s.deal(uint64(i)); len(fs) == 0 || fs[0].Epoch != caughtAt[i] || d.Proved != provedBy[i] {
			t.Fatalf("deal %d: faults %+v, %d proved; first catch at epoch %d after %d proved", i, fs, d.Proved, caughtAt[i], provedBy[i])
		}
	}
	want := math.Pow(0.9, float64(k))
	got := float64(passed) / float64(trials)
	t.Logf("10 %% of segments lost, k = %d: %d of %d challenged epochs passed = %.3f; (1 − f)^k = %.3f; mean epochs to a catch %.2f (formula %.2f)",
		k, passed, trials, got, want, float64(trials)/deals, 1/(1-want))
	if tol := 3.5 * math.Sqrt(want*(1-want)/float64(trials)); math.Abs(got-want) > tol {
		t.Fatalf("pass rate %.3f, formula %.3f ± %.3f", got, want, tol)
	}
}
