package receipt

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/types"
)

// BatchDomain separates signatures over a batch root from every other
// signature.
const BatchDomain = "agora/receipt-batch/v1\n"

// SignBatch signs receipts together, with one ed25519 signature for all:
// over the Merkle root of their ids (the tree of the epoch commitments),
// each receipt carrying its inclusion path in its signature (the batched
// form of chain/types/receiptsig.go). A provider serving many requests at
// once signs the receipts that finish together this way, and a verifier
// checks one signature per batch. A batch of one gets a plain signature,
// exactly Sign's.
func SignBatch(priv ed25519.PrivateKey, rs []*types.Receipt) ([]*Signed, error) {
	if len(rs) == 0 || len(rs) > types.ReceiptBatchMax {
		return nil, fmt.Errorf("receipt: a batch holds 1 to %d receipts, not %d", types.ReceiptBatchMax, len(rs))
	}
	out := make([]*Signed, len(rs))
	ids := make([][32]byte, len(rs))
	for i, r := range rs {
		bz, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		if err != nil {
			return nil, err
		}
		out[i] = &Signed{Receipt: r, Bytes: bz}
		ids[i] = out[i].ID()
	}
	if len(rs) == 1 {
		out[0].Signature = types.SignEd25519(priv, append([]byte(SignDomain), out[0].Bytes...))
		return out, nil
	}
	levels := treeLevels(ids)
	root := levels[len(levels)-1][0]
	sig := types.SignEd25519(priv, append([]byte(BatchDomain), root[:]...))
	for i := range out {
		b := make([]byte, 0, 64+8+32*types.ReceiptBatchDepth)
		b = append(b, sig...)
		b = binary.BigEndian.AppendUint32(b, uint32(i))
		b = binary.BigEndian.AppendUint32(b, uint32(len(rs)))
		siblings, _ := path(levels, i)
		for _, h := range siblings {
			b = append(b, h[:]...)
		}
		out[i].Signature = b
	}
	return out, nil
}

// SignedMessage returns what the ed25519 signature inside sig signs for the
// serialized receipt bz, and that signature: for a plain signature the
// domain-separated receipt, for a batched one the domain-separated root the
// inclusion path leads to (checking the path's shape). The signature still
// has to be verified; batch verifiers use this to check each batch once.
func SignedMessage(bz, sig []byte) (msg, sig64 []byte, err error) {
	if len(sig) == 64 {
		return append([]byte(SignDomain), bz...), sig, nil
	}
	if !types.ReceiptSignatureWellFormed(sig) {
		return nil, nil, fmt.Errorf("receipt signature of %d bytes is neither plain nor batched", len(sig))
	}
	index := uint64(binary.BigEndian.Uint32(sig[64:]))
	count := uint64(binary.BigEndian.Uint32(sig[68:]))
	if count < 2 || count > types.ReceiptBatchMax || index >= count {
		return nil, nil, fmt.Errorf("receipt signature: position %d of %d is not in a batch", index, count)
	}
	p := &Proof{Index: index, Count: count}
	for rest := sig[72:]; len(rest) > 0; rest = rest[32:] {
		p.Siblings = append(p.Siblings, [32]byte(rest[:32]))
	}
	p.Left = p.leftFlags()
	root, ok := p.root(sha256.Sum256(bz)) // checks the path has the shape index and count give
	if !ok {
		return nil, nil, errors.New("receipt signature: the inclusion path does not fit its batch")
	}
	return append([]byte(BatchDomain), root[:]...), sig[:64], nil
}

// VerifySignature checks a receipt's signature, plain or batched, against
// the provider's public key. The chain, validators, gateways and the
// explorer all check receipts with it.
func VerifySignature(pub, bz, sig []byte) bool {
	msg, sig64, err := SignedMessage(bz, sig)
	return err == nil && types.VerifyEd25519(pub, msg, sig64)
}
