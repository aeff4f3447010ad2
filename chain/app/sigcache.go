package app

import "sync"

// sigCache remembers hashes of txs whose signature already verified (in
// CheckTx), so FinalizeBlock does not verify them twice. A hit is safe: the
// hash covers the exact bytes that were verified. Bounded, FIFO eviction.
type sigCache struct {
	mu    sync.Mutex
	set   map[[32]byte]struct{}
	order [][32]byte
	next  int
}

func newSigCache(size int) *sigCache {
	return &sigCache{set: make(map[[32]byte]struct{}, size), order: make([][32]byte, size)}
}

func (c *sigCache) has(h [32]byte) bool {
	c.mu.Lock()
	_, ok := c.set[h]
	c.mu.Unlock()
	return ok
}

func (c *sigCache) add(h [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.set[h]; ok {
		return
	}
	old := c.order[c.next]
	if old != ([32]byte{}) {
		delete(c.set, old)
	}
	c.order[c.next] = h
	c.set[h] = struct{}{}
	c.next = (c.next + 1) % len(c.order)
}
