package types

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
)

// Domain-separation prefixes: a signature made for one purpose can never be
// replayed as another.
const (
	TxSignDomain      = "agora/tx/v1\n"
	VoucherSignDomain = "agora/voucher/v1\n"
)

// MaxTxBytes bounds a tx before any decoding work is done.
const MaxTxBytes = 512 << 10

// TxSignBytes returns the bytes a tx signature covers. The chain id is inside body.
func TxSignBytes(body []byte) []byte {
	out := make([]byte, 0, len(TxSignDomain)+len(body))
	out = append(out, TxSignDomain...)
	return append(out, body...)
}

// VoucherSignBytes returns the bytes a voucher signature covers:
// domain || len(chain_id) || chain_id || channel_id (big endian) || cumulative (big endian).
func VoucherSignBytes(chainID string, channelID, cumulative uint64) []byte {
	out := make([]byte, 0, len(VoucherSignDomain)+2+len(chainID)+16)
	out = append(out, VoucherSignDomain...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(chainID)))
	out = append(out, chainID...)
	out = binary.BigEndian.AppendUint64(out, channelID)
	return binary.BigEndian.AppendUint64(out, cumulative)
}

// SignVoucher signs a voucher with the channel client's key.
func SignVoucher(priv ed25519.PrivateKey, chainID string, channelID, cumulative uint64) *Voucher {
	sig := SignEd25519(priv, VoucherSignBytes(chainID, channelID, cumulative))
	return &Voucher{ChannelId: channelID, CumulativeAmount: cumulative, Signature: sig}
}

// VerifyVoucher checks a voucher's signature against the client's public key.
func VerifyVoucher(pub []byte, chainID string, v *Voucher) error {
	if err := ValidPubKey(pub); err != nil {
		return err
	}
	if len(v.GetSignature()) != ed25519.SignatureSize {
		return fmt.Errorf("voucher signature must be %d bytes, got %d", ed25519.SignatureSize, len(v.GetSignature()))
	}
	if !VerifyEd25519(pub, VoucherSignBytes(chainID, v.ChannelId, v.CumulativeAmount), v.Signature) {
		return errors.New("voucher signature does not verify")
	}
	return nil
}

// SignTx builds and signs a tx envelope for body with priv.
func SignTx(priv ed25519.PrivateKey, body *TxBody) ([]byte, error) {
	bz, err := proto.MarshalOptions{Deterministic: true}.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode tx body: %w", err)
	}
	tx := &Tx{
		Body:      bz,
		PubKey:    []byte(priv.Public().(ed25519.PublicKey)),
		Signature: SignEd25519(priv, TxSignBytes(bz)),
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(tx)
}

// TxHash is the hash CometBFT uses to identify a tx (sha256 of its bytes).
func TxHash(tx []byte) []byte {
	h := sha256.Sum256(tx)
	return h[:]
}

// DecodedTx is a tx whose envelope and body parsed and whose shape is valid.
// The signature is not yet verified.
type DecodedTx struct {
	Raw    []byte
	Tx     *Tx
	Body   *TxBody
	Signer Address
	// Name and Msg are the message's declared name and the message itself
	// (decoded from a module_msg when it is one), from the registry that
	// decoded the tx.
	Name string
	Msg  proto.Message
	spec *MsgSpec // points into the registry's table, which never changes
}

// Describe returns the message's fields and touched accounts, as its
// declaration describes them for indexers.
func (d *DecodedTx) Describe() Description { return d.spec.Describe(d.Msg) }

// DecodeTx parses a tx envelope and its body and checks sizes and field
// shapes against the chain's own messages. It never panics on hostile input.
func DecodeTx(raw []byte) (*DecodedTx, error) { return defaultMsgs.DecodeTx(raw) }

// DecodeTx parses a tx envelope and its body and checks sizes and field
// shapes against r's messages. It never panics on hostile input.
func (r *MsgRegistry) DecodeTx(raw []byte) (*DecodedTx, error) {
	if len(raw) == 0 {
		return nil, errors.New("empty tx")
	}
	if len(raw) > MaxTxBytes {
		return nil, fmt.Errorf("tx is %d bytes, limit %d", len(raw), MaxTxBytes)
	}
	var tx Tx
	if err := proto.Unmarshal(raw, &tx); err != nil {
		return nil, fmt.Errorf("malformed tx envelope: %w", err)
	}
	if err := ValidPubKey(tx.PubKey); err != nil {
		return nil, fmt.Errorf("signer %w", err)
	}
	if len(tx.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("signature must be %d bytes, got %d", ed25519.SignatureSize, len(tx.Signature))
	}
	var body TxBody
	if err := proto.Unmarshal(tx.Body, &body); err != nil {
		return nil, fmt.Errorf("malformed tx body: %w", err)
	}
	if body.Msg == nil {
		return nil, errors.New("tx body has no message")
	}
	spec, msg, err := r.validate(&body)
	if err != nil {
		return nil, err
	}
	return &DecodedTx{Raw: raw, Tx: &tx, Body: &body, Signer: AddressFromPubKey(tx.PubKey), Name: spec.Name, Msg: msg, spec: spec}, nil
}

// VerifySignature checks the envelope's signature over its body.
func (d *DecodedTx) VerifySignature() error {
	if !VerifyEd25519(d.Tx.PubKey, TxSignBytes(d.Tx.Body), d.Tx.Signature) {
		return errors.New("signature does not verify")
	}
	return nil
}
