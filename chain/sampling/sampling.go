// Package sampling holds the audit sampling rules of the state machine:
// the audit rate a provider's reputation gives, how many of an epoch's
// receipts that rate selects, and which ones, drawn from the epoch's seed.
// The chain checks reports against them; providers, validators, the
// explorer and the benchmarks call the same functions, so everyone computes
// the same sample. Integer arithmetic only.
package sampling

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
)

// Domain separates sampling randomness from every other hash.
const Domain = "agora/sample/v1"

// Rate is the audit rate in basis points for a provider with reputation rep
// (0..10000): floor + (ceiling − floor) × (1 − rep).
func Rate(floorBps, ceilingBps, rep uint64) uint64 {
	rep = min(rep, 10000)
	if ceilingBps < floorBps {
		ceilingBps = floorBps
	}
	return floorBps + (ceilingBps-floorBps)*(10000-rep)/10000
}

// Max caps the receipts audited per provider and epoch. Sampling runs
// inside transactions, so its cost must not grow with the count a provider
// declares; 256 samples already catch a provider cheating on 5 % of its
// requests with probability 1 − 0.95^256 > 0.9999.
const Max = 256

// Count is how many of count receipts are audited at rate bps:
// ceil(count × bps / 10000), at least one when count > 0 and bps > 0, at
// most Max.
func Count(count, bps uint64) uint64 {
	if count == 0 || bps == 0 {
		return 0
	}
	bps = min(bps, 10000)
	if count > math.MaxUint64/10000 {
		return Max
	}
	return min(max(1, (count*bps+9999)/10000), Max)
}

// Indices picks k distinct receipt indices in [0, count) from the epoch
// seed and the provider address, in the order drawn. Anyone can recompute
// them; nobody knows them before the seed exists.
//
// Draws come from sha256(Domain || seed || provider || counter) read as
// big-endian uint64s; index i of a virtual array [0, count) is swapped with
// a draw in [i, count) (a partial Fisher–Yates shuffle), and a draw r maps
// to i + r mod (count − i).
func Indices(seed, provider []byte, count, k uint64) []uint64 {
	k = min(k, count)
	out := make([]uint64, 0, k)
	swapped := map[uint64]uint64{} // virtual array entries that moved (only looked up, never iterated)
	at := func(i uint64) uint64 {
		if v, ok := swapped[i]; ok {
			return v
		}
		return i
	}
	var ctr uint64
	var buf []byte
	next := func() uint64 {
		if len(buf) < 8 {
			h := sha256.New()
			h.Write([]byte(Domain))
			h.Write(seed)
			h.Write(provider)
			h.Write(binary.BigEndian.AppendUint64(nil, ctr))
			ctr++
			buf = h.Sum(nil)
		}
		v := binary.BigEndian.Uint64(buf[:8])
		buf = buf[8:]
		return v
	}
	for i := uint64(0); i < k; i++ {
		j := i + next()%(count-i)
		vi, vj := at(i), at(j)
		swapped[i], swapped[j] = vj, vi
		out = append(out, vj)
	}
	return out
}

// Sample is the audit sample of a commitment: the indices, in draw order,
// of the count receipts that provider must open for the epoch with seed,
// at the rate its reputation (fixed when it committed) gives. The chain,
// providers, validators and the explorer all call this one function.
func Sample(seed, provider []byte, count, floorBps, ceilingBps, reputation uint64) []uint64 {
	return Indices(seed, provider, count, Count(count, Rate(floorBps, ceilingBps, reputation)))
}
