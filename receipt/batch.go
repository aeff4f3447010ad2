package receipt

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/merkle"
	"github.com/agoranet/agora/chain/types"
)

// SignBatch signs receipts together, with one ed25519 signature for all:
// over the Merkle root of their ids (the tree of the epoch commitments),
// each receipt carrying its inclusion path in its signature (the batched
// form of chain/types/receiptsig.go, which checks it). A provider serving
// many requests at once signs the receipts that finish together this way,
// and a verifier checks one signature per batch. A batch of one gets a plain signature,
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
		out[0].Signature = types.SignEd25519(priv, append([]byte(types.ReceiptSignDomain), out[0].Bytes...))
		return out, nil
	}
	levels := merkle.Levels(ids)
	root := levels[len(levels)-1][0]
	sig := types.SignEd25519(priv, append([]byte(types.ReceiptBatchDomain), root[:]...))
	for i := range out {
		b := make([]byte, 0, 64+8+32*types.ReceiptBatchDepth)
		b = append(b, sig...)
		b = binary.BigEndian.AppendUint32(b, uint32(i))
		b = binary.BigEndian.AppendUint32(b, uint32(len(rs)))
		siblings, _ := merkle.Path(levels, i)
		for _, h := range siblings {
			b = append(b, h[:]...)
		}
		out[i].Signature = b
	}
	return out, nil
}
