// Package verify holds the verification rules shared by the chain, the
// providers and the validator workers: which receipts an epoch's seed
// selects for audit, how a native-engine transcript is re-executed and
// compared bit for bit, and how a GPU backend's transcript is compared
// within tolerances.
package verify

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
)

// SampleDomain separates sampling randomness from every other hash.
const SampleDomain = "agora/sample/v1"

// Rate is the audit rate in basis points for a provider with reputation rep
// (0..10000): floor + (ceiling − floor) × (1 − rep). Integer arithmetic.
func Rate(floorBps, ceilingBps, rep uint64) uint64 {
	rep = min(rep, 10000)
	if ceilingBps < floorBps {
		ceilingBps = floorBps
	}
	return floorBps + (ceilingBps-floorBps)*(10000-rep)/10000
}

// MaxSamples caps the receipts audited per provider and epoch. Sampling
// runs inside transactions, so its cost must not grow with the count a
// provider declares; 256 samples already catch a provider cheating on 5 %
// of its requests with probability 1 − 0.95^256 > 0.9999.
const MaxSamples = 256

// SampleCount is how many of count receipts are audited at rate bps:
// ceil(count × bps / 10000), at least one when count > 0 and bps > 0, at
// most MaxSamples.
func SampleCount(count, bps uint64) uint64 {
	if count == 0 || bps == 0 {
		return 0
	}
	bps = min(bps, 10000)
	if count > math.MaxUint64/10000 {
		return MaxSamples
	}
	return min(max(1, (count*bps+9999)/10000), MaxSamples)
}

// SampleIndices picks k distinct receipt indices in [0, count) from the
// epoch seed and the provider address, in the order drawn. Anyone can
// recompute them; nobody knows them before the seed exists.
//
// Draws come from sha256(domain || seed || provider || counter) read as
// big-endian uint64s; index i of a virtual array [0, count) is swapped with
// a draw in [i, count) (a partial Fisher–Yates shuffle), and a draw r maps
// to i + r mod (count − i).
func SampleIndices(seed, provider []byte, count, k uint64) []uint64 {
	k = min(k, count)
	out := make([]uint64, 0, k)
	swapped := map[uint64]uint64{} // virtual array entries that moved
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
			h.Write([]byte(SampleDomain))
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

// DetectionProbability is 1 − (1 − s·f)^M: the chance that auditing a
// fraction s of requests catches a provider that cheats on a fraction f of
// M requests. For documentation and sizing, never for consensus.
func DetectionProbability(s, f float64, m int) float64 {
	return 1 - math.Pow(1-s*f, float64(m))
}

// NextReputation is a provider's reputation (basis points, 0..10000) after
// an epoch it committed is settled: a fault resets it to 0, a clean epoch
// adds step (capped at 10000). Honest providers reach full reputation after
// ceil(10000 / step) clean epochs and are then audited at the floor rate.
func NextReputation(rep, step uint64, faulted bool) uint64 {
	if faulted {
		return 0
	}
	return min(10000, rep+step)
}

// Emission is the uagr minted for epoch n: initial halved every interval
// epochs (0 once halved 64 times).
func Emission(initial, interval, n uint64) uint64 {
	if interval == 0 {
		return 0
	}
	h := n / interval
	if h >= 64 {
		return 0
	}
	return initial >> h
}

// Sampled is the audit sample of a commitment: the indices, in draw order,
// of the count receipts that provider must open for the epoch with seed,
// at the rate its reputation (fixed when it committed) gives. The chain,
// providers, validators and the explorer all call this one function.
func Sampled(seed, provider []byte, count, floorBps, ceilingBps, reputation uint64) []uint64 {
	return SampleIndices(seed, provider, count, SampleCount(count, Rate(floorBps, ceilingBps, reputation)))
}
