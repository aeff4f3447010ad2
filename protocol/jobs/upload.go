// Package jobs is the compute-job service's wire protocol between a job's
// owner, the providers that run it and the validators that check it: how
// an owner hands its module and inputs to the providers its order was
// leased to, and the executor's HTTP paths.
package jobs

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/protocol/blob"
)

// UploadHeader authorises the upload of one of an order's blobs (its module
// or an input) to a provider holding a lease on the order:
// "<order id>:<owner public key hex>:<signature hex>", the owner's ed25519
// signature over UploadSignBytes. It names the blob, not the bytes: the
// provider stores only bytes that hash to the ID, so a replayed header can
// upload nothing but the blob it was made for.
const UploadHeader = "X-Agora-Job-Upload"

// UploadSignBytes is what the owner signs to let a blob of an order in.
func UploadSignBytes(chainID string, order uint64, id blob.ID) []byte {
	b := make([]byte, 0, 64+len(chainID))
	b = append(b, "agora/job-upload/v1\n"...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(chainID)))
	b = append(b, chainID...)
	b = binary.BigEndian.AppendUint64(b, order)
	return append(b, id[:]...)
}

// SignUpload makes the UploadHeader value for blob id of order.
func SignUpload(key ed25519.PrivateKey, chainID string, order uint64, id blob.ID) string {
	sig := ed25519.Sign(key, UploadSignBytes(chainID, order, id))
	pub := key.Public().(ed25519.PublicKey)
	return fmt.Sprintf("%d:%s:%s", order, hex.EncodeToString(pub), hex.EncodeToString(sig))
}

// Upload is a parsed UploadHeader.
type Upload struct {
	Order uint64
	Owner types.Address // derived from the public key
	pub   ed25519.PublicKey
	sig   []byte
}

// ParseUpload parses the header's form (not the signature: Verify).
func ParseUpload(h string) (*Upload, error) {
	parts := strings.Split(h, ":")
	if len(parts) != 3 {
		return nil, errors.New(UploadHeader + " must be <order>:<public key hex>:<signature hex>")
	}
	order, err := strconv.ParseUint(parts[0], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s: order id: %w", UploadHeader, err)
	}
	pub, err := hex.DecodeString(parts[1])
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%s: public key must be %d bytes of hex", UploadHeader, ed25519.PublicKeySize)
	}
	sig, err := hex.DecodeString(parts[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%s: signature must be %d bytes of hex", UploadHeader, ed25519.SignatureSize)
	}
	return &Upload{Order: order, Owner: types.AddressFromPubKey(pub), pub: pub, sig: sig}, nil
}

// Verify checks the signature for blob id on chainID. The caller still
// checks that u.Owner owns u.Order and that id is one of its blobs.
func (u *Upload) Verify(chainID string, id blob.ID) error {
	if !ed25519.Verify(u.pub, UploadSignBytes(chainID, u.Order, id), u.sig) {
		return fmt.Errorf("%s: signature does not verify for blob %s of order %d", UploadHeader, id, u.Order)
	}
	return nil
}
