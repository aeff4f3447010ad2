package data

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAuth(t *testing.T) {
	k, other := testKey(1), testKey(2)
	pub := k.Public().(ed25519.PublicKey)
	now := time.Unix(1_800_000_000, 0)
	h := SignAuth(k, "agora-test", "GET", "/v1/data/3/blob", now)
	if !strings.HasPrefix(h, "v1 addr=") {
		t.Fatalf("header %q", h)
	}
	a, err := ParseAuth(h)
	if err != nil {
		t.Fatal(err)
	}
	if a.String() != h {
		t.Fatalf("header %q renders back as %q", h, a.String())
	}
	if err := a.Verify(pub, "agora-test", "GET", "/v1/data/3/blob", now.Add(AuthWindow)); err != nil {
		t.Fatalf("valid header at the window's edge refused: %v", err)
	}
	for _, tc := range []struct {
		name          string
		pub           ed25519.PublicKey
		chain, method string
		path          string
		at            time.Time
		want          error
	}{
		{"other chain", pub, "agora-other", "GET", "/v1/data/3/blob", now, ErrAuthSig},
		{"other path", pub, "agora-test", "GET", "/v1/data/4/blob", now, ErrAuthSig},
		{"other method", pub, "agora-test", "HEAD", "/v1/data/3/blob", now, ErrAuthSig},
		{"other account's key", other.Public().(ed25519.PublicKey), "agora-test", "GET", "/v1/data/3/blob", now, ErrAuthSig},
		{"no key on chain", nil, "agora-test", "GET", "/v1/data/3/blob", now, ErrAuthSig},
		{"too late", pub, "agora-test", "GET", "/v1/data/3/blob", now.Add(AuthWindow + time.Second), ErrAuthStale},
		{"too early", pub, "agora-test", "GET", "/v1/data/3/blob", now.Add(-AuthWindow - time.Second), ErrAuthStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.Verify(tc.pub, tc.chain, tc.method, tc.path, tc.at); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	// A signature made by another key under this address fails.
	forged := *a
	forged.Sig = ed25519.Sign(other, AuthSignBytes("agora-test", "GET", "/v1/data/3/blob", a.TS))
	if err := forged.Verify(pub, "agora-test", "GET", "/v1/data/3/blob", now); !errors.Is(err, ErrAuthSig) {
		t.Fatalf("forged signature: %v", err)
	}
}

func TestParseAuthRefuses(t *testing.T) {
	good := SignAuth(testKey(1), "c", "GET", "/x", time.Unix(100, 0))
	f := strings.Split(good, " ")
	for _, tc := range []struct{ name, h string }{
		{"other version", "v2 " + strings.Join(f[1:], " ")},
		{"missing field", strings.Join(f[:3], " ")},
		{"extra field", good + " x=1"},
		{"fields swapped", strings.Join([]string{f[0], f[2], f[1], f[3]}, " ")},
		{"short addr", strings.Replace(good, f[1], f[1][:len(f[1])-2], 1)},
		{"upper-case addr", strings.Replace(good, f[1], strings.ToUpper(f[1][:6])+f[1][6:], 1)},
		{"ts not a number", strings.Replace(good, f[2], "ts=1e9", 1)},
		{"ts with a sign", strings.Replace(good, f[2], "ts=+100", 1)},
		{"short sig", strings.Replace(good, f[3], f[3][:20], 1)},
		{"double space", strings.Replace(good, " ", "  ", 1)},
	} {
		if _, err := ParseAuth(tc.h); !errors.Is(err, ErrAuthForm) {
			t.Errorf("%s: ParseAuth(%q) = %v, want ErrAuthForm", tc.name, tc.h, err)
		}
	}
	if _, err := ParseAuth(""); !errors.Is(err, ErrNoAuth) {
		t.Errorf("empty header: %v", err)
	}
}

// FuzzParseAuth: no input panics the parser, every refusal is ErrAuthForm
// or ErrNoAuth, and whatever it accepts renders back to the same header.
func FuzzParseAuth(f *testing.F) {
	f.Add(SignAuth(testKey(1), "agora-test", "GET", "/v1/data/1/blob", time.Unix(1_800_000_000, 0)))
	f.Add("v1 addr=00 ts=0 sig=00")
	f.Add("v1 addr= ts= sig=")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := ParseAuth(h)
		if err != nil {
			if !errors.Is(err, ErrAuthForm) && !errors.Is(err, ErrNoAuth) {
				t.Fatalf("%q: refused without a named reason: %v", h, err)
			}
			return
		}
		if a.String() != h {
			t.Fatalf("%q parses to %+v, which renders as %q", h, a, a.String())
		}
	})
}
