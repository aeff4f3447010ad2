// Package storage is the off-chain side of storage deals (chain/storage)
// that clients and storing providers share: how a client hands a deal's
// blob to a provider. It is a leaf: it imports only chain/types.
//
// A client creates a deal on chain (create_deal), then uploads the blob to
// the provider it wants (PUT UploadPath(deal), the raw bytes, with
// UploadHeader); the provider checks the deal on chain (open, this
// client's, naming it or nobody), checks the bytes hash to the deal's
// blob ID and size, seals its replica and accepts the deal on chain with
// the replica's root. A provider answers GET DealPath(deal) with its view
// of the deal (DealStatus).
package storage

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/agoranet/agora/chain/types"
)

// Routes a storing provider serves.
const (
	UploadRoute = "PUT /v1/storage/deals/{deal}/blob"
	DealRoute   = "GET /v1/storage/deals/{deal}"
	// GetRoute gives a deal's client its bytes back (decoded from the
	// replica), authorised by protocol/data's access header signed by the
	// client; Range requests work.
	GetRoute = "GET /v1/storage/deals/{deal}/blob"
)

// UploadPath is where a deal's blob is uploaded.
func UploadPath(deal uint64) string { return fmt.Sprintf("/v1/storage/deals/%d/blob", deal) }

// DealPath is the provider's view of a deal.
func DealPath(deal uint64) string { return fmt.Sprintf("/v1/storage/deals/%d", deal) }

// DealStatus is a provider's view of a deal it holds.
type DealStatus struct {
	Deal        uint64 `json:"deal"`
	Phase       string `json:"phase"` // "sealed", "accepted", "done", "dropped"
	ReplicaRoot string `json:"replica_root"`
	Size        uint64 `json:"size"`
	Proved      uint64 `json:"proved"` // epochs this provider proved
	LastEpoch   uint64 `json:"last_epoch,omitempty"`
}

// UploadHeader authorises the upload of a deal's blob:
// "<deal id>:<client public key hex>:<signature hex>", the deal's client's
// ed25519 signature over UploadSignBytes. It names the blob, not the
// bytes: the provider keeps only bytes that hash to the deal's blob ID.
const UploadHeader = "X-Agora-Storage-Upload"

// UploadSignBytes is what the client signs to hand deal's blob id over.
func UploadSignBytes(chainID string, deal uint64, blobID []byte) []byte {
	b := make([]byte, 0, 64+len(chainID))
	b = append(b, "agora/storage-upload/v1\n"...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(chainID)))
	b = append(b, chainID...)
	b = binary.BigEndian.AppendUint64(b, deal)
	return append(b, blobID...)
}

// SignUpload makes the UploadHeader value for deal's blob.
func SignUpload(key ed25519.PrivateKey, chainID string, deal uint64, blobID []byte) string {
	sig := ed25519.Sign(key, UploadSignBytes(chainID, deal, blobID))
	return fmt.Sprintf("%d:%s:%s", deal, hex.EncodeToString(key.Public().(ed25519.PublicKey)), hex.EncodeToString(sig))
}

// Upload is a parsed UploadHeader.
type Upload struct {
	Deal   uint64
	Client types.Address // derived from the public key
	pub    ed25519.PublicKey
	sig    []byte
}

// ParseUpload parses the header's form (not the signature: Verify).
func ParseUpload(h string) (*Upload, error) {
	parts := strings.Split(h, ":")
	if len(parts) != 3 {
		return nil, errors.New(UploadHeader + " must be <deal>:<public key hex>:<signature hex>")
	}
	deal, err := strconv.ParseUint(parts[0], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s: deal id: %w", UploadHeader, err)
	}
	pub, err := hex.DecodeString(parts[1])
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%s: public key must be %d bytes of hex", UploadHeader, ed25519.PublicKeySize)
	}
	sig, err := hex.DecodeString(parts[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%s: signature must be %d bytes of hex", UploadHeader, ed25519.SignatureSize)
	}
	return &Upload{Deal: deal, Client: types.AddressFromPubKey(pub), pub: pub, sig: sig}, nil
}

// Verify checks the signature for blobID on chainID. The caller still
// checks that u.Client is the deal's client and blobID its blob.
func (u *Upload) Verify(chainID string, blobID []byte) error {
	if !ed25519.Verify(u.pub, UploadSignBytes(chainID, u.Deal, blobID), u.sig) {
		return fmt.Errorf("%s: signature does not verify for deal %d", UploadHeader, u.Deal)
	}
	return nil
}

// Put uploads deal's blob to a storing provider at baseURL with the
// client's UploadHeader value and returns the provider's view of the deal
// (accepted on chain when it answers 200).
func Put(ctx context.Context, hc *http.Client, baseURL string, deal uint64, header string, data []byte) (*DealStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, strings.TrimRight(baseURL, "/")+UploadPath(deal), bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	req.Header.Set(UploadHeader, header)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("upload deal %d's blob: %w", deal, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("upload deal %d's blob: %s: %s", deal, resp.Status, e.Error)
		}
		return nil, fmt.Errorf("upload deal %d's blob: %s", deal, resp.Status)
	}
	var st DealStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("upload deal %d's blob: the provider's answer: %w", deal, err)
	}
	return &st, nil
}
