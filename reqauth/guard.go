package reqauth

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// Defaults for a provider's Guard.
const (
	DefaultWindow = 2 * time.Minute
	// DefaultCapacity bounds the nonces remembered (≈ 30 bytes each): two
	// minutes at 17k requests/s.
	DefaultCapacity = 1 << 21
)

// Guard is a provider's replay protection. A request is fresh if its
// timestamp is within the window of the provider's clock and not earlier
// than the provider's start (its seen-set begins empty then), and its
// (channel, nonce) was not seen. A nonce is remembered until its timestamp
// leaves the window, after which the timestamp alone refuses a replay, so
// memory is bounded by the request rate times the window; past the
// capacity new requests are refused (ErrFull) rather than forgotten.
type Guard struct {
	window   int64 // ms
	start    int64 // unix ms
	capacity int

	mu sync.Mutex
	// buckets by second of the request's timestamp: a replay carries the
	// same timestamp (the MAC covers it), so only its bucket is looked in,
	// and whole buckets are dropped as they leave the window.
	buckets map[int64]map[[8 + NonceSize]byte]struct{}
	n       int
	pruned  int64 // second of the last prune
}

// NewGuard makes a guard for a process started at start. window ≤ 0 and
// capacity ≤ 0 take the defaults.
func NewGuard(window time.Duration, start time.Time, capacity int) *Guard {
	if window <= 0 {
		window = DefaultWindow
	}
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	return &Guard{window: window.Milliseconds(), start: start.UnixMilli(), capacity: capacity,
		buckets: map[int64]map[[8 + NonceSize]byte]struct{}{}}
}

// Fresh checks a's timestamp against now (cheap: run it before the MAC).
func (g *Guard) Fresh(a *Auth, now time.Time) error {
	ms := now.UnixMilli()
	switch {
	case a.TS < ms-g.window:
		return fmt.Errorf("%w: signed %d ms ago, the window is %d ms (check the client's clock)", ErrStale, ms-a.TS, g.window)
	case a.TS > ms+g.window:
		return fmt.Errorf("%w: signed %d ms ahead of the provider's clock, the window is %d ms (check the client's clock)", ErrFuture, a.TS-ms, g.window)
	case a.TS < g.start:
		return fmt.Errorf("%w: signed %d ms before the provider's start; send it again", ErrBeforeStart, g.start-a.TS)
	}
	return nil
}

// Remember records a's nonce, refusing one already seen. Call it only once
// the MAC verified (so only the channel's client can fill the set) and a is
// Fresh.
func (g *Guard) Remember(a *Auth, now time.Time) error {
	var k [8 + NonceSize]byte
	binary.BigEndian.PutUint64(k[:8], a.Channel)
	copy(k[8:], a.Nonce[:])
	sec := floorDiv(a.TS, 1000)
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := floorDiv(now.UnixMilli(), 1000); s != g.pruned {
		g.prune(now.UnixMilli())
		g.pruned = s
	}
	b := g.buckets[sec]
	if _, seen := b[k]; seen {
		return fmt.Errorf("%w (channel %d)", ErrReplay, a.Channel)
	}
	if g.n >= g.capacity {
		return fmt.Errorf("%w: %d requests remembered", ErrFull, g.n)
	}
	if b == nil {
		b = map[[8 + NonceSize]byte]struct{}{}
		g.buckets[sec] = b
	}
	b[k] = struct{}{}
	g.n++
	return nil
}

// prune drops the buckets whose every timestamp is now older than the
// window. Call with mu held.
func (g *Guard) prune(ms int64) {
	for sec, b := range g.buckets {
		if sec*1000+999 < ms-g.window {
			g.n -= len(b)
			delete(g.buckets, sec)
		}
	}
}

// Len is the number of nonces remembered.
func (g *Guard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Check is a provider's whole check of a request's header value h: it must
// parse, be for channel (the voucher's), be fresh, carry the MAC of this
// request under the channel's key, and not have been seen. key returns the
// channel's key; an error from it that is not ErrKey (an unknown channel,
// say) is returned as is, for the caller to answer as it answers those.
func (g *Guard) Check(h string, channel uint64, key func(channel uint64) (*Key, error), method, path string, body []byte, voucher string, now time.Time) error {
	a, err := Parse(h)
	if err != nil {
		return err
	}
	if a.Channel != channel {
		return fmt.Errorf("%w: authenticated channel %d, voucher for channel %d", ErrChannel, a.Channel, channel)
	}
	if err := g.Fresh(&a, now); err != nil {
		return err
	}
	k, err := key(channel)
	if err != nil {
		return err
	}
	if err := a.Verify(k, method, path, body, voucher); err != nil {
		return err
	}
	return g.Remember(&a, now)
}
