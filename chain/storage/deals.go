package storage

import (
	"bytes"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/blobtree"
	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// ParamsOf returns the market's params, or the error every message of a
// chain without a storage market gets.
func ParamsOf(p types.Params) (*types.StorageParams, error) {
	if p.Storage == nil {
		return nil, types.Errorf(types.CodeInvalid, "this chain has no storage market (its genesis has no params.storage)")
	}
	return p.Storage, nil
}

// bps returns x × bps / 10000 rounded down (x < 2^64, bps <= 10000: fits).
func bps(x, b uint64) uint64 {
	hi, lo := bits.Mul64(x, b)
	q, _ := bits.Div64(hi, lo, 10000)
	return q
}

// SeedHeight is the height at whose end the epochs module draws epoch n's
// seed (chain/epochs): the challenges of epoch n exist from then on.
func SeedHeight(p types.Params, n uint64) int64 {
	_, end := epochs.Bounds(p, n)
	return end + p.CommitWindow + 1 + p.BeaconWindow
}

// Deadline is the last height at which a proof of epoch n is accepted:
// proof_window blocks after the seed, at most epoch_length − 1, so it
// falls before the next epoch's seed (one open challenge per deal).
func Deadline(p types.Params, n uint64) int64 {
	return SeedHeight(p, n) + min(p.Storage.ProofWindow, p.EpochLength-1)
}

// Challenge is one epoch's challenge of a deal: the segments to prove.
type Challenge struct {
	DealID   uint64
	Epoch    uint64
	Seed     []byte   // the epoch's seed (empty until drawn)
	Indices  []uint64 // blobtree.Challenges of the seed (empty until drawn)
	Drawn    int64    // the seed's height
	Deadline int64
}

// CurrentChallenge returns the challenge an active deal must answer next
// (its indices are empty until the epoch's seed is drawn).
func CurrentChallenge(kv store.KV, p types.Params, id uint64) (*Challenge, error) {
	if _, err := ParamsOf(p); err != nil {
		return nil, err
	}
	d := GetDeal(kv, id)
	if d == nil {
		return nil, types.Errorf(types.CodeNotFound, "deal %d does not exist", id)
	}
	if d.Status != types.DealStatus_DEAL_STATUS_ACTIVE {
		return nil, types.Errorf(types.CodeInvalid, "deal %d is %s: no challenge", id, StatusName(d.Status))
	}
	c := &Challenge{DealID: id, Epoch: d.NextEpoch, Drawn: SeedHeight(p, d.NextEpoch), Deadline: Deadline(p, d.NextEpoch)}
	if e := epochs.Get(kv, d.NextEpoch); e != nil && len(e.Seed) > 0 {
		c.Seed = e.Seed
		c.Indices = blobtree.Challenges(e.Seed, id, d.NextEpoch, blobtree.SegmentCount(d.Size), int(d.Challenges))
	}
	return c, nil
}

// StatusName is a deal status's short name ("open", "active", ...), as
// chain/api shows it.
func StatusName(s types.DealStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "DEAL_STATUS_"))
}

// Create posts a deal for client and escrows epochs × price_per_epoch. It
// returns the deal's id.
func Create(kv store.KV, p types.Params, height int64, client []byte, m *types.MsgCreateDeal) (uint64, error) {
	if _, err := ParamsOf(p); err != nil {
		return 0, err
	}
	hi, escrow := bits.Mul64(m.Epochs, m.PricePerEpoch)
	if hi != 0 {
		return 0, types.Errorf(types.CodeOverflow, "epochs %d × price_per_epoch %d overflows", m.Epochs, m.PricePerEpoch)
	}
	if bytes.Equal(m.Provider, client) {
		return 0, types.Errorf(types.CodeInvalid, "a client cannot name itself as the deal's provider")
	}
	if err := bank.Send(kv, client, Account, escrow); err != nil {
		return 0, err
	}
	id := next(kv, seqDeal)
	d := &types.StorageDeal{
		Id: id, Client: client, BlobId: m.BlobId, Size: m.Size, Epochs: m.Epochs, PricePerEpoch: m.PricePerEpoch,
		Collateral: m.Collateral, Challenges: m.Challenges, NamedProvider: m.Provider,
		Status: types.DealStatus_DEAL_STATUS_OPEN, Escrow: escrow, CreatedHeight: height, Score: FullScore,
	}
	putDeal(kv, d)
	kv.Set(codec.Key(prefixByClient, client, codec.U64(id)), []byte{1})
	return id, nil
}

// qualify says why provider may not take a deal now, or nil.
func qualify(kv store.KV, p types.Params, provider []byte) error {
	pv := registry.Get(kv, provider)
	if pv == nil || !pv.Registered {
		return types.Errorf(types.CodeUnauthorized, "%s is not a registered provider", types.Address(provider))
	}
	if pv.Jailed {
		return types.Errorf(types.CodeUnauthorized, "provider %s is jailed", types.Address(provider))
	}
	if pv.Info == nil || !slices.Contains(pv.Info.Capabilities, Capability) {
		return types.Errorf(types.CodeUnauthorized, "provider %s does not declare the %q capability", types.Address(provider), Capability)
	}
	if b := stake.ProviderBond(kv, provider); b < p.MinProviderStake {
		return types.Errorf(types.CodeInsufficientFunds, "provider %s has %d bonded, below min_provider_stake %d", types.Address(provider), b, p.MinProviderStake)
	}
	return nil
}

// Accept gives an open deal to provider: it posts its replica root and
// locks the deal's collateral. The deal's first challenged epoch is the
// chain epoch after the current one (a whole epoch to seal and hold).
func Accept(kv store.KV, p types.Params, height int64, provider []byte, m *types.MsgAcceptDeal) error {
	if _, err := ParamsOf(p); err != nil {
		return err
	}
	d := GetDeal(kv, m.DealId)
	switch {
	case d == nil:
		return types.Errorf(types.CodeNotFound, "deal %d does not exist", m.DealId)
	case d.Status != types.DealStatus_DEAL_STATUS_OPEN:
		return types.Errorf(types.CodeInvalid, "deal %d is %s, not open", d.Id, StatusName(d.Status))
	case bytes.Equal(provider, d.Client):
		return types.Errorf(types.CodeUnauthorized, "the client cannot accept its own deal")
	case len(d.NamedProvider) != 0 && !bytes.Equal(provider, d.NamedProvider):
		return types.Errorf(types.CodeUnauthorized, "deal %d may only be accepted by %s", d.Id, types.Address(d.NamedProvider))
	}
	for _, x := range d.Dropped {
		if bytes.Equal(x, provider) {
			return types.Errorf(types.CodeUnauthorized, "provider %s was dropped from deal %d", types.Address(provider), d.Id)
		}
	}
	if err := qualify(kv, p, provider); err != nil {
		return err
	}
	if bz := kv.Get(codec.Key(prefixReplica, m.ReplicaRoot)); bz != nil {
		return types.Errorf(types.CodeInvalid, "replica root %x is already posted for deal %d: each provider seals its own replica", m.ReplicaRoot, codec.ReadU64(bz))
	}
	if err := bank.Send(kv, provider, Account, d.Collateral); err != nil {
		return err
	}
	d.Status = types.DealStatus_DEAL_STATUS_ACTIVE
	d.Provider = provider
	d.ReplicaRoot = m.ReplicaRoot
	d.Locked = d.Collateral
	d.ConsecutiveMisses = 0
	d.Score = FullScore
	d.AcceptedHeight = height
	d.NextEpoch = epochs.Number(p, height) + 1
	putDeal(kv, d)
	kv.Set(codec.Key(prefixReplica, m.ReplicaRoot), codec.U64(d.Id))
	kv.Set(codec.Key(prefixByProvider, provider, codec.U64(d.Id)), []byte{1})
	store.Enqueue(kv, qDeadline, Deadline(p, d.NextEpoch), d.Id)
	return nil
}

// Prove checks one epoch's proofs of an active deal from its provider and
// pays the epoch: price_per_epoch from the escrow, fee_bps of it to the
// fee pool and the rest to the provider. It returns what the provider got.
func Prove(kv store.KV, p types.Params, height int64, provider []byte, m *types.MsgProveStorage) (uint64, error) {
	sp, err := ParamsOf(p)
	if err != nil {
		return 0, err
	}
	d := GetDeal(kv, m.DealId)
	switch {
	case d == nil:
		return 0, types.Errorf(types.CodeNotFound, "deal %d does not exist", m.DealId)
	case d.Status != types.DealStatus_DEAL_STATUS_ACTIVE:
		return 0, types.Errorf(types.CodeInvalid, "deal %d is %s: nothing to prove", d.Id, StatusName(d.Status))
	case !bytes.Equal(provider, d.Provider):
		return 0, types.Errorf(types.CodeUnauthorized, "%s is not deal %d's provider (%s)", types.Address(provider), d.Id, types.Address(d.Provider))
	case m.Epoch < d.NextEpoch:
		if e := GetEpoch(kv, d.Id, m.Epoch); e != nil && e.Proved {
			return 0, types.Errorf(types.CodeInvalid, "deal %d: epoch %d is already proved", d.Id, m.Epoch)
		}
		return 0, types.Errorf(types.CodeInvalid, "deal %d: epoch %d's deadline (height %d) has passed", d.Id, m.Epoch, Deadline(p, m.Epoch))
	case m.Epoch > d.NextEpoch:
		return 0, types.Errorf(types.CodeInvalid, "deal %d: epoch %d is not challenged yet (the deal's next epoch is %d)", d.Id, m.Epoch, d.NextEpoch)
	}
	c, err := CurrentChallenge(kv, p, d.Id)
	if err != nil {
		return 0, err
	}
	if len(c.Indices) == 0 {
		return 0, types.Errorf(types.CodeInvalid, "deal %d: epoch %d is not challenged yet (its seed is drawn at the end of height %d)", d.Id, m.Epoch, c.Drawn)
	}
	if height > c.Deadline { // unreachable: the deadline's end block settles the epoch
		return 0, types.Errorf(types.CodeInvalid, "deal %d: epoch %d's deadline (height %d) has passed", d.Id, m.Epoch, c.Deadline)
	}
	if len(m.Proofs) != len(c.Indices) {
		return 0, types.Errorf(types.CodeInvalid, "deal %d: %d proofs for %d challenges", d.Id, len(m.Proofs), len(c.Indices))
	}
	blobID, root := [32]byte(d.BlobId), [32]byte(d.ReplicaRoot)
	for i, pr := range m.Proofs {
		if pr.Index != c.Indices[i] {
			return 0, types.Errorf(types.CodeInvalid, "deal %d epoch %d: proof %d answers segment %d, the challenge is segment %d", d.Id, m.Epoch, i, pr.Index, c.Indices[i])
		}
		rp := &blobtree.ReplicaProof{Index: pr.Index, Segment: pr.Segment, PrevLeaf: [32]byte(pr.PrevLeaf),
			ReplicaPath: hashes(pr.ReplicaPath), PrevPath: hashes(pr.PrevPath), DataPath: hashes(pr.DataPath)}
		if err := blobtree.VerifyReplica(blobID, d.Size, d.Provider, root, rp); err != nil {
			return 0, types.Errorf(types.CodeInvalid, "deal %d epoch %d: proof %d (segment %d) fails: %v", d.Id, m.Epoch, i, pr.Index, err)
		}
	}
	fee := bps(d.PricePerEpoch, sp.FeeBps)
	paid := d.PricePerEpoch - fee
	if d.Escrow < d.PricePerEpoch {
		return 0, fmt.Errorf("deal %d: escrow %d below the epoch's price %d", d.Id, d.Escrow, d.PricePerEpoch)
	}
	if err := bank.Send(kv, Account, bank.FeePool, fee); err != nil {
		return 0, err
	}
	if err := bank.Send(kv, Account, d.Provider, paid); err != nil {
		return 0, err
	}
	d.Escrow -= d.PricePerEpoch
	d.Paid += paid
	d.Fees += fee
	d.Proved++
	d.ConsecutiveMisses = 0
	d.Score = min(FullScore, d.Score+sp.ScoreProofBps)
	kv.Set(codec.Key(prefixEpoch, codec.U64(d.Id), codec.U64(m.Epoch)), codec.Marshal(&types.StorageEpoch{
		DealId: d.Id, Epoch: m.Epoch, Provider: d.Provider, Proved: true, Height: height, Paid: paid, Fee: fee}))
	store.Dequeue(kv, qDeadline, c.Deadline, d.Id)
	if err := advance(kv, p, height, d, false); err != nil {
		return 0, err
	}
	return paid, nil
}

func hashes(in [][]byte) [][32]byte {
	out := make([][32]byte, len(in))
	for i, h := range in {
		out[i] = [32]byte(h)
	}
	return out
}

// advance moves an active deal past its settled epoch: done after its
// last epoch (the provider's collateral back unless dropped), reopened
// when the provider was dropped, otherwise on to the next epoch's
// deadline. It stores d.
func advance(kv store.KV, p types.Params, height int64, d *types.StorageDeal, dropped bool) error {
	d.EpochsDone++
	d.NextEpoch++
	switch {
	case d.EpochsDone >= d.Epochs:
		if d.Locked > 0 {
			if err := bank.Send(kv, Account, d.Provider, d.Locked); err != nil {
				return err
			}
			d.Locked = 0
		}
		if d.Escrow != 0 { // unreachable: every epoch took its price out
			return fmt.Errorf("deal %d done with %d escrow left", d.Id, d.Escrow)
		}
		kv.Delete(codec.Key(prefixReplica, d.ReplicaRoot))
		d.Status = types.DealStatus_DEAL_STATUS_DONE
		d.EndedHeight = height
	case dropped:
		kv.Delete(codec.Key(prefixReplica, d.ReplicaRoot))
		d.Dropped = append(d.Dropped, d.Provider)
		d.Provider, d.ReplicaRoot, d.NamedProvider = nil, nil, nil
		d.Status = types.DealStatus_DEAL_STATUS_OPEN
		d.Reopened++
		d.NextEpoch = 0
	default:
		store.Enqueue(kv, qDeadline, Deadline(p, d.NextEpoch), d.Id)
	}
	putDeal(kv, d)
	return nil
}

// miss settles an unproved epoch at its deadline: the epoch's price back
// to the client, miss_slash_bps of the remaining collateral to the client,
// the score lowered; max_misses in a row drop the provider.
func miss(kv store.KV, p types.Params, height int64, d *types.StorageDeal) (*types.StorageFault, error) {
	sp := p.Storage
	refund := min(d.PricePerEpoch, d.Escrow)
	slash := bps(d.Locked, sp.MissSlashBps)
	d.Escrow -= refund
	d.Locked -= slash
	d.Refunded += refund
	d.Slashed += slash
	d.Missed++
	d.ConsecutiveMisses++
	d.Score -= min(d.Score, sp.ScoreMissBps)
	f := &types.StorageFault{Id: next(kv, seqFault), DealId: d.Id, Provider: d.Provider, Epoch: d.NextEpoch, Height: height,
		Slashed: slash, Refunded: refund, Consecutive: d.ConsecutiveMisses, Score: d.Score}
	if d.ConsecutiveMisses >= sp.MaxMisses {
		f.Dropped = true
		f.Forfeited = d.Locked
		d.Slashed += d.Locked
		d.Locked = 0
	}
	if err := bank.Send(kv, Account, d.Client, refund+slash+f.Forfeited); err != nil {
		return nil, err
	}
	kv.Set(codec.Key(prefixEpoch, codec.U64(d.Id), codec.U64(f.Epoch)), codec.Marshal(&types.StorageEpoch{
		DealId: d.Id, Epoch: f.Epoch, Provider: d.Provider, Height: height, Slashed: slash + f.Forfeited}))
	kv.Set(codec.Key(prefixFault, codec.U64(f.Id)), codec.Marshal(f))
	kv.Set(codec.Key(prefixDealFaults, codec.U64(d.Id), codec.U64(f.Id)), []byte{1})
	return f, advance(kv, p, height, d, f.Dropped)
}

// Cancel ends a deal no provider holds (open, or reopened) for its
// client and returns the rest of the escrow. It returns the refund.
func Cancel(kv store.KV, p types.Params, height int64, client []byte, id uint64) (uint64, error) {
	if _, err := ParamsOf(p); err != nil {
		return 0, err
	}
	d := GetDeal(kv, id)
	switch {
	case d == nil:
		return 0, types.Errorf(types.CodeNotFound, "deal %d does not exist", id)
	case !bytes.Equal(client, d.Client):
		return 0, types.Errorf(types.CodeUnauthorized, "only deal %d's client may cancel it", id)
	case d.Status != types.DealStatus_DEAL_STATUS_OPEN:
		return 0, types.Errorf(types.CodeInvalid, "deal %d is %s: only an open deal can be cancelled", id, StatusName(d.Status))
	}
	refund := d.Escrow
	if err := bank.Send(kv, Account, client, refund); err != nil {
		return 0, err
	}
	d.Escrow = 0
	d.Refunded += refund
	d.Status = types.DealStatus_DEAL_STATUS_CANCELLED
	d.EndedHeight = height
	putDeal(kv, d)
	return refund, nil
}

// EndBlock settles the epochs whose proof deadline is this height and
// were not proved: each is a miss (a fault).
func EndBlock(kv store.KV, p types.Params, height int64) ([]abci.Event, error) {
	if p.Storage == nil {
		return nil, nil
	}
	var events []abci.Event
	for _, id := range store.Due(kv, qDeadline, height) {
		d := GetDeal(kv, id)
		if d == nil || d.Status != types.DealStatus_DEAL_STATUS_ACTIVE {
			return nil, fmt.Errorf("deadline queued for deal %d, which is not active", id)
		}
		f, err := miss(kv, p, height, d)
		if err != nil {
			return nil, fmt.Errorf("deal %d: %w", id, err)
		}
		events = append(events, ev("storage_fault", "deal_id", u64(id), "provider", types.Address(f.Provider).String(),
			"epoch", u64(f.Epoch), "slashed", u64(f.Slashed), "consecutive", u64(uint64(f.Consecutive)),
			"dropped", fmt.Sprint(f.Dropped), "forfeited", u64(f.Forfeited), "score", u64(f.Score)))
		if f.Dropped {
			if d.Status == types.DealStatus_DEAL_STATUS_OPEN {
				events = append(events, ev("storage_deal_reopened", "deal_id", u64(id)))
			}
		}
		if d.Status == types.DealStatus_DEAL_STATUS_DONE {
			events = append(events, ev("storage_deal_done", "deal_id", u64(id)))
		}
	}
	return events, nil
}

func ev(typ string, attrs ...string) abci.Event {
	e := abci.Event{Type: typ}
	for i := 0; i+1 < len(attrs); i += 2 {
		e.Attributes = append(e.Attributes, abci.EventAttribute{Key: attrs[i], Value: attrs[i+1], Index: true})
	}
	return e
}
