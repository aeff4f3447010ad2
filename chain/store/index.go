package store

import (
	"bytes"
	"encoding/binary"
)

// Indexes and timers the modules keep in state share one key layout: a
// prefix, then parts, then an 8-byte big-endian id last.

// IDsUnder reads the trailing 8-byte ids of the keys under prefix, in key
// order.
func IDsUnder(kv KV, prefix []byte) []uint64 {
	var out []uint64
	kv.Iterate(prefix, func(k, _ []byte) bool {
		out = append(out, binary.BigEndian.Uint64(k[len(k)-8:]))
		return true
	})
	return out
}

// A timer queue q holds ids due at the end of a height: key q ‖
// u64be(height) ‖ u64be(id). Heights below zero count as zero.
func queueKey(q []byte, height int64, id uint64) []byte {
	k := make([]byte, 0, len(q)+16)
	k = append(k, q...)
	k = binary.BigEndian.AppendUint64(k, uint64(max(height, 0)))
	return binary.BigEndian.AppendUint64(k, id)
}

// Enqueue makes id due at the end of height in queue q.
func Enqueue(kv KV, q []byte, height int64, id uint64) { kv.Set(queueKey(q, height, id), []byte{1}) }

// Dequeue removes id's entry at height from queue q.
func Dequeue(kv KV, q []byte, height int64, id uint64) { kv.Delete(queueKey(q, height, id)) }

// Due returns the ids of q's entries due at or before height, in (height,
// id) order, and deletes those entries.
func Due(kv KV, q []byte, height int64) []uint64 {
	end := queueKey(q, height+1, 0)[:len(q)+8]
	var keys [][]byte
	kv.Iterate(q, func(k, _ []byte) bool {
		if bytes.Compare(k, end) >= 0 {
			return false
		}
		keys = append(keys, bytes.Clone(k))
		return true
	})
	out := make([]uint64, len(keys))
	for i, k := range keys {
		out[i] = binary.BigEndian.Uint64(k[len(k)-8:])
		kv.Delete(k)
	}
	return out
}
