package epochs

// The epoch beacon: the sampling seed of epoch n comes from the validators'
// VRF outputs rather than from a block hash a proposer can grind.
//
// Each validator's VRF (ECVRF-EDWARDS25519-SHA512-ELL2, RFC 9381, with its
// CometBFT consensus key) over BeaconInput(chain, n) has exactly one output,
// which nobody else can compute and anyone can check with the public key.
// Validators reveal their proof in the vote extensions of the heights in
// epoch n's beacon window, [commit_deadline+1, commit_deadline+W] (W =
// beacon_window): block commit_deadline is final before any of them is made,
// so no commitment can depend on the seed. The proposer of the next height
// copies the proofs into a beacon tx (the block's first tx); every node checks
// them (ProcessProposal, and again in FinalizeBlock) and the first valid
// output per validator is recorded. At the end of block seed_height =
// commit_deadline + 1 + W the seed is sha256(SeedDomainV2 || n || for each
// contributor in address order: address || output).
//
// Nobody can choose the seed; a validator (or a proposer) can only withhold
// contributions, and an honest validator's proof is offered again at every
// height of the window, so leaving it out takes every proposer of the window.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519/extra/ecvrf"

	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

const (
	// BeaconDomain separates the VRF input from every other signed message.
	BeaconDomain = "agora/epoch-beacon/v1"
	// SeedDomainV2 separates beacon seeds from block-hash (v1) seeds.
	SeedDomainV2 = "agora/epoch-seed/v2"

	// SourceVRF and SourceBlockHash say where an epoch's seed came from.
	SourceVRF       = "vrf"
	SourceBlockHash = "block_hash"
)

var prefixBeacon = []byte("beacon/") // beacon/<epoch>/<cons addr> -> VRF output (until the seed is drawn)

// BeaconEpoch returns the epoch whose beacon window contains height h: the
// epoch for which validators extend their votes at h, and whose proofs a
// beacon tx in block h+1 carries.
func BeaconEpoch(p types.Params, h int64) (uint64, bool) {
	if p.BeaconWindow <= 0 || p.EpochLength <= 0 {
		return 0, false
	}
	// Epoch n's window starts at (n+1)*E + C + 1: x = (n+1)*E + j, j < W.
	x := h - p.CommitWindow - 1
	if x < p.EpochLength {
		return 0, false
	}
	if x%p.EpochLength >= p.BeaconWindow {
		return 0, false
	}
	return uint64(x/p.EpochLength) - 1, true
}

// BeaconInput is the VRF input (alpha) of epoch n on chain chainID.
func BeaconInput(chainID string, n uint64) []byte {
	out := make([]byte, 0, len(BeaconDomain)+2+len(chainID)+8)
	out = append(out, BeaconDomain...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(chainID)))
	out = append(out, chainID...)
	return binary.BigEndian.AppendUint64(out, n)
}

// Prove returns a validator's VRF proof for epoch n. The proof, like the
// output, is deterministic.
func Prove(priv ed25519.PrivateKey, chainID string, n uint64) []byte {
	return ecvrf.Prove(voi.PrivateKey(priv), BeaconInput(chainID, n))
}

// VerifyProof checks a VRF proof for epoch n under a consensus public key and
// returns the VRF output.
func VerifyProof(pub []byte, chainID string, n uint64, proof []byte) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("consensus key of %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if len(proof) != types.VRFProofLen {
		return nil, fmt.Errorf("VRF proof of %d bytes, want %d", len(proof), types.VRFProofLen)
	}
	ok, out := ecvrf.Verify(voi.PublicKey(pub), proof, BeaconInput(chainID, n))
	if !ok {
		return nil, fmt.Errorf("VRF proof for epoch %d does not verify", n)
	}
	return out, nil
}

// Contributor returns the consensus public key of the validator with
// CometBFT address consAddr when it may contribute to the beacon: it exists
// and has voting power in kv.
func Contributor(kv store.KV, p types.Params, consAddr []byte) ([]byte, bool) {
	if len(consAddr) != types.AddressLen {
		return nil, false
	}
	v := stake.ValidatorByConsAddress(kv, consAddr)
	if v == nil || stake.Power(p, v) <= 0 {
		return nil, false
	}
	return v.ConsPubKey, true
}

func beaconKey(n uint64, consAddr []byte) []byte {
	return codec.Key(prefixBeacon, codec.U64(n), consAddr)
}

// HasContribution reports whether a validator's output for epoch n is recorded.
func HasContribution(kv store.KV, n uint64, consAddr []byte) bool {
	return kv.Has(beaconKey(n, consAddr))
}

// RecordContribution stores a validator's verified VRF output for epoch n.
// The first one wins (a VRF has one output per key and input, so a later
// valid proof could only repeat it). It reports whether it was new.
func RecordContribution(kv store.KV, n uint64, consAddr, output []byte) bool {
	k := beaconKey(n, consAddr)
	if kv.Has(k) {
		return false
	}
	kv.Set(k, output)
	return true
}

// Contribution is one validator's VRF output for an epoch.
type Contribution struct {
	Validator []byte // consensus address
	Output    []byte
}

// Contributions lists epoch n's recorded outputs in validator-address order.
func Contributions(kv store.KV, n uint64) []Contribution {
	prefix := codec.Key(prefixBeacon, codec.U64(n))
	var out []Contribution
	kv.Iterate(prefix, func(k, v []byte) bool {
		out = append(out, Contribution{Validator: bytes.Clone(k[len(prefix):]), Output: bytes.Clone(v)})
		return true
	})
	return out
}

// SeedFromBeacon is sha256(SeedDomainV2 || n || address || output ...) over
// contributions in ascending address order.
func SeedFromBeacon(n uint64, cs []Contribution) []byte {
	h := sha256.New()
	h.Write([]byte(SeedDomainV2))
	h.Write(binary.BigEndian.AppendUint64(nil, n))
	for _, c := range cs {
		h.Write(c.Validator)
		h.Write(c.Output)
	}
	return h.Sum(nil)
}

// drawSeed sets epoch e's seed at the end of its seed block. Without a
// beacon (beacon_window 0) it is the v1 block-hash seed and the record is
// left exactly as before the beacon existed (so such chains replay to the
// same app hashes). With one, the recorded contributions are consumed; if
// there are none (vote extensions disabled, or every proposer of the window
// left them out) it falls back to the block hash and says so.
func drawSeed(kv store.KV, p types.Params, e *types.Epoch, blockHash []byte) {
	if p.BeaconWindow == 0 {
		e.Seed = Seed(e.Number, blockHash)
		return
	}
	cs := Contributions(kv, e.Number)
	for _, c := range cs {
		kv.Delete(beaconKey(e.Number, c.Validator))
	}
	if len(cs) == 0 {
		e.Seed, e.SeedSource, e.SeedContributors = Seed(e.Number, blockHash), SourceBlockHash, 0
		return
	}
	e.Seed, e.SeedSource, e.SeedContributors = SeedFromBeacon(e.Number, cs), SourceVRF, uint32(len(cs))
}
