package blobtree

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20"
)

// ProviderLen is the length of a provider address in replica keys.
const ProviderLen = 20

// replicaKey is the ChaCha20 key of replica segment index:
// sha256("agora-replica/v1" || blobID || provider || u64be(index) || prevLeaf).
func replicaKey(blobID [32]byte, provider []byte, index uint64, prevLeaf [32]byte) [32]byte {
	buf := make([]byte, 0, 16+32+len(provider)+8+32)
	buf = append(buf, "agora-replica/v1"...)
	buf = append(buf, blobID[:]...)
	buf = append(buf, provider...)
	buf = binary.BigEndian.AppendUint64(buf, index)
	buf = append(buf, prevLeaf[:]...)
	return sha256.Sum256(buf)
}

var zeroNonce [chacha20.NonceSize]byte

// ReplicaSegment encodes (or, being an XOR, decodes) segment index of a
// provider's replica of blob blobID: seg XOR a ChaCha20 keystream (zero
// nonce) keyed by sha256("agora-replica/v1" || blobID || provider(20) ||
// u64be(index) || prevLeaf), where prevLeaf is LeafHash of REPLICA segment
// index−1 (zero for index 0). Encoding is therefore sequential: replica
// segment i needs replica segment i−1, so re-creating segment i from the
// raw data costs i+1 segment encodings. Decoding needs only the replica's
// previous leaf, so it is random access. provider is the 20-byte address.
func ReplicaSegment(blobID [32]byte, provider []byte, index uint64, prevLeaf [32]byte, seg []byte) []byte {
	key := replicaKey(blobID, provider, index, prevLeaf)
	c, err := chacha20.NewUnauthenticatedCipher(key[:], zeroNonce[:])
	if err != nil {
		panic(err) // unreachable: the key and nonce have fixed sizes
	}
	out := make([]byte, len(seg))
	c.XORKeyStream(out, seg)
	return out
}

// Encoder encodes a blob's segments into a provider's replica in order,
// carrying the previous replica leaf from one segment to the next.
type Encoder struct {
	blobID   [32]byte
	provider []byte
	index    uint64
	prev     [32]byte
}

// NewEncoder starts a replica of blob blobID for provider at segment 0.
func NewEncoder(blobID [32]byte, provider []byte) *Encoder {
	return &Encoder{blobID: blobID, provider: append([]byte(nil), provider...)}
}

// Next encodes the next segment of the blob into dst (len(seg) bytes; dst
// may be seg itself) and returns the replica segment's leaf hash.
func (e *Encoder) Next(dst, seg []byte) [32]byte {
	key := replicaKey(e.blobID, e.provider, e.index, e.prev)
	c, err := chacha20.NewUnauthenticatedCipher(key[:], zeroNonce[:])
	if err != nil {
		panic(err)
	}
	c.XORKeyStream(dst[:len(seg)], seg)
	e.prev = LeafHash(dst[:len(seg)])
	e.index++
	return e.prev
}

// Index is the index of the segment Next encodes next.
func (e *Encoder) Index() uint64 { return e.index }

// ReplicaProof shows that a provider holds segment Index of its replica and
// that it decodes to the blob's segment Index.
type ReplicaProof struct {
	Index       uint64
	Segment     []byte     // the replica's segment Index
	PrevLeaf    [32]byte   // LeafHash(replica segment Index−1); zero for Index 0
	ReplicaPath [][32]byte // audit path of Index in the replica tree
	PrevPath    [][32]byte // audit path of Index−1 in the replica tree (empty for Index 0)
	DataPath    [][32]byte // audit path of Index in the blob's tree (of the decoded segment)
}

// VerifyReplica checks a replica proof: the replica segment and the previous
// replica leaf against replicaRoot (the replica's MTH the provider posted),
// then the segment decoded for this provider against the blob id. Any
// failure names what failed.
func VerifyReplica(blobID [32]byte, size uint64, provider []byte, replicaRoot [32]byte, p *ReplicaProof) error {
	if p == nil {
		return errors.New("replica proof: missing")
	}
	if len(provider) != ProviderLen {
		return fmt.Errorf("replica proof: provider address is %d bytes, want %d", len(provider), ProviderLen)
	}
	n := SegmentCount(size)
	if p.Index >= n {
		return fmt.Errorf("replica proof: segment %d out of range: a %d-byte blob has %d segments", p.Index, size, n)
	}
	if want := SegmentLen(size, p.Index); len(p.Segment) != want {
		return fmt.Errorf("replica proof: segment %d is %d bytes, want %d", p.Index, len(p.Segment), want)
	}
	root, err := RootFromPath(LeafHash(p.Segment), p.Index, n, p.ReplicaPath)
	if err != nil {
		return fmt.Errorf("replica proof: segment %d: replica path: %w", p.Index, err)
	}
	if root != replicaRoot {
		return fmt.Errorf("replica proof: segment %d: replica segment is not in replica root %x", p.Index, replicaRoot[:])
	}
	if p.Index == 0 {
		if p.PrevLeaf != ([32]byte{}) || len(p.PrevPath) != 0 {
			return errors.New("replica proof: segment 0 has no previous leaf, but the proof gives one")
		}
	} else {
		root, err := RootFromPath(p.PrevLeaf, p.Index-1, n, p.PrevPath)
		if err != nil {
			return fmt.Errorf("replica proof: segment %d: previous leaf path: %w", p.Index, err)
		}
		if root != replicaRoot {
			return fmt.Errorf("replica proof: segment %d: previous leaf is not leaf %d of replica root %x", p.Index, p.Index-1, replicaRoot[:])
		}
	}
	seg := ReplicaSegment(blobID, provider, p.Index, p.PrevLeaf, p.Segment)
	if err := VerifySegment(blobID, size, p.Index, seg, p.DataPath); err != nil {
		return fmt.Errorf("replica proof: segment %d decoded for provider %x: %w", p.Index, provider, err)
	}
	return nil
}

// Seal encodes data (the blob blobID) into provider's replica and returns
// it with its root (the MTH over the replica's segments).
func Seal(blobID [32]byte, provider, data []byte) (replica []byte, root [32]byte) {
	replica = make([]byte, len(data))
	leaves := make([][32]byte, SegmentCount(uint64(len(data))))
	e := NewEncoder(blobID, provider)
	for i := range leaves {
		off := i * SegmentSize
		end := min(off+SegmentSize, len(data))
		leaves[i] = e.Next(replica[off:end], data[off:end])
	}
	return replica, Root(leaves)
}

// Unseal decodes a replica back into the blob's bytes. Each segment needs
// only the previous replica segment, so decoding is random access.
func Unseal(blobID [32]byte, provider, replica []byte) []byte {
	data := make([]byte, len(replica))
	var prev [32]byte
	for off, i := 0, uint64(0); off < len(replica); off, i = off+SegmentSize, i+1 {
		seg := replica[off:min(off+SegmentSize, len(replica))]
		copy(data[off:], ReplicaSegment(blobID, provider, i, prev, seg))
		prev = LeafHash(seg)
	}
	return data
}

// Replica is a blob and a provider's replica of it held in memory with both
// trees: a prover for tests, simulations and small blobs.
type Replica struct {
	ID       [32]byte
	Size     uint64
	Provider []byte
	Data     []byte // the replica's bytes
	blob     *Tree
	tree     *Tree
}

// NewReplica seals data for provider and builds the trees proofs need.
func NewReplica(data, provider []byte) *Replica {
	blob := NewTree(SegmentLeaves(data))
	id := BlobID(uint64(len(data)), blob.Root())
	rep, _ := Seal(id, provider, data)
	return &Replica{
		ID: id, Size: uint64(len(data)), Provider: append([]byte(nil), provider...),
		Data: rep, blob: blob, tree: NewTree(SegmentLeaves(rep)),
	}
}

// Root is the replica's root, what the provider posts when it accepts a
// deal.
func (r *Replica) Root() [32]byte { return r.tree.Root() }

// Prove answers the challenge of segment index from the replica.
func (r *Replica) Prove(index uint64) (*ReplicaProof, error) {
	if index >= r.tree.Len() {
		return nil, fmt.Errorf("segment %d out of range: the replica has %d segments", index, r.tree.Len())
	}
	p := &ReplicaProof{Index: index}
	off := index * SegmentSize
	p.Segment = append([]byte(nil), r.Data[off:min(off+SegmentSize, r.Size)]...)
	var err error
	if p.ReplicaPath, err = r.tree.Path(index); err != nil {
		return nil, err
	}
	if index > 0 {
		p.PrevLeaf = r.tree.Leaf(index - 1)
		if p.PrevPath, err = r.tree.Path(index - 1); err != nil {
			return nil, err
		}
	}
	if p.DataPath, err = r.blob.Path(index); err != nil {
		return nil, err
	}
	return p, nil
}
