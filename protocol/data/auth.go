package data

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/agoranet/agora/chain/types"
)

// AuthHeader authorises one gated read of a dataset's bytes or a
// compute-to-data run's results or states:
//
//	v1 addr=<address hex> ts=<unix seconds> sig=<ed25519 signature hex>
//
// signed by the account's key (the public key the chain holds for addr)
// over AuthSignBytes. The host decides from the chain whether addr may
// read (a grant, the dataset's owner, one of its auditors, the order's
// owner); the header only proves who asks, for this method and path,
// within AuthWindow of the host's clock.
const AuthHeader = "X-Agora-Data-Auth"

// AuthWindow is how far a header's time may be from the host's clock.
const AuthWindow = 120 * time.Second

// AuthDomain separates these signatures from any other made by the key.
const AuthDomain = "agora/data-access/v1\n"

// Errors a header fails with (wrapped with detail): a host answers all of
// them with 401.
var (
	ErrNoAuth    = errors.New("this read needs an " + AuthHeader + " header")
	ErrAuthForm  = errors.New(AuthHeader + " is malformed")
	ErrAuthStale = errors.New(AuthHeader + " is outside the time window")
	ErrAuthSig   = errors.New(AuthHeader + " signature does not verify")
)

// AuthSignBytes is what an account signs to read method path on chainID at
// ts (Unix seconds).
func AuthSignBytes(chainID, method, path string, ts int64) []byte {
	return []byte(AuthDomain + chainID + "\n" + method + " " + path + "\n" + strconv.FormatInt(ts, 10))
}

// Auth is a parsed AuthHeader.
type Auth struct {
	Addr types.Address
	TS   int64
	Sig  []byte
}

// SignAuth makes the header value for key to read method path at now.
func SignAuth(key ed25519.PrivateKey, chainID, method, path string, now time.Time) string {
	ts := now.Unix()
	a := Auth{
		Addr: types.AddressFromPubKey(key.Public().(ed25519.PublicKey)),
		TS:   ts,
		Sig:  ed25519.Sign(key, AuthSignBytes(chainID, method, path, ts)),
	}
	return a.String()
}

// String renders the header value.
func (a *Auth) String() string {
	return fmt.Sprintf("v1 addr=%s ts=%d sig=%s", hex.EncodeToString(a.Addr), a.TS, hex.EncodeToString(a.Sig))
}

// ParseAuth parses the header's form (not its signature: Verify).
func ParseAuth(h string) (*Auth, error) {
	if h == "" {
		return nil, ErrNoAuth
	}
	f := strings.Split(h, " ")
	if len(f) != 4 || f[0] != "v1" {
		return nil, fmt.Errorf("%w: want \"v1 addr=<hex> ts=<unix> sig=<hex>\"", ErrAuthForm)
	}
	val := func(s, key string) (string, error) {
		v, ok := strings.CutPrefix(s, key+"=")
		if !ok {
			return "", fmt.Errorf("%w: field %q where %s= was expected", ErrAuthForm, s, key)
		}
		return v, nil
	}
	var a Auth
	v, err := val(f[1], "addr")
	if err != nil {
		return nil, err
	}
	if a.Addr, err = hex.DecodeString(v); err != nil || len(a.Addr) != types.AddressLen || strings.ToLower(v) != v {
		return nil, fmt.Errorf("%w: addr must be %d bytes of lower-case hex", ErrAuthForm, types.AddressLen)
	}
	if v, err = val(f[2], "ts"); err != nil {
		return nil, err
	}
	if a.TS, err = strconv.ParseInt(v, 10, 64); err != nil || strconv.FormatInt(a.TS, 10) != v {
		return nil, fmt.Errorf("%w: ts must be a decimal Unix time", ErrAuthForm)
	}
	if v, err = val(f[3], "sig"); err != nil {
		return nil, err
	}
	if a.Sig, err = hex.DecodeString(v); err != nil || len(a.Sig) != ed25519.SignatureSize || strings.ToLower(v) != v {
		return nil, fmt.Errorf("%w: sig must be %d bytes of lower-case hex", ErrAuthForm, ed25519.SignatureSize)
	}
	return &a, nil
}

// Verify checks the header for method path on chainID at now, with pub the
// public key the chain holds for a.Addr.
func (a *Auth) Verify(pub ed25519.PublicKey, chainID, method, path string, now time.Time) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: account %s has no public key on chain", ErrAuthSig, a.Addr)
	}
	if !bytes.Equal(types.AddressFromPubKey(pub), a.Addr) {
		return fmt.Errorf("%w: the key given is not account %s's", ErrAuthSig, a.Addr)
	}
	if d := now.Unix() - a.TS; d > int64(AuthWindow/time.Second) || d < -int64(AuthWindow/time.Second) {
		return fmt.Errorf("%w: signed at %d, now %d (±%s)", ErrAuthStale, a.TS, now.Unix(), AuthWindow)
	}
	if !ed25519.Verify(pub, AuthSignBytes(chainID, method, path, a.TS), a.Sig) {
		return fmt.Errorf("%w: for %s %s by %s", ErrAuthSig, method, path, a.Addr)
	}
	return nil
}
