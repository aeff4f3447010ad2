package types

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/agoranet/agora/chain/merkle"
)

// A receipt's signature (SignedReceipt.signature and the receipt_signature
// of the messages that carry a receipt) has one of two forms, both checked
// by VerifyReceiptSignature (package receipt makes them):
//
//   - plain: 64 bytes, ed25519 over "agora/receipt/v1\n" || receipt;
//   - batched: 64 bytes of ed25519 over "agora/receipt-batch/v1\n" || root,
//     where root is the RFC 6962 Merkle root over the ids of a batch of
//     2..ReceiptBatchMax receipts signed together, then the receipt's
//     position in that batch (index, count: big-endian uint32 each) and
//     its sibling hashes from the leaf up (32 bytes each).
//
// ReceiptSignatureWellFormed is the stateless length check.

// ReceiptSignDomain separates receipt signatures from every other
// signature.
const ReceiptSignDomain = "agora/receipt/v1\n"

// ReceiptBatchDomain separates signatures over a batch root from every
// other signature.
const ReceiptBatchDomain = "agora/receipt-batch/v1\n"

// ReceiptID is the id of the serialized receipt bz: its sha256. Commitments
// are Merkle roots over ids, and batched signatures sign a root over them.
func ReceiptID(bz []byte) [32]byte { return sha256.Sum256(bz) }

// ReceiptBatchMax bounds a batch of receipts signed together.
const ReceiptBatchMax = 256

// ReceiptBatchDepth is the most sibling hashes a batched signature holds.
const ReceiptBatchDepth = 8 // log2(ReceiptBatchMax)

// ReceiptSignatureWellFormed reports whether sig has the length of a plain
// or a batched receipt signature.
func ReceiptSignatureWellFormed(sig []byte) bool {
	if len(sig) == 64 {
		return true
	}
	n := len(sig) - 64 - 8
	return n >= 32 && n%32 == 0 && n/32 <= ReceiptBatchDepth
}

// ReceiptSignedMessage returns what the ed25519 signature inside sig signs
// for the serialized receipt bz, and that signature: for a plain signature
// the domain-separated receipt, for a batched one the domain-separated root
// the inclusion path leads to (checking the path's shape). The signature
// still has to be verified; batch verifiers use this to check each batch
// once.
func ReceiptSignedMessage(bz, sig []byte) (msg, sig64 []byte, err error) {
	if len(sig) == 64 {
		return append([]byte(ReceiptSignDomain), bz...), sig, nil
	}
	if !ReceiptSignatureWellFormed(sig) {
		return nil, nil, fmt.Errorf("receipt signature of %d bytes is neither plain nor batched", len(sig))
	}
	index := uint64(binary.BigEndian.Uint32(sig[64:]))
	count := uint64(binary.BigEndian.Uint32(sig[68:]))
	if count < 2 || count > ReceiptBatchMax || index >= count {
		return nil, nil, fmt.Errorf("receipt signature: position %d of %d is not in a batch", index, count)
	}
	p := &merkle.Proof{Index: index, Count: count, Left: merkle.LeftFlags(index, count)}
	for rest := sig[72:]; len(rest) > 0; rest = rest[32:] {
		p.Siblings = append(p.Siblings, [32]byte(rest[:32]))
	}
	root, ok := p.Root(ReceiptID(bz)) // checks the path has the shape index and count give
	if !ok {
		return nil, nil, errors.New("receipt signature: the inclusion path does not fit its batch")
	}
	return append([]byte(ReceiptBatchDomain), root[:]...), sig[:64], nil
}

// VerifyReceiptSignature checks a receipt's signature, plain or batched,
// against the provider's public key. The chain, validators, gateways and
// the explorer all check receipts with it.
func VerifyReceiptSignature(pub, bz, sig []byte) bool {
	msg, sig64, err := ReceiptSignedMessage(bz, sig)
	return err == nil && VerifyEd25519(pub, msg, sig64)
}
