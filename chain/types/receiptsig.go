package types

// A receipt's signature (SignedReceipt.signature and the receipt_signature
// of the messages that carry a receipt) has one of two forms, both checked
// by package receipt:
//
//   - plain: 64 bytes, ed25519 over "agora/receipt/v1\n" || receipt;
//   - batched: 64 bytes of ed25519 over "agora/receipt-batch/v1\n" || root,
//     where root is the RFC 6962 Merkle root over the ids of a batch of
//     2..ReceiptBatchMax receipts signed together, then the receipt's
//     position in that batch (index, count: big-endian uint32 each) and
//     its sibling hashes from the leaf up (32 bytes each).
//
// ReceiptSignatureWellFormed is the stateless length check.

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
