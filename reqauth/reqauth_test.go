package reqauth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
	xhkdf "golang.org/x/crypto/hkdf"

	"github.com/agoranet/agora/testutil/testkey"
)

const testChain = "agora-test"

func keys(t *testing.T) (cli, prov ed25519.PrivateKey, kc, kp Key) {
	t.Helper()
	cli, _ = testkey.Pair("reqauth-client")
	prov, _ = testkey.Pair("reqauth-provider")
	var err error
	if kc, err = ClientKey(cli, prov.Public().(ed25519.PublicKey), testChain, 7); err != nil {
		t.Fatal(err)
	}
	if kp, err = ProviderKey(prov, cli.Public().(ed25519.PublicKey), testChain, 7); err != nil {
		t.Fatal(err)
	}
	return cli, prov, kc, kp
}

// Both sides derive the same key, and it is bound to the chain, the
// channel and both keys.
func TestKeyAgreement(t *testing.T) {
	cli, prov, kc, kp := keys(t)
	if kc != kp {
		t.Fatalf("client and provider derive different keys: %x / %x", kc, kp)
	}
	stranger, _ := testkey.Pair("reqauth-stranger")
	provPub, cliPub := prov.Public().(ed25519.PublicKey), cli.Public().(ed25519.PublicKey)
	others := map[string]func() (Key, error){
		"other channel":  func() (Key, error) { return ClientKey(cli, provPub, testChain, 8) },
		"other chain":    func() (Key, error) { return ClientKey(cli, provPub, "agora-other", 7) },
		"other client":   func() (Key, error) { return ClientKey(stranger, provPub, testChain, 7) },
		"other provider": func() (Key, error) { return ProviderKey(stranger, cliPub, testChain, 7) },
	}
	for name, f := range others {
		k, err := f()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if k == kc {
			t.Errorf("%s: same key", name)
		}
	}
}

// The Edwards → Montgomery map agrees with the X25519 base-point multiply:
// an ed25519 key's X25519 public key computed from its public half equals
// the one computed from its private half.
func TestMontgomeryConversion(t *testing.T) {
	for _, name := range []string{"a", "b", "c", "reqauth-provider"} {
		priv, pub := testkey.Pair(name)
		xs, err := X25519Private(priv)
		if err != nil {
			t.Fatal(err)
		}
		xp, err := X25519Public(pub)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(xs.PublicKey().Bytes(), xp.Bytes()) {
			t.Fatalf("%s: u from the public key %x, from the private key %x", name, xp.Bytes(), xs.PublicKey().Bytes())
		}
	}
}

// Public keys that are not points, or of small order, give no key.
func TestBadPublicKeys(t *testing.T) {
	cli, _ := testkey.Pair("reqauth-client")
	identity := make([]byte, 32)
	identity[0] = 1 // y = 1: the identity, small order
	order2 := make([]byte, 32)
	order2[0] = 0xec // y = −1 = p − 1: the point of order 2
	for i := 1; i < 31; i++ {
		order2[i] = 0xff
	}
	order2[31] = 0x7f
	notPoint, _ := hex.DecodeString("0200000000000000000000000000000000000000000000000000000000000000") // y = 2 is not on the curve
	for name, pub := range map[string][]byte{"identity": identity, "order 2": order2, "not a point": notPoint, "short": make([]byte, 31)} {
		if _, err := ClientKey(cli, pub, testChain, 7); !errors.Is(err, ErrKey) {
			t.Errorf("%s: %v, want ErrKey", name, err)
		}
	}
}

// independentKey computes K_ch without this package's code path: the
// Montgomery u of the provider's key with math/big, X25519 and HKDF from
// golang.org/x/crypto.
func independentKey(t *testing.T, cli ed25519.PrivateKey, provPub ed25519.PublicKey, chain string, channel uint64) []byte {
	t.Helper()
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	le := append([]byte(nil), provPub...)
	le[31] &= 0x7f // the sign of x is not part of y
	slices.Reverse(le)
	y := new(big.Int).SetBytes(le)
	num := new(big.Int).Add(big.NewInt(1), y)
	den := new(big.Int).Sub(big.NewInt(1), y)
	den.Mod(den, p)
	u := new(big.Int).Mul(num, new(big.Int).ModInverse(den, p))
	u.Mod(u, p)
	ub := u.FillBytes(make([]byte, 32))
	slices.Reverse(ub)
	h := sha512.Sum512(cli.Seed())
	shared, err := curve25519.X25519(h[:32], ub)
	if err != nil {
		t.Fatal(err)
	}
	info := []byte("agora/request-key/v1")
	info = binary.BigEndian.AppendUint16(info, uint16(len(chain)))
	info = append(info, chain...)
	info = binary.BigEndian.AppendUint64(info, channel)
	ca := sha256.Sum256(cli.Public().(ed25519.PublicKey))
	pa := sha256.Sum256(provPub)
	info = append(append(info, ca[:20]...), pa[:20]...)
	out := make([]byte, 32)
	if _, err := io.ReadFull(xhkdf.New(sha256.New, shared, nil, info), out); err != nil {
		t.Fatal(err)
	}
	return out
}

// A known answer, checked against an independent computation: the format
// is the protocol; a change here breaks every client and provider built
// before it.
func TestKnownAnswer(t *testing.T) {
	cli, prov, kc, _ := keys(t)
	const wantKey = "a242da8317dd687043ff3a945607211a4ae0cdc91959cd3dd7c5993b40e53cdf"
	if got := hex.EncodeToString(kc[:]); got != wantKey {
		t.Fatalf("K_ch = %s, want %s", got, wantKey)
	}
	if ind := independentKey(t, cli, prov.Public().(ed25519.PublicKey), testChain, 7); !bytes.Equal(ind, kc[:]) {
		t.Fatalf("K_ch = %x, computed independently %x", kc, ind)
	}
	var nonce [NonceSize]byte
	for i := range nonce {
		nonce[i] = byte(i)
	}
	body := []byte(`{"model":"tiny"}`)
	voucher := "7:100:" + strings.Repeat("ab", 64)
	a := SignWith(&kc, 7, 1_790_000_000_000, nonce, "POST", "/v1/chat/completions", body, voucher)
	const want = "v1 ch=7 ts=1790000000000 n=000102030405060708090a0b0c0d0e0f mac=416b9be17e192f4cdf2950b249436e2a9b45d52db2c08564b874bc3f936ffd96"
	if got := a.String(); got != want {
		t.Fatalf("header\n%s\nwant\n%s", got, want)
	}
	// the MAC's input, spelled out
	bh := sha256.Sum256(body)
	msg := []byte("agora/request/v1\n")
	msg = binary.BigEndian.AppendUint64(msg, 7)
	msg = binary.BigEndian.AppendUint64(msg, 1_790_000_000_000)
	msg = append(msg, nonce[:]...)
	msg = append(binary.BigEndian.AppendUint32(msg, 4), "POST"...)
	msg = append(binary.BigEndian.AppendUint32(msg, 20), "/v1/chat/completions"...)
	msg = append(msg, bh[:]...)
	msg = append(binary.BigEndian.AppendUint32(msg, uint32(len(voucher))), voucher...)
	m := hmac.New(sha256.New, kc[:])
	m.Write(msg)
	if !bytes.Equal(m.Sum(nil), a.MAC[:]) {
		t.Fatalf("MAC %x, computed independently %x", a.MAC, m.Sum(nil))
	}
}

// Each way a request can be wrong is refused with its own error, and the
// untampered request passes once.
func TestCheckTamperings(t *testing.T) {
	cli, prov, kc, kp := keys(t)
	_ = cli
	stranger, _ := testkey.Pair("reqauth-stranger")
	kStranger, err := ClientKey(stranger, prov.Public().(ed25519.PublicKey), testChain, 7)
	if err != nil {
		t.Fatal(err)
	}
	start := time.UnixMilli(1_790_000_000_000)
	now := start.Add(time.Minute)
	const method, path = "POST", "/v1/chat/completions"
	body := []byte(`{"model":"tiny","messages":[{"role":"user","content":"hi"}]}`)
	voucher := "7:100:" + strings.Repeat("cd", 64)
	keyOf := func(ch uint64) (*Key, error) {
		if ch != 7 {
			return nil, errors.New("unknown channel")
		}
		return &kp, nil
	}
	var n0 [NonceSize]byte
	n0[0] = 1
	sign := func(k Key, ch uint64, ts time.Time, n [NonceSize]byte) string {
		a := SignWith(&k, ch, ts.UnixMilli(), n, method, path, body, voucher)
		return a.String()
	}
	good := sign(kc, 7, now, n0)
	edit := func(h, old, new string) string {
		if !strings.Contains(h, old) {
			t.Fatalf("%q not in %q", old, h)
		}
		return strings.Replace(h, old, new, 1)
	}
	a, _ := Parse(good)
	otherNonce := edit(good, "n="+hex.EncodeToString(a.Nonce[:2]), "n=ffff")
	otherTS := edit(good, "ts=1790000060000", "ts=1790000060001")
	cases := []struct {
		name     string
		h        string
		channel  uint64
		method   string
		path     string
		body     []byte
		voucher  string
		want     error
		wantText string
	}{
		{name: "missing", h: "", want: ErrMissing},
		{name: "malformed", h: "v1 ch=7", want: ErrMalformed},
		{name: "other body", h: good, body: []byte(`{"model":"tiny","messages":[{"role":"user","content":"ho"}]}`), want: ErrMAC},
		{name: "other path", h: good, path: "/v1/completions", want: ErrMAC},
		{name: "other method", h: good, method: "PUT", want: ErrMAC},
		{name: "other voucher", h: good, voucher: "7:101:" + strings.Repeat("cd", 64), want: ErrMAC},
		{name: "other channel than the voucher's", h: good, channel: 8, want: ErrChannel},
		{name: "header moved to another channel", h: edit(good, "ch=7", "ch=8"), channel: 8, want: errors.New("unknown channel"), wantText: "unknown channel"},
		{name: "other nonce", h: otherNonce, want: ErrMAC},
		{name: "other timestamp", h: otherTS, want: ErrMAC},
		{name: "stale", h: sign(kc, 7, now.Add(-DefaultWindow-time.Millisecond), n0), want: ErrStale},
		{name: "future", h: sign(kc, 7, now.Add(DefaultWindow+time.Millisecond), n0), want: ErrFuture},
		{name: "before the provider started", h: sign(kc, 7, start.Add(-time.Millisecond), n0), want: ErrBeforeStart},
		{name: "wrong key", h: sign(kStranger, 7, now, n0), want: ErrMAC},
		{name: "good", h: good},
		{name: "replayed", h: good, want: ErrReplay},
	}
	g := NewGuard(0, start, 0)
	for _, c := range cases {
		ch, m, p, b, v := uint64(7), method, path, body, voucher
		if c.channel != 0 {
			ch = c.channel
		}
		if c.method != "" {
			m = c.method
		}
		if c.path != "" {
			p = c.path
		}
		if c.body != nil {
			b = c.body
		}
		if c.voucher != "" {
			v = c.voucher
		}
		err := g.Check(c.h, ch, keyOf, m, p, b, v, now)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != nil && c.wantText != "" && (err == nil || !strings.Contains(err.Error(), c.wantText)):
			t.Errorf("%s: %v, want %q", c.name, err, c.wantText)
		case c.want != nil && c.wantText == "" && !errors.Is(err, c.want):
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if c.want != nil && c.wantText == "" && Reason(err) == "other" {
			t.Errorf("%s: no reason for %v", c.name, err)
		}
	}
	if g.Len() != 1 {
		t.Fatalf("%d nonces remembered, want 1 (only the good request's)", g.Len())
	}
}

// The guard forgets a nonce once its timestamp has left the window (a
// replay is then stale), and refuses new requests when full rather than
// forgetting early.
func TestGuardBounds(t *testing.T) {
	_, _, kc, _ := keys(t)
	start := time.UnixMilli(1_790_000_000_000)
	g := NewGuard(time.Minute, start, 3)
	auth := func(i byte, ts time.Time) *Auth {
		a := SignWith(&kc, 7, ts.UnixMilli(), [NonceSize]byte{i}, "POST", "/", nil, "")
		return &a
	}
	now := start.Add(time.Second)
	for i := byte(0); i < 3; i++ {
		if err := g.Remember(auth(i, now), now); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Remember(auth(3, now), now); !errors.Is(err, ErrFull) {
		t.Fatalf("fourth nonce with capacity 3: %v", err)
	}
	if err := g.Remember(auth(0, now), now); !errors.Is(err, ErrReplay) {
		t.Fatalf("a seen nonce when full: %v", err)
	}
	later := now.Add(time.Minute + 2*time.Second)
	a := auth(0, now)
	if err := g.Fresh(a, later); !errors.Is(err, ErrStale) {
		t.Fatalf("the old request after the window: %v", err)
	}
	if err := g.Remember(auth(4, later), later); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if g.Len() != 1 {
		t.Fatalf("%d nonces remembered after the window, want 1", g.Len())
	}
}

// Per-request costs: the gateway's (Sign) and the provider's (Check:
// parse, freshness, MAC, remember), against an ed25519 verify.
func BenchmarkSign(b *testing.B) {
	cli, _ := testkey.Pair("reqauth-client")
	prov, _ := testkey.Pair("reqauth-provider")
	k, _ := ClientKey(cli, prov.Public().(ed25519.PublicKey), testChain, 7)
	body := bytes.Repeat([]byte("x"), 120)
	b.ReportAllocs()
	for b.Loop() {
		Sign(&k, 7, time.Now(), "POST", "/v1/chat/completions", body, "7:100:abcd")
	}
}

func BenchmarkCheck(b *testing.B) {
	cli, _ := testkey.Pair("reqauth-client")
	prov, _ := testkey.Pair("reqauth-provider")
	k, _ := ClientKey(cli, prov.Public().(ed25519.PublicKey), testChain, 7)
	body := bytes.Repeat([]byte("x"), 120)
	now := time.Now()
	hs := make([]string, b.N)
	for i := range hs {
		hs[i] = Sign(&k, 7, now, "POST", "/v1/chat/completions", body, "7:100:abcd")
	}
	g := NewGuard(0, now.Add(-time.Second), 1<<30)
	keyOf := func(uint64) (*Key, error) { return &k, nil }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := g.Check(hs[i], 7, keyOf, "POST", "/v1/chat/completions", body, "7:100:abcd", now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDeriveKey(b *testing.B) {
	cli, _ := testkey.Pair("reqauth-client")
	prov, _ := testkey.Pair("reqauth-provider")
	pub := cli.Public().(ed25519.PublicKey)
	for b.Loop() {
		if _, err := ProviderKey(prov, pub, testChain, 7); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEd25519Verify(b *testing.B) {
	priv, pub := testkey.Pair("reqauth-client")
	msg := bytes.Repeat([]byte("x"), 200)
	sig := ed25519.Sign(priv, msg)
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("no")
		}
	}
}
