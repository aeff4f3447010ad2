// Package blobtree is blob tree v2: the Merkle tree that names a blob's
// bytes, proves any 1 KiB segment of it against the blob ID alone, and
// underlies storage proofs over provider-specific replicas.
//
// A blob is cut into SegmentSize segments (the last may be short; the empty
// blob has none). Its tree is the RFC 6962 Merkle tree over all segments:
// leaf = sha256(0x00 || segment), node = sha256(0x01 || left || right). A
// chunk (ChunkSize = 64 segments, the transfer and manifest unit) is a
// power-of-two run of leaves aligned on a power-of-two boundary, so RFC
// 6962's split always falls on chunk boundaries and each chunk's root
// (ChunkRoot) is a node of the blob's tree: the blob root is computed from
// the chunk roots alone (RootOfChunks), with node hashing only. The ID binds
// the size too (BlobID), so it names exactly one byte string.
//
// Replicas (ReplicaSegment) are a provider's own encoding of a blob, made
// segment by segment with a keystream that depends on the previous replica
// segment; proofs over them (ReplicaProof, VerifyReplica) show that a
// provider holds its replica and that the replica decodes to the blob.
// Challenges draws the segments a deal must prove in an epoch.
//
// The package imports only the standard library and golang.org/x/crypto: the
// chain checks proofs with it.
package blobtree

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

const (
	// SegmentSize is the length of every segment but the last: the unit of
	// a storage challenge.
	SegmentSize = 1024
	// ChunkSize is the length of every chunk but the last: the unit of
	// transfer and of the manifest.
	ChunkSize = 64 << 10
	// SegmentsPerChunk is the number of segments of a full chunk, a power
	// of two so chunk roots are nodes of the blob's tree.
	SegmentsPerChunk = ChunkSize / SegmentSize
)

// SegmentCount is the number of segments of a blob of size bytes.
func SegmentCount(size uint64) uint64 {
	n := size / SegmentSize
	if size%SegmentSize != 0 {
		n++
	}
	return n
}

// SegmentLen is the length of segment index of a blob of size bytes (0 when
// there is no such segment).
func SegmentLen(size, index uint64) int {
	n := SegmentCount(size)
	switch {
	case index >= n:
		return 0
	case index+1 < n:
		return SegmentSize
	}
	return int(size - index*SegmentSize)
}

// ChunkCount is the number of chunks of a blob of size bytes.
func ChunkCount(size uint64) uint64 {
	n := size / ChunkSize
	if size%ChunkSize != 0 {
		n++
	}
	return n
}

// ChunkLen is the length of chunk index of a blob of size bytes (0 when
// there is no such chunk).
func ChunkLen(size, index uint64) int {
	n := ChunkCount(size)
	switch {
	case index >= n:
		return 0
	case index+1 < n:
		return ChunkSize
	}
	return int(size - index*ChunkSize)
}

// LeafHash is the tree's hash of one segment: sha256(0x00 || seg).
func LeafHash(seg []byte) [32]byte {
	var buf [1 + SegmentSize]byte
	if len(seg) <= SegmentSize {
		buf[0] = 0
		n := copy(buf[1:], seg)
		return sha256.Sum256(buf[:1+n])
	}
	// Not a segment of any blob, but hash it as defined all the same.
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(seg)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// NodeHash is the tree's hash of an inner node: sha256(0x01 || l || r).
func NodeHash(l, r [32]byte) [32]byte {
	var buf [65]byte
	buf[0] = 1
	copy(buf[1:33], l[:])
	copy(buf[33:], r[:])
	return sha256.Sum256(buf[:])
}

// emptyRoot is RFC 6962's MTH of no leaves: sha256 of the empty string.
var emptyRoot = sha256.Sum256(nil)

// ChunkRoot is the Merkle root of one chunk's segments (at most
// SegmentsPerChunk of them; the last chunk of a blob may be short). An empty
// chunk has sha256("") as root, RFC 6962's empty tree, though no blob has
// one.
func ChunkRoot(chunk []byte) [32]byte {
	if len(chunk) == 0 {
		return emptyRoot
	}
	var leaves [SegmentsPerChunk][32]byte
	n := 0
	for off := 0; off < len(chunk) && n < SegmentsPerChunk; off += SegmentSize {
		leaves[n] = LeafHash(chunk[off:min(off+SegmentSize, len(chunk))])
		n++
	}
	return rootInPlace(leaves[:n])
}

// RootOfChunks is the blob's root from its chunk roots, in order: RFC
// 6962's MTH with the chunk roots as the level-6 nodes (node hashing only).
// No chunks is the empty blob, whose root is sha256("").
func RootOfChunks(chunkRoots [][32]byte) [32]byte {
	if len(chunkRoots) == 0 {
		return emptyRoot
	}
	level := append([][32]byte(nil), chunkRoots...)
	return rootInPlace(level)
}

// Root is RFC 6962's MTH over leaf hashes (LeafHash of each segment):
// sha256("") for none.
func Root(leaves [][32]byte) [32]byte {
	if len(leaves) == 0 {
		return emptyRoot
	}
	return rootInPlace(append([][32]byte(nil), leaves...))
}

// rootInPlace reduces a non-empty level to its root, overwriting it.
// Hashing pairs bottom-up and promoting an odd last node gives exactly RFC
// 6962's tree (its split at the largest power of two below n).
func rootInPlace(level [][32]byte) [32]byte {
	for n := len(level); n > 1; n = (n + 1) / 2 {
		for i := 0; i < n; i += 2 {
			if i+1 < n {
				level[i/2] = NodeHash(level[i], level[i+1])
			} else {
				level[i/2] = level[i]
			}
		}
	}
	return level[0]
}

// BlobID names a blob: sha256("agora-blob/v2" || u64be(size) || root).
func BlobID(size uint64, root [32]byte) [32]byte {
	var buf [13 + 8 + 32]byte
	copy(buf[:13], "agora-blob/v2")
	binary.BigEndian.PutUint64(buf[13:21], size)
	copy(buf[21:], root[:])
	return sha256.Sum256(buf[:])
}

// RootFromPath climbs from node h, at position index of a level of count
// nodes, up an RFC 6962 audit path (siblings from the bottom up; which levels
// have a sibling, and on which side, follow from index and count) and returns
// the root. It fails when the path does not have exactly the tree's shape.
func RootFromPath(h [32]byte, index, count uint64, path [][32]byte) ([32]byte, error) {
	if index >= count {
		return [32]byte{}, fmt.Errorf("index %d out of a tree of %d", index, count)
	}
	if want := PathLen(index, count); len(path) != want {
		return [32]byte{}, fmt.Errorf("path has %d hashes, index %d of %d needs %d", len(path), index, count, want)
	}
	k := 0
	for pos, n := index, count; n > 1; pos, n = pos/2, (n+1)/2 {
		sib := pos ^ 1
		if sib >= n {
			continue // the odd last node is promoted
		}
		if sib < pos {
			h = NodeHash(path[k], h)
		} else {
			h = NodeHash(h, path[k])
		}
		k++
	}
	return h, nil
}

// PathLen is the number of hashes of the audit path of index in a tree of
// count leaves.
func PathLen(index, count uint64) int {
	k := 0
	for pos, n := index, count; n > 1; pos, n = pos/2, (n+1)/2 {
		if pos^1 < n {
			k++
		}
	}
	return k
}

// VerifySegment checks segment index (its bytes) against the blob id with
// an RFC 6962 audit path (siblings from the leaf up).
func VerifySegment(id [32]byte, size, index uint64, seg []byte, path [][32]byte) error {
	n := SegmentCount(size)
	if index >= n {
		return fmt.Errorf("segment %d out of range: a %d-byte blob has %d segments", index, size, n)
	}
	if want := SegmentLen(size, index); len(seg) != want {
		return fmt.Errorf("segment %d is %d bytes, want %d", index, len(seg), want)
	}
	root, err := RootFromPath(LeafHash(seg), index, n, path)
	if err != nil {
		return fmt.Errorf("segment %d: %w", index, err)
	}
	if BlobID(size, root) != id {
		return fmt.Errorf("segment %d does not belong to blob %x", index, id[:])
	}
	return nil
}

// Tree is a Merkle tree held in memory with all its levels, for building
// audit paths quickly.
type Tree struct {
	levels [][][32]byte // leaves first, root last; nil for an empty tree
}

// NewTree builds the tree over leaf hashes (not copied; do not change them
// afterwards).
func NewTree(leaves [][32]byte) *Tree {
	if len(leaves) == 0 {
		return &Tree{}
	}
	levels := [][][32]byte{leaves}
	for level := leaves; len(level) > 1; {
		next := make([][32]byte, (len(level)+1)/2)
		for i := 0; i < len(level); i += 2 {
			if i+1 < len(level) {
				next[i/2] = NodeHash(level[i], level[i+1])
			} else {
				next[i/2] = level[i]
			}
		}
		levels = append(levels, next)
		level = next
	}
	return &Tree{levels: levels}
}

// Len is the number of leaves.
func (t *Tree) Len() uint64 {
	if len(t.levels) == 0 {
		return 0
	}
	return uint64(len(t.levels[0]))
}

// Root is the tree's root (sha256("") when empty).
func (t *Tree) Root() [32]byte {
	if len(t.levels) == 0 {
		return emptyRoot
	}
	return t.levels[len(t.levels)-1][0]
}

// Leaf is leaf index's hash.
func (t *Tree) Leaf(index uint64) [32]byte { return t.levels[0][index] }

// Path is leaf index's audit path, siblings from the leaf up.
func (t *Tree) Path(index uint64) ([][32]byte, error) {
	if index >= t.Len() {
		return nil, fmt.Errorf("leaf %d out of a tree of %d", index, t.Len())
	}
	var path [][32]byte
	pos := index
	for _, level := range t.levels[:len(t.levels)-1] {
		if sib := pos ^ 1; sib < uint64(len(level)) {
			path = append(path, level[sib])
		}
		pos /= 2
	}
	return path, nil
}

// SegmentLeaves is the leaf hashes of data's segments.
func SegmentLeaves(data []byte) [][32]byte {
	leaves := make([][32]byte, SegmentCount(uint64(len(data))))
	for i := range leaves {
		off := i * SegmentSize
		leaves[i] = LeafHash(data[off:min(off+SegmentSize, len(data))])
	}
	return leaves
}

// ChunkPath is the audit path of segment index of a blob from its chunk's
// bytes and the blob's chunk roots: the path inside the chunk, then the
// chunk root's path among the chunk roots. It is what a holder of the
// manifest and one chunk needs to prove any segment of that chunk.
func ChunkPath(chunk []byte, chunkRoots [][32]byte, index uint64) ([][32]byte, error) {
	c := index / SegmentsPerChunk
	if c >= uint64(len(chunkRoots)) {
		return nil, fmt.Errorf("segment %d is in chunk %d, the blob has %d chunks", index, c, len(chunkRoots))
	}
	if len(chunk) == 0 || len(chunk) > ChunkSize {
		return nil, fmt.Errorf("chunk %d is %d bytes", c, len(chunk))
	}
	inner, err := NewTree(SegmentLeaves(chunk)).Path(index % SegmentsPerChunk)
	if err != nil {
		return nil, fmt.Errorf("segment %d: %w", index, err)
	}
	outer, err := NewTree(append([][32]byte(nil), chunkRoots...)).Path(c)
	if err != nil {
		return nil, err
	}
	return append(inner, outer...), nil
}

// Challenges returns k segment indices in [0, segments) drawn from an
// epoch's seed for one deal. The stream is sha256 in counter mode: block j
// is sha256("agora-storage-challenge/v1" || seed || u64be(deal) ||
// u64be(epoch) || u64be(j)), read as four big-endian uint64s. A draw v is
// kept only when v >= 2^64 mod segments (rejection sampling: the kept range
// is a whole multiple of segments, so v mod segments has no bias); repeats
// are allowed. It returns nil when k <= 0 or segments == 0.
func Challenges(seed []byte, deal, epoch, segments uint64, k int) []uint64 {
	if k <= 0 || segments == 0 {
		return nil
	}
	src := newChallengeStream(seed, deal, epoch)
	out := make([]uint64, k)
	for i := range out {
		out[i] = pick(src.next, segments)
	}
	return out
}

// pick draws one value in [0, n) from next by rejection sampling. A draw is
// rejected with probability (2^64 mod n)/2^64 < n/2^64, so for any n a blob
// can have the loop all but never repeats.
func pick(next func() uint64, n uint64) uint64 {
	// 2^64 mod n, computed in 64 bits: (2^64 - n) mod n.
	thresh := -n % n
	for {
		if v := next(); v >= thresh {
			return v % n
		}
	}
}

type challengeStream struct {
	prefix []byte
	ctr    uint64
	block  [32]byte
	used   int // uint64s of block consumed (4 = none left)
}

func newChallengeStream(seed []byte, deal, epoch uint64) *challengeStream {
	p := make([]byte, 0, 26+len(seed)+24) // room for the counter
	p = append(p, "agora-storage-challenge/v1"...)
	p = append(p, seed...)
	p = binary.BigEndian.AppendUint64(p, deal)
	p = binary.BigEndian.AppendUint64(p, epoch)
	return &challengeStream{prefix: p, used: 4}
}

func (s *challengeStream) next() uint64 {
	if s.used == 4 {
		buf := s.prefix[:len(s.prefix)+8]
		binary.BigEndian.PutUint64(buf[len(s.prefix):], s.ctr)
		s.block = sha256.Sum256(buf)
		s.ctr++
		s.used = 0
	}
	v := binary.BigEndian.Uint64(s.block[8*s.used:])
	s.used++
	return v
}

// IDOf is the blob ID of data held whole in memory (protocol/blob.Of
// computes the same from chunks, streaming).
func IDOf(data []byte) [32]byte {
	return BlobID(uint64(len(data)), Root(SegmentLeaves(data)))
}
