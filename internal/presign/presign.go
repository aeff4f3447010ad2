// Package presign makes ed25519 signatures whose costly part is computed
// ahead of time.
//
// Why: an ed25519 signature is R ‖ S with R = r·B (a scalar multiplication
// of the base point, nearly all of the signing cost) and S = r + H(R‖A‖M)·a.
// RFC 8032 derives the nonce r from the key and the message, so R can only
// be computed once the message is known. A provider signs a receipt on the
// request path, after the generation and before its response; on one
// connection that scalar multiplication is tens of microseconds of the
// request's latency. Here r is drawn at random instead (hedged: hashed with
// a secret key-derived prefix, a counter and 32 bytes from crypto/rand) and
// R = r·B is computed in the background, in bursts that refill a pool once
// it is half used; a signature then costs one SHA-512 and a scalar
// multiply-add.
//
// The signatures are ordinary ed25519 signatures: any verifier accepts them
// (crypto/ed25519 included). What changes is only that signing the same
// message twice gives two different valid signatures. Each nonce is used
// exactly once (taken from the pool under its lock, then erased); a nonce
// used twice would reveal the key, which is why nothing here ever copies
// one out of the pool.
//
// One thing breaks that, which RFC 8032 signing survives: running two
// copies of one process memory, as restoring one VM snapshot twice does.
// Both copies would sign different messages with the same pooled nonces.
// A provider must not be cloned that way while running (restarting one
// from its data directory is fine: the pool lives only in memory).
package presign

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"

	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
)

// Signer signs with one ed25519 key, from a pool of nonces it refills in
// the background. Safe for concurrent use; Close stops the refilling.
type Signer struct {
	a      scalar.Scalar // the secret scalar (clamped, as RFC 8032's)
	pub    [32]byte
	prefix [32]byte // the expanded key's second half: mixed into each nonce

	mu      sync.Mutex
	pool    []nonce // ready nonces; the last is used first
	size    int     // the pool's capacity
	counter uint64  // nonces made, so no two are hashed from the same input
	closed  bool

	wake chan struct{} // the refiller is signalled when the pool is low
	done chan struct{} // closed when the refiller has returned
}

// nonce is r and its commitment R = r·B (compressed).
type nonce struct {
	r scalar.Scalar
	R [32]byte
}

// New returns a signer for priv (crypto/ed25519's 64-byte layout) keeping
// up to size nonces ready. It starts the refilling goroutine, which fills
// the pool at once and again whenever it is down to half: in bursts, which
// on one connection cost a few requests' p99 rather than every request's
// p50 (refilling one nonce after each request measured +25–40 µs p50).
func New(priv ed25519.PrivateKey, size int) (*Signer, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("presign: a private key is %d bytes, not %d", ed25519.PrivateKeySize, len(priv))
	}
	if size < 1 {
		return nil, fmt.Errorf("presign: the pool holds at least one nonce, not %d", size)
	}
	s := &Signer{size: size, pool: make([]nonce, 0, size), wake: make(chan struct{}, 1), done: make(chan struct{})}
	ext := sha512.Sum512(priv[:32])
	ext[0] &= 248
	ext[31] &= 127
	ext[31] |= 64
	if _, err := s.a.SetBits(ext[:32]); err != nil {
		return nil, fmt.Errorf("presign: %w", err)
	}
	copy(s.prefix[:], ext[32:])
	copy(s.pub[:], priv[32:])
	clear(ext[:])
	s.wake <- struct{}{}
	go s.refill()
	return s, nil
}

// Sign returns the ed25519 signature of msg: R ‖ S, 64 bytes.
func (s *Signer) Sign(msg []byte) []byte {
	n, ok := s.take()
	if !ok {
		n = s.newNonce() // the pool ran dry (or was closed): as slow as RFC 8032 signing
	}
	h := sha512.New()
	h.Write(n.R[:])
	h.Write(s.pub[:])
	h.Write(msg)
	var hram [64]byte
	h.Sum(hram[:0])
	var k, S scalar.Scalar
	if _, err := k.SetBytesModOrderWide(hram[:]); err != nil {
		panic(err) // 64 bytes are always accepted
	}
	S.Mul(&k, &s.a)
	S.Add(&S, &n.r)
	sig := make([]byte, ed25519.SignatureSize)
	copy(sig, n.R[:])
	if err := S.ToBytes(sig[32:]); err != nil {
		panic(err) // 32 bytes are always accepted
	}
	n.r.Zero()
	return sig
}

// take removes one ready nonce from the pool (erasing its slot) and wakes
// the refiller to replace it.
func (s *Signer) take() (nonce, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pool) == 0 {
		s.signal()
		return nonce{}, false
	}
	last := len(s.pool) - 1
	n := s.pool[last]
	s.pool[last] = nonce{}
	s.pool = s.pool[:last]
	if len(s.pool) <= s.size/2 {
		s.signal()
	}
	return n, true
}

// signal wakes the refiller unless it is already due. Called with mu held.
func (s *Signer) signal() {
	if s.closed {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// refill tops the pool up each time it is woken, until Close.
func (s *Signer) refill() {
	defer close(s.done)
	for range s.wake {
		for {
			s.mu.Lock()
			full := s.closed || len(s.pool) >= s.size
			s.mu.Unlock()
			if full {
				break
			}
			n := s.newNonce() // outside the lock: this is the slow part
			s.mu.Lock()
			if !s.closed && len(s.pool) < s.size {
				s.pool = append(s.pool, n)
			}
			s.mu.Unlock()
			// One nonce at a time, then let waiting goroutines run: the
			// refill is background work and must not hold a P through a
			// burst of scalar multiplications while requests wait.
			runtime.Gosched()
		}
	}
}

// newNonce draws r = SHA-512(prefix ‖ counter ‖ 32 random bytes) mod L and
// computes R = r·B. The prefix keeps r secret even were the random bytes
// predictable; the counter keeps two nonces apart even were they repeated.
func (s *Signer) newNonce() nonce {
	s.mu.Lock()
	s.counter++
	c := s.counter
	s.mu.Unlock()
	var in [32 + 8 + 32]byte
	copy(in[:32], s.prefix[:])
	binary.BigEndian.PutUint64(in[32:40], c)
	rand.Read(in[40:]) // never fails (Go 1.24+: it crashes the program instead)
	wide := sha512.Sum512(in[:])
	clear(in[:])
	var n nonce
	if _, err := n.r.SetBytesModOrderWide(wide[:]); err != nil {
		panic(err) // 64 bytes are always accepted
	}
	clear(wide[:])
	var R curve.EdwardsPoint
	var Rc curve.CompressedEdwardsY
	Rc.SetEdwardsPoint(R.MulBasepoint(curve.ED25519_BASEPOINT_TABLE, &n.r))
	copy(n.R[:], Rc[:])
	return n
}

// Ready is how many nonces are waiting in the pool.
func (s *Signer) Ready() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pool)
}

// Close stops the refilling, waits for it, and erases the pool. Sign still
// works after (each signature then computes its own nonce).
func (s *Signer) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return
	}
	s.closed = true
	close(s.wake)
	s.mu.Unlock()
	<-s.done
	s.mu.Lock()
	clear(s.pool[:cap(s.pool)])
	s.pool = s.pool[:0]
	s.mu.Unlock()
}
