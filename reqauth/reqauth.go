// Package reqauth authenticates a client's paid requests to a provider.
//
// A voucher is a payment, not a credential: once a provider redeems it on
// chain anyone can read it, so a provider that served whoever presented a
// voucher it had verified would serve strangers on the channel's credit. A
// paid request therefore also carries X-Agora-Auth, a MAC over the request
// keyed by a secret only the channel's client key and the provider's key
// can compute:
//
//	K_ch = HKDF-SHA256(X25519(client, provider), info = "agora/request-key/v1" ||
//	       uint16be(len(chain)) || chain || uint64be(channel) || client addr || provider addr)
//
// with both ed25519 keys (the client's as registered in the channel, the
// provider's account key) taken to X25519 the standard way. The MAC binds
// the method, the path, the body, the voucher header, a timestamp and a
// random nonce; the provider keeps the nonces it has seen until their
// timestamps leave its window (Guard), so a request can be used once.
//
// The key is one X25519 per channel on each side (cached); a request costs
// an HMAC and a SHA-256 of its body, not a signature. The package is a leaf
// that both roles (and tools talking to providers) import.
package reqauth

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/oasisprotocol/curve25519-voi/curve"

	"github.com/agoranet/agora/chain/types"
)

const (
	// Header carries "v1 ch=<channel> ts=<unix ms> n=<nonce hex> mac=<hex>".
	Header = "X-Agora-Auth"
	// NonceSize is the random nonce's length in bytes.
	NonceSize = 16
	// KeyInfo and MACDomain separate this protocol's key and MACs from
	// anything else made from the same keys.
	KeyInfo   = "agora/request-key/v1"
	MACDomain = "agora/request/v1\n"
	version   = "v1"
)

// Errors, one per way a request's authentication fails (Reason names them
// for metrics).
var (
	ErrMissing     = errors.New("missing " + Header + " header: requests on a channel must be authenticated by the channel's client key")
	ErrMalformed   = errors.New("malformed " + Header + " header")
	ErrChannel     = errors.New("authentication is for another channel than the voucher's")
	ErrKey         = errors.New("no request key for this channel")
	ErrMAC         = errors.New("request authentication does not verify (wrong key, or the request was altered)")
	ErrStale       = errors.New("request timestamp is too old")
	ErrFuture      = errors.New("request timestamp is too far in the future")
	ErrBeforeStart = errors.New("request was signed before the provider started")
	ErrReplay      = errors.New("request nonce was already used")
	ErrFull        = errors.New("too many requests in the replay window")
)

var reasons = []struct {
	err    error
	reason string
}{
	{ErrMissing, "missing"}, {ErrMalformed, "malformed"}, {ErrChannel, "channel"}, {ErrKey, "key"}, {ErrMAC, "mac"},
	{ErrStale, "stale"}, {ErrFuture, "future"}, {ErrBeforeStart, "before_start"}, {ErrReplay, "replay"}, {ErrFull, "full"},
}

// Reason is a short label for err's kind ("other" if none of this package's).
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "other"
}

// Key is a channel's request key, K_ch.
type Key [32]byte

// ClientKey derives K_ch on the client's side: its ed25519 key (the one
// that opened the channel) and the provider's public key.
func ClientKey(client ed25519.PrivateKey, provider ed25519.PublicKey, chainID string, channel uint64) (Key, error) {
	return derive(client, provider, chainID, channel, client.Public().(ed25519.PublicKey), provider)
}

// ProviderKey derives K_ch on the provider's side: its ed25519 key and the
// channel's client public key (on chain).
func ProviderKey(provider ed25519.PrivateKey, client ed25519.PublicKey, chainID string, channel uint64) (Key, error) {
	return derive(provider, client, chainID, channel, client, provider.Public().(ed25519.PublicKey))
}

func derive(own ed25519.PrivateKey, peer ed25519.PublicKey, chainID string, channel uint64, clientPub, providerPub ed25519.PublicKey) (Key, error) {
	var k Key
	if len(own) != ed25519.PrivateKeySize {
		return k, fmt.Errorf("%w: private key must be %d bytes", ErrKey, ed25519.PrivateKeySize)
	}
	priv, err := X25519Private(own)
	if err != nil {
		return k, err
	}
	pub, err := X25519Public(peer)
	if err != nil {
		return k, err
	}
	shared, err := priv.ECDH(pub) // refuses an all-zero result (a low-order peer)
	if err != nil {
		return k, fmt.Errorf("%w: X25519: %v", ErrKey, err)
	}
	info := make([]byte, 0, len(KeyInfo)+2+len(chainID)+8+2*types.AddressLen)
	info = append(info, KeyInfo...)
	info = binary.BigEndian.AppendUint16(info, uint16(len(chainID)))
	info = append(info, chainID...)
	info = binary.BigEndian.AppendUint64(info, channel)
	info = append(info, types.AddressFromPubKey(clientPub)...)
	info = append(info, types.AddressFromPubKey(providerPub)...)
	out, err := hkdf.Key(sha256.New, shared, nil, string(info), len(k))
	if err != nil {
		return k, fmt.Errorf("%w: HKDF: %v", ErrKey, err)
	}
	copy(k[:], out)
	return k, nil
}

// X25519Private is an ed25519 key's X25519 private key (RFC 8032's secret
// scalar: SHA-512 of the seed, first half, clamped).
func X25519Private(k ed25519.PrivateKey) (*ecdh.PrivateKey, error) {
	h := sha512.Sum512(k.Seed())
	s := h[:32]
	s[0] &= 248
	s[31] &= 127
	s[31] |= 64
	priv, err := ecdh.X25519().NewPrivateKey(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return priv, nil
}

// X25519Public is an ed25519 public key's X25519 public key: the Edwards
// point's Montgomery u = (1+y)/(1−y). Keys that are not points, or are of
// small order, are refused.
func X25519Public(pub ed25519.PublicKey) (*ecdh.PublicKey, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key must be %d bytes, got %d", ErrKey, ed25519.PublicKeySize, len(pub))
	}
	var cy curve.CompressedEdwardsY
	if _, err := cy.SetBytes(pub); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	var p curve.EdwardsPoint
	if _, err := p.SetCompressedY(&cy); err != nil {
		return nil, fmt.Errorf("%w: public key is not a curve point", ErrKey)
	}
	if p.IsSmallOrder() {
		return nil, fmt.Errorf("%w: public key is of small order", ErrKey)
	}
	var u curve.MontgomeryPoint
	u.SetEdwards(&p)
	out, err := ecdh.X25519().NewPublicKey(u[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return out, nil
}

// Auth is a parsed X-Agora-Auth header.
type Auth struct {
	Channel uint64
	TS      int64 // signing time, Unix milliseconds
	Nonce   [NonceSize]byte
	MAC     [sha256.Size]byte
}

// String renders the header's value.
func (a *Auth) String() string {
	b := make([]byte, 0, 160)
	b = append(b, version+" ch="...)
	b = strconv.AppendUint(b, a.Channel, 10)
	b = append(b, " ts="...)
	b = strconv.AppendInt(b, a.TS, 10)
	b = append(b, " n="...)
	b = hex.AppendEncode(b, a.Nonce[:])
	b = append(b, " mac="...)
	b = hex.AppendEncode(b, a.MAC[:])
	return string(b)
}

// Parse parses a header's value; an empty one is ErrMissing.
func Parse(h string) (Auth, error) {
	var a Auth
	if h == "" {
		return a, ErrMissing
	}
	if len(h) > 256 {
		return a, fmt.Errorf("%w: %d bytes", ErrMalformed, len(h))
	}
	f := strings.Split(h, " ")
	if len(f) != 5 || f[0] != version {
		return a, fmt.Errorf("%w: want %q", ErrMalformed, version+" ch=<channel> ts=<unix ms> n=<32 hex> mac=<64 hex>")
	}
	field := func(s, name string) (string, error) {
		v, ok := strings.CutPrefix(s, name+"=")
		if !ok {
			return "", fmt.Errorf("%w: field %q where %s= was expected", ErrMalformed, s, name)
		}
		return v, nil
	}
	var vals [4]string
	for i, name := range []string{"ch", "ts", "n", "mac"} {
		v, err := field(f[i+1], name)
		if err != nil {
			return a, err
		}
		vals[i] = v
	}
	var err error
	if a.Channel, err = strconv.ParseUint(vals[0], 10, 64); err != nil {
		return a, fmt.Errorf("%w: channel %q", ErrMalformed, vals[0])
	}
	if a.TS, err = strconv.ParseInt(vals[1], 10, 64); err != nil || a.TS < 0 {
		return a, fmt.Errorf("%w: timestamp %q", ErrMalformed, vals[1])
	}
	// lengths first: hex.Decode writes past a short destination
	if len(vals[2]) != 2*NonceSize {
		return a, fmt.Errorf("%w: nonce must be %d hex digits", ErrMalformed, 2*NonceSize)
	}
	if _, err := hex.Decode(a.Nonce[:], []byte(vals[2])); err != nil {
		return a, fmt.Errorf("%w: nonce must be %d hex digits", ErrMalformed, 2*NonceSize)
	}
	if len(vals[3]) != 2*sha256.Size {
		return a, fmt.Errorf("%w: mac must be %d hex digits", ErrMalformed, 2*sha256.Size)
	}
	if _, err := hex.Decode(a.MAC[:], []byte(vals[3])); err != nil {
		return a, fmt.Errorf("%w: mac must be %d hex digits", ErrMalformed, 2*sha256.Size)
	}
	return a, nil
}

// mac computes the request's MAC: HMAC-SHA256(K_ch, "agora/request/v1\n" ||
// uint64be(channel) || uint64be(ts) || nonce || uint32be(len) method ||
// uint32be(len) path || SHA-256(body) || uint32be(len) voucher header).
func mac(k *Key, channel uint64, ts int64, nonce *[NonceSize]byte, method, path string, body []byte, voucher string) [sha256.Size]byte {
	bh := sha256.Sum256(body)
	msg := make([]byte, 0, len(MACDomain)+16+NonceSize+12+len(method)+len(path)+len(voucher)+sha256.Size)
	msg = append(msg, MACDomain...)
	msg = binary.BigEndian.AppendUint64(msg, channel)
	msg = binary.BigEndian.AppendUint64(msg, uint64(ts))
	msg = append(msg, nonce[:]...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(method)))
	msg = append(msg, method...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(path)))
	msg = append(msg, path...)
	msg = append(msg, bh[:]...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(voucher)))
	msg = append(msg, voucher...)
	m := hmac.New(sha256.New, k[:])
	m.Write(msg)
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// SignWith authenticates a request with the given timestamp and nonce
// (Sign draws the nonce; this is for tests and known answers).
func SignWith(k *Key, channel uint64, ts int64, nonce [NonceSize]byte, method, path string, body []byte, voucher string) Auth {
	return Auth{Channel: channel, TS: ts, Nonce: nonce, MAC: mac(k, channel, ts, &nonce, method, path, body, voucher)}
}

// Sign returns the X-Agora-Auth value for a request on channel: method and
// path as the provider will see them (the API path, "/v1/chat/completions",
// not the provider's base URL), the exact body sent and the X-Agora-Voucher
// header's value.
func Sign(k *Key, channel uint64, now time.Time, method, path string, body []byte, voucher string) string {
	var n [NonceSize]byte
	rand.Read(n[:])
	a := SignWith(k, channel, now.UnixMilli(), n, method, path, body, voucher)
	return a.String()
}

// Verify checks the MAC against the request as received.
func (a *Auth) Verify(k *Key, method, path string, body []byte, voucher string) error {
	want := mac(k, a.Channel, a.TS, &a.Nonce, method, path, body, voucher)
	if subtle.ConstantTimeCompare(want[:], a.MAC[:]) != 1 {
		return ErrMAC
	}
	return nil
}
