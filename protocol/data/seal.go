// Sealed results of compute-to-data runs (see the package doc in tar.go):
//
//   - Sealed results (Seal, Open): a compute-to-data run's result list and
//     outputs encrypted to the buyer's X25519 key, the only form in which
//     the host hands them out. The chain commits the plaintext list's blob
//     ID as for any job, so the buyer checks what it decrypted against the
//     chain and an auditor can re-execute the run.
//   - The access header (auth.go): an account's signature over one
//     request, which the host checks against the chain's grants, owner and
//     auditors before serving a dataset's bytes or a run's states.
//   - What a job sees under /data (Files, members.go).

package data

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"

	"github.com/agoranet/agora/protocol/blob"
	"github.com/agoranet/agora/protocol/jobs"
	"github.com/agoranet/agora/reqauth"
)

// Sealed results:
//
//	SealedMagic || ephemeral X25519 public key (32) || XChaCha20-Poly1305 ciphertext
//
// under key = HKDF-SHA256(X25519(ephemeral, buyer key), salt = ephemeral
// public key || buyer key, info = SealInfo || u64be(lease)) and a zero
// nonce: every sealing draws a fresh ephemeral key, so a key never seals
// twice, and binding the lease keeps a sealed blob of one run from passing
// as another's.
const (
	SealedMagic = "agora-sealed/v1\n"
	SealInfo    = "agora-c2d/v1"
	// KeySize is an X25519 public key's length (the order's buyer_key).
	KeySize = 32
	// SealOverhead is what sealing adds to the plaintext.
	SealOverhead = len(SealedMagic) + KeySize + chacha20poly1305.Overhead
)

// Errors Open returns (wrapped with detail).
var (
	ErrNotSealed = errors.New("not an agora sealed blob")
	ErrOpen      = errors.New("sealed blob does not open with this key for this lease (wrong key, wrong lease or altered bytes)")
)

// BuyerKey is the X25519 public key an order's buyer_key carries for an
// account's ed25519 public key: the same conversion reqauth makes for a
// channel's keys, so one account key serves both.
func BuyerKey(pub ed25519.PublicKey) ([]byte, error) {
	k, err := reqauth.X25519Public(pub)
	if err != nil {
		return nil, fmt.Errorf("buyer key: %w", err)
	}
	return k.Bytes(), nil
}

func sealKey(shared, eph, buyer []byte, lease uint64) ([]byte, error) {
	salt := append(append([]byte(nil), eph...), buyer...)
	info := binary.BigEndian.AppendUint64([]byte(SealInfo), lease)
	key := make([]byte, chacha20poly1305.KeySize)
	if _, err := io.ReadFull(hkdf.New(sha256.New, shared, salt, info), key); err != nil {
		return nil, err
	}
	return key, nil
}

var zeroNonce [chacha20poly1305.NonceSizeX]byte

// Seal encrypts plaintext to buyerKey (an X25519 public key) for lease,
// drawing the ephemeral key from rnd (crypto/rand.Reader in use; a test
// may pass a fixed stream).
func Seal(buyerKey []byte, lease uint64, plaintext []byte, rnd io.Reader) ([]byte, error) {
	if len(buyerKey) != KeySize {
		return nil, fmt.Errorf("seal: buyer key must be %d bytes, got %d", KeySize, len(buyerKey))
	}
	pub, err := ecdh.X25519().NewPublicKey(buyerKey)
	if err != nil {
		return nil, fmt.Errorf("seal: buyer key: %w", err)
	}
	eph, err := ecdh.X25519().GenerateKey(rnd)
	if err != nil {
		return nil, fmt.Errorf("seal: ephemeral key: %w", err)
	}
	shared, err := eph.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("seal: X25519: %w", err)
	}
	ephPub := eph.PublicKey().Bytes()
	key, err := sealKey(shared, ephPub, buyerKey, lease)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, SealOverhead+len(plaintext))
	out = append(out, SealedMagic...)
	out = append(out, ephPub...)
	return aead.Seal(out, zeroNonce[:], plaintext, nil), nil
}

// Open decrypts a sealed blob with the buyer's account key for lease.
func Open(key ed25519.PrivateKey, lease uint64, sealed []byte) ([]byte, error) {
	priv, err := reqauth.X25519Private(key)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	return OpenX25519(priv, lease, sealed)
}

// OpenX25519 is Open with the X25519 private key itself.
func OpenX25519(priv *ecdh.PrivateKey, lease uint64, sealed []byte) ([]byte, error) {
	if len(sealed) < len(SealedMagic) || !bytes.Equal(sealed[:len(SealedMagic)], []byte(SealedMagic)) {
		return nil, ErrNotSealed
	}
	if len(sealed) < SealOverhead {
		return nil, fmt.Errorf("%w: truncated (%d bytes, at least %d)", ErrNotSealed, len(sealed), SealOverhead)
	}
	ephPub := sealed[len(SealedMagic) : len(SealedMagic)+KeySize]
	eph, err := ecdh.X25519().NewPublicKey(ephPub)
	if err != nil {
		return nil, fmt.Errorf("%w: ephemeral key: %v", ErrOpen, err)
	}
	shared, err := priv.ECDH(eph)
	if err != nil {
		// A low-order ephemeral key: X25519 yields zero.
		return nil, fmt.Errorf("%w: X25519: %v", ErrOpen, err)
	}
	key, err := sealKey(shared, ephPub, priv.PublicKey().Bytes(), lease)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, zeroNonce[:], sealed[len(SealedMagic)+KeySize:], nil)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// The sealed plaintext is a run's result list and its outputs:
//
//	u32be(len(list)) || list (protocol/jobs Results.Encode) || each output's bytes, in list order
//
// (the list gives each output's size), so the buyer gets everything the
// chain's result hash commits to in one blob.

// PackResults encodes a result list and its outputs (by name) as the
// sealed plaintext.
func PackResults(list *jobs.Results, outputs map[string][]byte) ([]byte, error) {
	enc := list.Encode()
	dec, err := jobs.DecodeResults(enc) // the list's order (sorted by name)
	if err != nil {
		return nil, err
	}
	n := 4 + len(enc)
	for _, o := range dec.Outputs {
		n += int(o.Size)
	}
	b := make([]byte, 0, n)
	b = binary.BigEndian.AppendUint32(b, uint32(len(enc)))
	b = append(b, enc...)
	for _, o := range dec.Outputs {
		data, ok := outputs[o.Name]
		if !ok || uint64(len(data)) != o.Size {
			return nil, fmt.Errorf("pack results: output %q missing or not %d bytes", o.Name, o.Size)
		}
		b = append(b, data...)
	}
	return b, nil
}

// UnpackResults parses PackResults' form, checking each output against its
// blob ID in the list; the caller checks the list's ID (List.ID()) against
// the chain.
func UnpackResults(b []byte) (*jobs.Results, map[string][]byte, error) {
	if len(b) < 4 {
		return nil, nil, errors.New("sealed results: truncated")
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b)) {
		return nil, nil, fmt.Errorf("sealed results: list of %d bytes in %d", n, len(b))
	}
	list, err := jobs.DecodeResults(b[:n])
	if err != nil {
		return nil, nil, fmt.Errorf("sealed results: %w", err)
	}
	b = b[n:]
	outs := map[string][]byte{}
	for _, o := range list.Outputs {
		if o.Size > uint64(len(b)) {
			return nil, nil, fmt.Errorf("sealed results: output %q of %d bytes, %d left", o.Name, o.Size, len(b))
		}
		data := b[:o.Size]
		b = b[o.Size:]
		if blob.Of(data) != o.ID {
			return nil, nil, fmt.Errorf("sealed results: output %q does not match its blob ID %s", o.Name, o.ID)
		}
		outs[o.Name] = data
	}
	if len(b) != 0 {
		return nil, nil, fmt.Errorf("sealed results: %d bytes after the outputs", len(b))
	}
	return list, outs, nil
}
