package app

// The epoch beacon's ABCI side (the rules are in chain/epochs beacon.go):
//
//   - ExtendVote: at a height of an epoch's beacon window, a validator's
//     precommit carries its VRF proof for that epoch.
//   - VerifyVoteExtension: a malformed extension, or a proof that does not
//     verify under the sender's consensus key, is rejected (only a faulty
//     validator sends one, and rejecting drops just its vote). A valid proof
//     for another epoch is accepted and ignored: an honest vote must never be
//     dropped over a window boundary.
//   - PrepareProposal: the proposer copies the previous height's valid proofs
//     for the window's epoch into a beacon tx, the block's first tx.
//   - ProcessProposal: a block whose beacon tx is not first, is for the wrong
//     epoch, is malformed, or carries a proof that does not verify under its
//     validator's key is rejected.
//   - FinalizeBlock: the beacon tx is checked again (blocks synced or replayed
//     are not processed) and each validator's first output is recorded.
//   - CheckTx refuses beacon txs: only a proposer makes them.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"sort"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtproto "github.com/cometbft/cometbft/api/cometbft/types/v1"

	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// beaconState is the app's local beacon state: its own consensus key (nil on
// a node that does not validate) and caches. None of it is consensus state.
type beaconState struct {
	mu  sync.Mutex
	key ed25519.PrivateKey
	// own proof for ownEpoch (a proof is deterministic; every height of a
	// window sends the same one)
	ownEpoch uint64
	ownProof []byte
	// verified maps pubkey||epoch||proof to the VRF output, so a proof is
	// verified once, not in VerifyVoteExtension, PrepareProposal,
	// ProcessProposal and FinalizeBlock each.
	verified map[string][]byte
}

const maxVerifiedCache = 4096

// SetBeaconKey gives the app the node's CometBFT consensus private key, with
// which it makes its VRF proofs. Without one (a node that does not validate)
// its vote extensions are empty.
func (a *App) SetBeaconKey(priv ed25519.PrivateKey) error {
	if len(priv) != ed25519.PrivateKeySize {
		return fmt.Errorf("beacon key: %d bytes, want an ed25519 private key of %d", len(priv), ed25519.PrivateKeySize)
	}
	if !bytes.Equal(ed25519.NewKeyFromSeed(priv.Seed()), priv) {
		return fmt.Errorf("beacon key: public half does not match the seed")
	}
	a.beacon.mu.Lock()
	a.beacon.key = bytes.Clone(priv)
	a.beacon.ownProof = nil
	a.beacon.mu.Unlock()
	return nil
}

func (a *App) ownProof(n uint64) []byte {
	b := &a.beacon
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.key == nil {
		return nil
	}
	if b.ownProof == nil || b.ownEpoch != n {
		b.ownEpoch, b.ownProof = n, epochs.Prove(b.key, a.chainID, n)
	}
	return b.ownProof
}

// verifyContribution checks one validator's proof for epoch n (cached).
func (a *App) verifyContribution(pub []byte, n uint64, proof []byte) ([]byte, error) {
	ck := string(pub) + string(binary.BigEndian.AppendUint64(nil, n)) + string(proof)
	b := &a.beacon
	b.mu.Lock()
	out, ok := b.verified[ck]
	b.mu.Unlock()
	if ok {
		return out, nil
	}
	out, err := epochs.VerifyProof(pub, a.chainID, n, proof)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	if b.verified == nil || len(b.verified) >= maxVerifiedCache {
		b.verified = map[string][]byte{}
	}
	b.verified[ck] = out
	b.mu.Unlock()
	return out, nil
}

// beaconNotice logs how this chain draws its epoch seeds (at genesis and at
// every start), warning when the seed block's proposer can grind it.
func (a *App) beaconNotice(cp *cmtproto.ConsensusParams) {
	if a.params.BeaconWindow == 0 {
		a.log.Warn("this chain's genesis has no epoch beacon (beacon_window 0): epoch seeds are block hashes, which the seed block's proposer can grind")
		return
	}
	if cp != nil && (cp.Feature == nil || cp.Feature.VoteExtensionsEnableHeight == nil || cp.Feature.VoteExtensionsEnableHeight.Value <= 0) {
		a.log.Warn("beacon_window is set but CometBFT vote extensions are disabled in the consensus params: epoch seeds will fall back to block hashes",
			"beacon_window", a.params.BeaconWindow)
	}
}

// ExtendVote adds this validator's VRF proof to its precommits at the
// heights of an epoch's beacon window.
func (a *App) ExtendVote(_ context.Context, req *abci.ExtendVoteRequest) (*abci.ExtendVoteResponse, error) {
	n, ok := epochs.BeaconEpoch(a.params, req.Height)
	if !ok {
		return &abci.ExtendVoteResponse{}, nil
	}
	proof := a.ownProof(n)
	if proof == nil {
		return &abci.ExtendVoteResponse{}, nil
	}
	return &abci.ExtendVoteResponse{VoteExtension: types.EncodeVoteExtension(n, proof)}, nil
}

// VerifyVoteExtension checks another validator's extension (see the top of
// this file for what is rejected and why so little is).
func (a *App) VerifyVoteExtension(_ context.Context, req *abci.VerifyVoteExtensionRequest) (*abci.VerifyVoteExtensionResponse, error) {
	accept := &abci.VerifyVoteExtensionResponse{Status: abci.VERIFY_VOTE_EXTENSION_STATUS_ACCEPT}
	if len(req.VoteExtension) == 0 {
		return accept, nil
	}
	reject := func(err error) (*abci.VerifyVoteExtensionResponse, error) {
		a.log.Warn("vote extension rejected", "validator", fmt.Sprintf("%X", req.ValidatorAddress), "height", req.Height, "err", err)
		a.metrics.beaconRejected.WithLabelValues("vote_extension").Inc()
		return &abci.VerifyVoteExtensionResponse{Status: abci.VERIFY_VOTE_EXTENSION_STATUS_REJECT}, nil
	}
	n, proof, err := types.DecodeVoteExtension(req.VoteExtension)
	if err != nil {
		return reject(err)
	}
	kv, err := a.Snapshot(0)
	if err != nil {
		return accept, nil // no committed state to judge by (genesis height): ignored
	}
	pub, ok := epochs.Contributor(kv, a.params, req.ValidatorAddress)
	if !ok {
		return accept, nil // no power in state: never counted, and its vote must stand
	}
	if _, err := a.verifyContribution(pub, n, proof); err != nil {
		return reject(err)
	}
	return accept, nil
}

// beaconTxFor builds the beacon tx a proposer of height puts first: the
// valid, not yet recorded proofs for the window's epoch from the extended
// commit of height-1. Nil when there is nothing to carry.
func (a *App) beaconTxFor(kv store.KV, height int64, commit abci.ExtendedCommitInfo) []byte {
	n, ok := epochs.BeaconEpoch(a.params, height-1)
	if !ok {
		return nil
	}
	bt := &types.BeaconTx{Epoch: n}
	seen := map[string]bool{}
	for _, v := range commit.Votes {
		if v.BlockIdFlag != cmtproto.BlockIDFlagCommit || len(v.VoteExtension) == 0 {
			continue
		}
		addr := v.Validator.Address
		if seen[string(addr)] || epochs.HasContribution(kv, n, addr) {
			continue
		}
		en, proof, err := types.DecodeVoteExtension(v.VoteExtension)
		if err != nil || en != n {
			continue
		}
		pub, ok := epochs.Contributor(kv, a.params, addr)
		if !ok {
			continue
		}
		if _, err := a.verifyContribution(pub, n, proof); err != nil {
			continue
		}
		seen[string(addr)] = true
		bt.Entries = append(bt.Entries, types.BeaconEntry{Validator: bytes.Clone(addr), Proof: bytes.Clone(proof)})
	}
	if len(bt.Entries) == 0 {
		return nil
	}
	sort.Slice(bt.Entries, func(i, j int) bool { return bytes.Compare(bt.Entries[i].Validator, bt.Entries[j].Validator) < 0 })
	if len(bt.Entries) > types.MaxBeaconEntries {
		bt.Entries = bt.Entries[:types.MaxBeaconEntries] // the rest come in the next block
	}
	return types.EncodeBeaconTx(bt)
}

// protoTxSize is what a tx adds to a block's data (CometBFT checks a
// proposal against MaxTxBytes with this): field tag, length, bytes.
func protoTxSize(tx []byte) int64 {
	n := int64(len(tx))
	l := int64(1)
	for v := uint64(len(tx)); v >= 0x80; v >>= 7 {
		l++
	}
	return 1 + l + n
}

// PrepareProposal puts the beacon tx first (when the previous height was in
// a beacon window), then the mempool's txs in order while they fit.
func (a *App) PrepareProposal(_ context.Context, req *abci.PrepareProposalRequest) (*abci.PrepareProposalResponse, error) {
	var txs [][]byte
	var total int64
	add := func(tx []byte) bool {
		if total+protoTxSize(tx) > req.MaxTxBytes {
			return false
		}
		total += protoTxSize(tx)
		txs = append(txs, tx)
		return true
	}
	if _, ok := epochs.BeaconEpoch(a.params, req.Height-1); ok {
		if kv, err := a.Snapshot(0); err == nil {
			if bt := a.beaconTxFor(kv, req.Height, req.LocalLastCommit); bt != nil && !add(bt) {
				a.log.Warn("beacon tx does not fit in the block", "height", req.Height, "bytes", len(bt), "max_tx_bytes", req.MaxTxBytes)
			}
		}
	}
	for _, tx := range req.Txs {
		if types.IsBeaconTx(tx) {
			continue // CheckTx refuses them; never from the mempool
		}
		if !add(tx) {
			break
		}
	}
	return &abci.PrepareProposalResponse{Txs: txs}, nil
}

// checkBeaconTx validates a beacon tx for the block at height against kv
// (the state after height-1) and returns its epoch and the entries' VRF
// outputs, in entry order.
func (a *App) checkBeaconTx(kv store.KV, height int64, tx []byte) (uint64, *types.BeaconTx, [][]byte, error) {
	n, ok := epochs.BeaconEpoch(a.params, height-1)
	if !ok {
		return 0, nil, nil, fmt.Errorf("block %d cannot carry a beacon tx: height %d is in no epoch's beacon window", height, height-1)
	}
	bt, err := types.DecodeBeaconTx(tx)
	if err != nil {
		return 0, nil, nil, err
	}
	if bt.Epoch != n {
		return 0, nil, nil, fmt.Errorf("beacon tx for epoch %d in block %d, which carries epoch %d's", bt.Epoch, height, n)
	}
	outs := make([][]byte, len(bt.Entries))
	for i, e := range bt.Entries {
		pub, ok := epochs.Contributor(kv, a.params, e.Validator)
		if !ok {
			return 0, nil, nil, fmt.Errorf("beacon entry %d: %X is not a validator with voting power", i, e.Validator)
		}
		if outs[i], err = a.verifyContribution(pub, n, e.Proof); err != nil {
			return 0, nil, nil, fmt.Errorf("beacon entry %d (validator %X): %w", i, e.Validator, err)
		}
	}
	return n, bt, outs, nil
}

// ProcessProposal rejects a block whose beacon tx is out of place or invalid.
// Nothing else is checked here: user txs that fail are recorded as failed.
func (a *App) ProcessProposal(_ context.Context, req *abci.ProcessProposalRequest) (*abci.ProcessProposalResponse, error) {
	reject := func(err error) (*abci.ProcessProposalResponse, error) {
		a.log.Warn("proposal rejected", "height", req.Height, "proposer", fmt.Sprintf("%X", req.ProposerAddress), "err", err)
		a.metrics.beaconRejected.WithLabelValues("proposal").Inc()
		return &abci.ProcessProposalResponse{Status: abci.PROCESS_PROPOSAL_STATUS_REJECT}, nil
	}
	for i, tx := range req.Txs {
		if !types.IsBeaconTx(tx) {
			continue
		}
		if i != 0 {
			return reject(fmt.Errorf("beacon tx at index %d: only the first tx of a block may be one", i))
		}
		kv, err := a.Snapshot(0)
		if err != nil {
			return reject(fmt.Errorf("beacon tx with no committed state to check it against: %w", err))
		}
		if _, _, _, err := a.checkBeaconTx(kv, req.Height, tx); err != nil {
			return reject(err)
		}
	}
	return &abci.ProcessProposalResponse{Status: abci.PROCESS_PROPOSAL_STATUS_ACCEPT}, nil
}

// finalizeBeacon applies a block's first tx when it is a beacon tx: every
// entry must verify (else nothing is recorded and the result says why), and
// each validator's first output for the epoch is recorded.
func (a *App) finalizeBeacon(height int64, tx []byte) *abci.ExecTxResult {
	n, bt, outs, err := a.checkBeaconTx(a.tree, height, tx)
	if err != nil {
		a.metrics.txs.WithLabelValues(types.CodeInvalid.String()).Inc()
		return &abci.ExecTxResult{Code: uint32(types.CodeInvalid), Codespace: Codespace, Log: err.Error()}
	}
	recorded := 0
	for i, e := range bt.Entries {
		if epochs.RecordContribution(a.tree, n, e.Validator, outs[i]) {
			recorded++
		}
	}
	a.metrics.txs.WithLabelValues(types.CodeOK.String()).Inc()
	return &abci.ExecTxResult{Events: []abci.Event{{Type: "beacon", Attributes: []abci.EventAttribute{
		{Key: "epoch", Value: itoa(n), Index: true},
		{Key: "entries", Value: itoa(uint64(len(bt.Entries)))},
		{Key: "recorded", Value: itoa(uint64(recorded))},
	}}}}
}

// seedEvent reports where a seed drawn at this block came from.
func (a *App) seedEvent(e *types.Epoch) abci.Event {
	source := e.SeedSource
	if source == "" {
		source = epochs.SourceBlockHash
	}
	a.metrics.seedContributors.Set(float64(e.SeedContributors))
	if a.params.BeaconWindow > 0 && source != epochs.SourceVRF {
		a.log.Warn("no beacon contribution recorded for the epoch: its seed is the seed block's hash", "epoch", e.Number, "height", e.SeedHeight)
	}
	return abci.Event{Type: "epoch_seed", Attributes: []abci.EventAttribute{
		{Key: "epoch", Value: itoa(e.Number), Index: true},
		{Key: "source", Value: source},
		{Key: "contributors", Value: itoa(uint64(e.SeedContributors))},
		{Key: "seed", Value: fmt.Sprintf("%x", e.Seed)},
	}}
}
