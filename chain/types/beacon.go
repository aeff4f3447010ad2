package types

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// The epoch beacon's wire formats (chain/epochs beacon.go has the rules).
// Both are hand-written, fixed-layout and canonical: one value has exactly
// one encoding, so a decoder that re-encodes gets its input back.
//
// Both start with a zero byte. A protobuf message cannot (field number 0 is
// invalid), so no beacon tx is ever mistaken for a user tx (types.DecodeTx
// refuses it) and no user tx for a beacon tx.
const (
	// BeaconTxMagic opens a beacon tx: the first tx of a block, put there by
	// its proposer, carrying the VRF proofs of the previous height's votes.
	BeaconTxMagic = "\x00agora/beacon-tx/v1"
	// VoteExtMagic opens a vote extension carrying one validator's proof.
	VoteExtMagic = "\x00agora/vote-ext/v1"
	// VRFProofLen and VRFOutputLen are ECVRF-EDWARDS25519-SHA512-ELL2's
	// proof (pi) and output (beta) sizes (RFC 9381).
	VRFProofLen  = 80
	VRFOutputLen = 64
	// MaxBeaconEntries bounds a beacon tx (one entry per validator).
	MaxBeaconEntries = 10_000
)

// BeaconEntry is one validator's VRF proof over an epoch's beacon input.
type BeaconEntry struct {
	Validator []byte // CometBFT consensus address, 20 bytes
	Proof     []byte // VRFProofLen bytes
}

// BeaconTx carries validators' proofs for one epoch, in strictly ascending
// validator-address order.
type BeaconTx struct {
	Epoch   uint64
	Entries []BeaconEntry
}

const beaconEntryLen = AddressLen + VRFProofLen

// IsBeaconTx reports whether raw is meant as a beacon tx (it may still be
// malformed).
func IsBeaconTx(raw []byte) bool { return bytes.HasPrefix(raw, []byte(BeaconTxMagic)) }

// EncodeBeaconTx is magic || uint64be(epoch) || uint16be(count) ||
// count × (address || proof). It does not check the entries; DecodeBeaconTx does.
func EncodeBeaconTx(b *BeaconTx) []byte {
	out := make([]byte, 0, len(BeaconTxMagic)+10+len(b.Entries)*beaconEntryLen)
	out = append(out, BeaconTxMagic...)
	out = binary.BigEndian.AppendUint64(out, b.Epoch)
	out = binary.BigEndian.AppendUint16(out, uint16(len(b.Entries)))
	for _, e := range b.Entries {
		out = append(out, e.Validator...)
		out = append(out, e.Proof...)
	}
	return out
}

// DecodeBeaconTx parses a beacon tx and checks its form: the magic, at least
// one entry, exact length, addresses strictly ascending (so no validator
// appears twice). The proofs are checked against the chain by the app.
func DecodeBeaconTx(raw []byte) (*BeaconTx, error) {
	if !IsBeaconTx(raw) {
		return nil, errors.New("beacon tx: wrong magic")
	}
	rest := raw[len(BeaconTxMagic):]
	if len(rest) < 10 {
		return nil, fmt.Errorf("beacon tx: %d bytes after the magic, need at least 10", len(rest))
	}
	b := &BeaconTx{Epoch: binary.BigEndian.Uint64(rest)}
	n := int(binary.BigEndian.Uint16(rest[8:]))
	rest = rest[10:]
	if n == 0 || n > MaxBeaconEntries {
		return nil, fmt.Errorf("beacon tx: %d entries, want 1 to %d", n, MaxBeaconEntries)
	}
	if len(rest) != n*beaconEntryLen {
		return nil, fmt.Errorf("beacon tx: %d entries need %d bytes, have %d", n, n*beaconEntryLen, len(rest))
	}
	b.Entries = make([]BeaconEntry, n)
	for i := range b.Entries {
		e := rest[i*beaconEntryLen : (i+1)*beaconEntryLen]
		b.Entries[i] = BeaconEntry{Validator: e[:AddressLen:AddressLen], Proof: e[AddressLen:beaconEntryLen:beaconEntryLen]}
		if i > 0 && bytes.Compare(b.Entries[i-1].Validator, b.Entries[i].Validator) >= 0 {
			return nil, fmt.Errorf("beacon tx: entry %d: validator addresses must be strictly ascending", i)
		}
	}
	return b, nil
}

// EncodeVoteExtension is magic || uint64be(epoch) || proof.
func EncodeVoteExtension(epoch uint64, proof []byte) []byte {
	out := make([]byte, 0, len(VoteExtMagic)+8+len(proof))
	out = append(out, VoteExtMagic...)
	out = binary.BigEndian.AppendUint64(out, epoch)
	return append(out, proof...)
}

// DecodeVoteExtension parses a non-empty vote extension.
func DecodeVoteExtension(raw []byte) (epoch uint64, proof []byte, err error) {
	if !bytes.HasPrefix(raw, []byte(VoteExtMagic)) {
		return 0, nil, errors.New("vote extension: wrong magic")
	}
	rest := raw[len(VoteExtMagic):]
	if len(rest) != 8+VRFProofLen {
		return 0, nil, fmt.Errorf("vote extension: %d bytes after the magic, want %d", len(rest), 8+VRFProofLen)
	}
	return binary.BigEndian.Uint64(rest), rest[8:], nil
}
