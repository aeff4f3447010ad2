// Package store is the chain's key-value state: a versioned IAVL Merkle tree
// on Pebble, and a write cache used to make each tx atomic.
//
// Storage errors panic: a replicated state machine that cannot read or write
// its state must stop rather than diverge from the other validators.
package store

import (
	"bytes"
	"fmt"
	"sort"
)

// KV is the state interface modules use.
type KV interface {
	Get(key []byte) []byte
	Has(key []byte) bool
	Set(key, value []byte)
	Delete(key []byte)
	// Iterate calls fn for each key with the prefix, in ascending key order,
	// until fn returns false. fn must not write to the store.
	Iterate(prefix []byte, fn func(key, value []byte) bool)
}

// PrefixEnd returns the smallest key greater than every key with prefix.
func PrefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

type cacheEntry struct {
	value   []byte
	deleted bool
}

// Cache buffers writes over a parent KV. Write applies them to the parent in
// sorted key order; dropping the cache discards them.
type Cache struct {
	parent KV
	writes map[string]cacheEntry
}

// NewCache returns an empty write cache over parent.
func NewCache(parent KV) *Cache {
	return &Cache{parent: parent, writes: make(map[string]cacheEntry)}
}

func (c *Cache) Get(key []byte) []byte {
	if e, ok := c.writes[string(key)]; ok {
		if e.deleted {
			return nil
		}
		return e.value
	}
	return c.parent.Get(key)
}

func (c *Cache) Has(key []byte) bool { return c.Get(key) != nil }

func (c *Cache) Set(key, value []byte) {
	if value == nil {
		value = []byte{}
	}
	c.writes[string(key)] = cacheEntry{value: bytes.Clone(value)}
}

func (c *Cache) Delete(key []byte) { c.writes[string(key)] = cacheEntry{deleted: true} }

func (c *Cache) Iterate(prefix []byte, fn func(key, value []byte) bool) {
	merged := map[string][]byte{}
	c.parent.Iterate(prefix, func(k, v []byte) bool {
		merged[string(k)] = v
		return true
	})
	for k, e := range c.writes {
		if !bytes.HasPrefix([]byte(k), prefix) {
			continue
		}
		if e.deleted {
			delete(merged, k)
		} else {
			merged[k] = e.value
		}
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !fn([]byte(k), merged[k]) {
			return
		}
	}
}

// Write applies the buffered writes to the parent in sorted key order, so the
// resulting tree is the same on every validator.
func (c *Cache) Write() {
	keys := make([]string, 0, len(c.writes))
	for k := range c.writes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e := c.writes[k]
		if e.deleted {
			c.parent.Delete([]byte(k))
		} else {
			c.parent.Set([]byte(k), e.value)
		}
	}
	c.writes = make(map[string]cacheEntry)
}

func must(err error, what string) {
	if err != nil {
		panic(fmt.Errorf("state store: %s: %w", what, err))
	}
}
