// Package receipt signs the receipts providers give for each request
// (plainly or in batches), encodes and decodes them for HTTP, and renders
// their inclusion proofs as JSON. What the chain checks — receipt ids,
// signature forms, the Merkle tree of commitments — lives in chain/types
// and chain/merkle; this package builds on them off chain.
package receipt

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/types"
)

// Signed is a receipt with its provider signature, decoded.
type Signed struct {
	Receipt   *types.Receipt
	Bytes     []byte // the serialized receipt (what was signed)
	Signature []byte
}

// ID is the receipt's id: sha256 of its serialized bytes (types.ReceiptID).
func (s *Signed) ID() [32]byte { return types.ReceiptID(s.Bytes) }

// IDHex is the id in hex.
func (s *Signed) IDHex() string {
	id := s.ID()
	return hex.EncodeToString(id[:])
}

// Sign serializes and signs r with the provider key.
func Sign(priv ed25519.PrivateKey, r *types.Receipt) (*Signed, error) {
	ss, err := SignBatch(priv, []*types.Receipt{r})
	if err != nil {
		return nil, err
	}
	return ss[0], nil
}

// Verify checks the signature (plain or batched) with the provider's public
// key and that the receipt names that provider.
func (s *Signed) Verify(providerPub []byte) error {
	if !types.VerifyReceiptSignature(providerPub, s.Bytes, s.Signature) {
		return errors.New("receipt signature does not verify")
	}
	if string(types.AddressFromPubKey(providerPub)) != string(s.Receipt.Provider) {
		return errors.New("receipt names another provider")
	}
	return nil
}

// Encode renders a signed receipt for an HTTP header or SSE comment:
// base64(SignedReceipt protobuf).
func (s *Signed) Encode() string {
	bz, _ := proto.Marshal(&types.SignedReceipt{Receipt: s.Bytes, Signature: s.Signature})
	return base64.RawURLEncoding.EncodeToString(bz)
}

// MaxEncoded bounds an encoded receipt.
const MaxEncoded = 4096

// Decode parses what Encode wrote.
func Decode(s string) (*Signed, error) {
	if len(s) > MaxEncoded {
		return nil, errors.New("receipt too long")
	}
	bz, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	var sr types.SignedReceipt
	if err := proto.Unmarshal(bz, &sr); err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	var r types.Receipt
	if err := proto.Unmarshal(sr.Receipt, &r); err != nil {
		return nil, fmt.Errorf("receipt body: %w", err)
	}
	if !types.ReceiptSignatureWellFormed(sr.Signature) || len(r.Provider) != types.AddressLen {
		return nil, errors.New("receipt: bad signature or provider length")
	}
	return &Signed{Receipt: &r, Bytes: sr.Receipt, Signature: sr.Signature}, nil
}
