package data

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/agoranet/agora/protocol/blob"
	"github.com/agoranet/agora/protocol/jobs"
)

func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func buyerKey(t testing.TB, k ed25519.PrivateKey) []byte {
	t.Helper()
	bk, err := BuyerKey(k.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return bk
}

func TestSealOpen(t *testing.T) {
	buyer, other := testKey(1), testKey(2)
	pt := []byte("tokens 42 distinct 7\nword\t3\tthe\n")
	sealed, err := Seal(buyerKey(t, buyer), 9, pt, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != len(pt)+SealOverhead || !strings.HasPrefix(string(sealed), SealedMagic) {
		t.Fatalf("sealed blob of %d bytes for %d of plaintext (overhead %d)", len(sealed), len(pt), SealOverhead)
	}
	if bytes.Contains(sealed, pt[:10]) {
		t.Fatal("the sealed blob carries the plaintext")
	}
	got, err := Open(buyer, 9, sealed)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// A second sealing of the same plaintext differs (fresh ephemeral key).
	again, _ := Seal(buyerKey(t, buyer), 9, pt, rand.Reader)
	if bytes.Equal(again, sealed) {
		t.Fatal("two sealings are identical")
	}

	flip := func(i int) []byte {
		b := append([]byte(nil), sealed...)
		b[i] ^= 1
		return b
	}
	for _, tc := range []struct {
		name   string
		key    ed25519.PrivateKey
		lease  uint64
		sealed []byte
		want   error
	}{
		{"wrong key", other, 9, sealed, ErrOpen},
		{"wrong lease", buyer, 10, sealed, ErrOpen},
		{"flipped ciphertext byte", buyer, 9, flip(len(sealed) - 20), ErrOpen},
		{"flipped tag byte", buyer, 9, flip(len(sealed) - 1), ErrOpen},
		{"flipped ephemeral key", buyer, 9, flip(len(SealedMagic) + 3), ErrOpen},
		{"flipped magic", buyer, 9, flip(0), ErrNotSealed},
		{"truncated tag", buyer, 9, sealed[:len(sealed)-1], ErrOpen},
		{"truncated below overhead", buyer, 9, sealed[:SealOverhead-1], ErrNotSealed},
		{"empty", buyer, 9, nil, ErrNotSealed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Open(tc.key, tc.lease, tc.sealed)
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("Open = %q, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestSealRefusesBadKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  []byte
		want string
	}{
		{"short", make([]byte, 31), "must be 32 bytes"},
		{"long", make([]byte, 33), "must be 32 bytes"},
	} {
		if _, err := Seal(tc.key, 1, []byte("x"), rand.Reader); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Seal = %v, want %q", tc.name, err, tc.want)
		}
	}
	// The identity point (small order) and a short key have no X25519 key.
	identity := make([]byte, 32)
	identity[0] = 1
	for _, bad := range [][]byte{identity, make([]byte, 31)} {
		if _, err := BuyerKey(bad); err == nil {
			t.Errorf("BuyerKey took %x", bad)
		}
	}
}

// The buyer key is the X25519 form of the account key: what reqauth derives
// from the private half agrees with what BuyerKey derives from the public.
func TestBuyerKeyMatchesPrivate(t *testing.T) {
	k := testKey(7)
	sealed, err := Seal(buyerKey(t, k), 3, []byte("hello"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := Open(k, 3, sealed); err != nil || string(pt) != "hello" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
}

func results(t testing.TB, outs map[string][]byte) *jobs.Results {
	t.Helper()
	r := &jobs.Results{}
	for name, data := range outs {
		r.Outputs = append(r.Outputs, jobs.Output{Name: name, ID: blob.Of(data), Size: uint64(len(data))})
	}
	return r
}

func TestPackResults(t *testing.T) {
	outs := map[string][]byte{"stdout": []byte("word\t3\tthe\n"), "stderr": nil, "out/a.txt": bytes.Repeat([]byte("ab"), 70000)}
	list := results(t, outs)
	pt, err := PackResults(list, outs)
	if err != nil {
		t.Fatal(err)
	}
	got, gotOuts, err := UnpackResults(pt)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != list.ID() || len(gotOuts) != 3 || !bytes.Equal(gotOuts["out/a.txt"], outs["out/a.txt"]) || !bytes.Equal(gotOuts["stdout"], outs["stdout"]) {
		t.Fatalf("round trip: list %s (want %s), %d outputs", got.ID(), list.ID(), len(gotOuts))
	}

	if _, err := PackResults(list, map[string][]byte{"stdout": outs["stdout"]}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("PackResults without an output = %v", err)
	}
	// A swapped output byte fails its blob ID; trailing and missing bytes fail too.
	swapped := append([]byte(nil), pt...)
	swapped[len(swapped)-1] ^= 1
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"altered output", swapped, "does not match its blob ID"},
		{"trailing", append(append([]byte(nil), pt...), 0), "after the outputs"},
		{"short output", pt[:len(pt)-1], "left"},
		{"short list", pt[:10], "list of"},
		{"nothing", nil, "truncated"},
	} {
		if _, _, err := UnpackResults(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: UnpackResults = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// FuzzOpen: no input panics Open or UnpackResults, and a blob Open accepts
// under the fixed key is one that key sealed (the seeds are real sealings;
// mutations must all be refused by the AEAD).
func FuzzOpen(f *testing.F) {
	k := testKey(5)
	bk, err := BuyerKey(k.Public().(ed25519.PublicKey))
	if err != nil {
		f.Fatal(err)
	}
	outs := map[string][]byte{"stdout": []byte("the\t1\n"), "stderr": {}}
	pt, _ := PackResults(results(f, outs), outs)
	for _, p := range [][]byte{pt, nil, []byte("x")} {
		s, err := Seal(bk, 1, p, rand.Reader)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s, uint64(1))
	}
	f.Add([]byte(SealedMagic), uint64(0))
	f.Add([]byte{}, uint64(2))
	f.Fuzz(func(t *testing.T, b []byte, lease uint64) {
		_, _, _ = UnpackResults(b)
		got, err := Open(k, lease, b)
		if err != nil {
			if got != nil {
				t.Fatal("Open returned bytes with an error")
			}
			if !errors.Is(err, ErrOpen) && !errors.Is(err, ErrNotSealed) {
				t.Fatalf("Open refused without a named reason: %v", err)
			}
			return
		}
		// Accepted: the fuzzer cannot forge a tag, so b must be a seed.
		if lease != 1 {
			t.Fatalf("a blob sealed for lease 1 opened for lease %d", lease)
		}
	})
}
