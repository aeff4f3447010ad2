package types

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
)

// AddressLen is the length of an account address in bytes.
const AddressLen = 20

// Address is an account address: the first 20 bytes of sha256(ed25519 public key).
// It is shown as 40 lower-case hex characters.
type Address []byte

// AddressFromPubKey derives the account address of an ed25519 public key.
func AddressFromPubKey(pub []byte) Address {
	h := sha256.Sum256(pub)
	return Address(h[:AddressLen])
}

// ParseAddress parses a 40-character hex address.
func ParseAddress(s string) (Address, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "0x")
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("address %q: not hex: %w", s, err)
	}
	if len(b) != AddressLen {
		return nil, fmt.Errorf("address %q: want %d bytes, got %d", s, AddressLen, len(b))
	}
	return Address(b), nil
}

func (a Address) String() string { return hex.EncodeToString(a) }

// MarshalJSON encodes the address as a hex string.
func (a Address) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// UnmarshalJSON decodes a hex string address.
func (a *Address) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	p, err := ParseAddress(s)
	if err != nil {
		return err
	}
	*a = p
	return nil
}

// ValidAddress reports whether b has the length of an address.
func ValidAddress(b []byte) error {
	if len(b) != AddressLen {
		return fmt.Errorf("address must be %d bytes, got %d", AddressLen, len(b))
	}
	return nil
}

// ValidPubKey reports whether b has the length of an ed25519 public key.
func ValidPubKey(b []byte) error {
	if len(b) != ed25519.PublicKeySize {
		return fmt.Errorf("public key must be %d bytes, got %d", ed25519.PublicKeySize, len(b))
	}
	return nil
}

// HexBytes is a byte slice shown as hex in JSON.
type HexBytes []byte

func (h HexBytes) String() string { return hex.EncodeToString(h) }

func (h HexBytes) MarshalJSON() ([]byte, error) { return json.Marshal(h.String()) }

func (h *HexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("hex: %w", err)
	}
	*h = d
	return nil
}

// LogValue renders the address as hex in structured logs.
func (a Address) LogValue() slog.Value { return slog.StringValue(a.String()) }
