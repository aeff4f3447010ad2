package presign

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"sync"
	"testing"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/agoranet/agora/internal/poll"
)

func testKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	return priv.Public().(ed25519.PublicKey), priv
}

// newSigner is a signer for priv with a pool of size, closed with the test.
func newSigner(t *testing.T, priv ed25519.PrivateKey, size int) *Signer {
	t.Helper()
	s, err := New(priv, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// waitReady waits for the refiller to fill the pool to n.
func waitReady(t *testing.T, s *Signer, n int) {
	t.Helper()
	poll.Until(t, 10*time.Second, fmt.Sprintf("the pool to hold %d nonces", n), func() (bool, string) {
		r := s.Ready()
		return r >= n, fmt.Sprintf("it holds %d", r)
	})
}

// Signatures from the pool, and from a dry or closed pool, are ed25519
// signatures as crypto/ed25519 (the standard library, strict) and
// curve25519-voi verify them; each message's signature verifies for that
// message only, and no two signatures share a nonce commitment.
func TestSignVerifies(t *testing.T) {
	pub, priv := testKey(t)
	s, err := New(priv, 8)
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, s, 8)
	seen := map[string]bool{}
	check := func(i int, sig []byte) {
		t.Helper()
		msg := []byte(fmt.Sprintf("receipt %d", i))
		if len(sig) != ed25519.SignatureSize {
			t.Fatalf("signature %d is %d bytes", i, len(sig))
		}
		if !ed25519.Verify(pub, msg, sig) {
			t.Fatalf("signature %d does not verify with crypto/ed25519", i)
		}
		if !voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, &voi.Options{Verify: voi.VerifyOptionsStdLib}) {
			t.Fatalf("signature %d does not verify with curve25519-voi", i)
		}
		if ed25519.Verify(pub, []byte(fmt.Sprintf("receipt %d", i+1)), sig) {
			t.Fatalf("signature %d verifies for another message", i)
		}
		if seen[string(sig[:32])] {
			t.Fatalf("signature %d reuses a nonce", i)
		}
		seen[string(sig[:32])] = true
	}
	// more than the pool holds, as fast as possible: some come from the
	// pool, some are computed inline when it runs dry
	for i := 0; i < 200; i++ {
		check(i, s.Sign([]byte(fmt.Sprintf("receipt %d", i))))
	}
	s.Close()
	if s.Ready() != 0 {
		t.Fatalf("a closed signer keeps %d nonces", s.Ready())
	}
	for i := 200; i < 210; i++ {
		check(i, s.Sign([]byte(fmt.Sprintf("receipt %d", i))))
	}
	s.Close() // twice is fine
}

// The refiller keeps the pool topped up: after signing half of it, it is
// full again.
func TestRefill(t *testing.T) {
	_, priv := testKey(t)
	s := newSigner(t, priv, 16)
	waitReady(t, s, 16)
	for i := 0; i < 8; i++ {
		s.Sign([]byte{byte(i)})
	}
	waitReady(t, s, 16)
}

// Concurrent signers never share a nonce (run with -race).
func TestConcurrentNoncesDistinct(t *testing.T) {
	pub, priv := testKey(t)
	s := newSigner(t, priv, 4)
	const workers, each = 8, 50
	sigs := make([][][]byte, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				sigs[w] = append(sigs[w], s.Sign([]byte{byte(w), byte(i)}))
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for w := range sigs {
		for i, sig := range sigs[w] {
			if !ed25519.Verify(pub, []byte{byte(w), byte(i)}, sig) {
				t.Fatalf("worker %d signature %d does not verify", w, i)
			}
			if seen[string(sig[:32])] {
				t.Fatalf("worker %d signature %d reuses a nonce", w, i)
			}
			seen[string(sig[:32])] = true
		}
	}
}

func TestNewRejects(t *testing.T) {
	_, priv := testKey(t)
	if _, err := New(priv[:32], 4); err == nil || err.Error() != "presign: a private key is 64 bytes, not 32" {
		t.Fatalf("short key: %v", err)
	}
	if _, err := New(priv, 0); err == nil || err.Error() != "presign: the pool holds at least one nonce, not 0" {
		t.Fatalf("empty pool: %v", err)
	}
}

func BenchmarkSign(b *testing.B) {
	_, priv := testKey(b)
	msg := make([]byte, 32)
	b.Run("rfc8032", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			voi.Sign(voi.PrivateKey(priv), msg)
		}
	})
	b.Run("presigned", func(b *testing.B) {
		// a pool as large as the run, filled before the clock starts: the
		// cost on the request path
		s, _ := New(priv, b.N)
		defer s.Close()
		// a nonce takes tens of µs: a ms each is a generous bound
		poll.True(b, time.Minute+time.Duration(b.N)*time.Millisecond, "the pool to fill", func() bool { return s.Ready() >= b.N })
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s.Sign(msg)
		}
	})
}
