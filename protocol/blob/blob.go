// Package blob is the content address of the bytes Agora moves around —
// job modules, job inputs and results, datasets, models — and the HTTP
// paths that serve them.
//
// A blob is blob tree v2 (chain/blobtree): its ID is
//
//	sha256("agora-blob/v2" || size as 8 bytes big-endian || root)
//
// where root is the RFC 6962 Merkle root over the blob's 1 KiB segments.
// The blob is moved in ChunkSize chunks (the last one shorter) of 64
// segments each; a chunk's root (the MTH of its segments) is a node of the
// blob's tree, so the manifest lists the chunk roots and the root follows
// from them. Binding the size makes the ID name exactly one byte string;
// the Merkle tree lets a reader check any one chunk (Proof) — and a storage
// prover any one segment (blobtree.VerifySegment) — against the ID alone.
// The empty blob has size 0, no chunks and root sha256("").
package blob

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/agoranet/agora/chain/blobtree"
)

// ChunkSize is the length of every chunk but the last. 64 KiB keeps a
// 1 GiB blob's manifest at 512 KiB and a chunk proof under 1 KiB.
const ChunkSize = blobtree.ChunkSize

// ID names a blob's bytes.
type ID [32]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID parses the 64-digit hex form.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("blob id must be 64 hex digits, got %d characters", len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("blob id: %w", err)
	}
	return id, nil
}

// MakeID derives the ID from a blob's size and Merkle root
// (blobtree.BlobID).
func MakeID(size uint64, root [32]byte) ID { return blobtree.BlobID(size, root) }

// Manifest lists a blob's chunk roots (blobtree.ChunkRoot): what a reader
// needs to check every chunk of a download before it has the whole.
type Manifest struct {
	Size   uint64
	Chunks [][32]byte
}

// ChunkCount is the number of chunks of a blob of size bytes.
func ChunkCount(size uint64) uint64 { return blobtree.ChunkCount(size) }

// ChunkLen is the length of chunk i of a blob of size bytes.
func ChunkLen(size, i uint64) int {
	if i+1 < ChunkCount(size) {
		return ChunkSize
	}
	return int(size - i*ChunkSize)
}

// ChunkRoot is a chunk's manifest entry: the Merkle root of its segments
// (blobtree.ChunkRoot).
func ChunkRoot(chunk []byte) [32]byte { return blobtree.ChunkRoot(chunk) }

// ID is the manifest's blob ID.
func (m *Manifest) ID() ID { return MakeID(m.Size, blobtree.RootOfChunks(m.Chunks)) }

// Check verifies that the manifest is well formed (its chunk count fits
// its size) and names want.
func (m *Manifest) Check(want ID) error {
	if uint64(len(m.Chunks)) != ChunkCount(m.Size) {
		return fmt.Errorf("blob manifest: %d chunk roots for %d bytes (want %d)", len(m.Chunks), m.Size, ChunkCount(m.Size))
	}
	if got := m.ID(); got != want {
		return fmt.Errorf("blob manifest names %s, not %s", got, want)
	}
	return nil
}

// manifestMagic starts the binary manifest: magic, size (8 bytes
// big-endian), then the chunk roots. v1 manifests (chunk sha256 hashes of
// blob IDs v1) are refused by name.
const (
	manifestMagic   = "agora-manifest/v2\n"
	manifestMagicV1 = "agora-manifest/v1\n"
)

// MaxManifestLen is the longest binary manifest (MaxManifestChunks).
const MaxManifestLen = len(manifestMagic) + 8 + 32*MaxManifestChunks

// MaxManifestChunks bounds a decoded manifest (a 64 GiB blob).
const MaxManifestChunks = 1 << 20

// MarshalBinary encodes the manifest as served at ManifestPath.
func (m *Manifest) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, len(manifestMagic)+8+32*len(m.Chunks))
	b = append(b, manifestMagic...)
	b = binary.BigEndian.AppendUint64(b, m.Size)
	for _, c := range m.Chunks {
		b = append(b, c[:]...)
	}
	return b, nil
}

// UnmarshalBinary decodes MarshalBinary's form; it checks the form, not
// the ID (Check does).
func (m *Manifest) UnmarshalBinary(b []byte) error {
	if len(b) >= len(manifestMagicV1) && string(b[:len(manifestMagicV1)]) == manifestMagicV1 {
		return errors.New("blob manifest: version 1 (chunk sha256 hashes, blob ids v1) is no longer read; the blob must be re-added")
	}
	if len(b) < len(manifestMagic)+8 || string(b[:len(manifestMagic)]) != manifestMagic {
		return errors.New("blob manifest: not an agora manifest")
	}
	b = b[len(manifestMagic):]
	size := binary.BigEndian.Uint64(b)
	b = b[8:]
	n := ChunkCount(size)
	if n > MaxManifestChunks {
		return fmt.Errorf("blob manifest: %d bytes is over the %d-chunk limit", size, MaxManifestChunks)
	}
	if uint64(len(b)) != 32*n {
		return fmt.Errorf("blob manifest: %d bytes of chunk roots for %d chunks", len(b), n)
	}
	m.Size, m.Chunks = size, make([][32]byte, n)
	for i := range m.Chunks {
		copy(m.Chunks[i][:], b[32*i:])
	}
	return nil
}

// Builder computes a manifest from bytes written to it in order.
type Builder struct {
	m   Manifest
	buf []byte // the current partial chunk
}

// Write adds p to the blob. It never fails.
func (b *Builder) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if b.buf == nil {
			b.buf = make([]byte, 0, ChunkSize)
		}
		k := min(len(p), ChunkSize-len(b.buf))
		b.buf = append(b.buf, p[:k]...)
		p = p[k:]
		if len(b.buf) == ChunkSize {
			b.m.Chunks = append(b.m.Chunks, blobtree.ChunkRoot(b.buf))
			b.buf = b.buf[:0]
		}
	}
	b.m.Size += uint64(n)
	return n, nil
}

// Manifest finishes the blob: the last partial chunk's root is added.
func (b *Builder) Manifest() *Manifest {
	m := Manifest{Size: b.m.Size, Chunks: append([][32]byte(nil), b.m.Chunks...)}
	if len(b.buf) > 0 {
		m.Chunks = append(m.Chunks, blobtree.ChunkRoot(b.buf))
	}
	return &m
}

// Compute reads r to the end and returns its manifest.
func Compute(r io.Reader) (*Manifest, error) {
	var b Builder
	if _, err := io.Copy(&b, r); err != nil {
		return nil, err
	}
	return b.Manifest(), nil
}

// Of returns the ID of data.
func Of(data []byte) ID {
	var b Builder
	b.Write(data)
	return b.Manifest().ID()
}

// Proof shows that one chunk belongs to a blob, checkable against the ID
// alone: the blob's size, the chunk's index and the audit path of its
// chunk root among the chunk roots, from the bottom up (the sides follow
// from index and count).
type Proof struct {
	Size     uint64
	Index    uint64
	Siblings [][32]byte
}

// proofJSON is Proof on the wire (ProofHeader): hashes in hex.
type proofJSON struct {
	Size     uint64   `json:"size"`
	Index    uint64   `json:"index"`
	Siblings []string `json:"siblings"`
}

// MarshalJSON encodes the proof with hex hashes.
func (p Proof) MarshalJSON() ([]byte, error) {
	w := proofJSON{Size: p.Size, Index: p.Index, Siblings: make([]string, len(p.Siblings))}
	for i, s := range p.Siblings {
		w.Siblings[i] = hex.EncodeToString(s[:])
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes MarshalJSON's form.
func (p *Proof) UnmarshalJSON(b []byte) error {
	var w proofJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("blob proof: %w", err)
	}
	if len(w.Siblings) > 64 {
		return fmt.Errorf("blob proof: %d siblings", len(w.Siblings))
	}
	p.Size, p.Index, p.Siblings = w.Size, w.Index, make([][32]byte, len(w.Siblings))
	for i, s := range w.Siblings {
		if len(s) != 64 {
			return fmt.Errorf("blob proof: sibling %d is not 64 hex digits", i)
		}
		if _, err := hex.Decode(p.Siblings[i][:], []byte(s)); err != nil {
			return fmt.Errorf("blob proof: sibling %d: %w", i, err)
		}
	}
	return nil
}

// Prove builds chunk i's proof from the manifest.
func (m *Manifest) Prove(i uint64) (*Proof, error) {
	if i >= uint64(len(m.Chunks)) {
		return nil, fmt.Errorf("blob has %d chunks, no chunk %d", len(m.Chunks), i)
	}
	path, err := blobtree.NewTree(m.Chunks).Path(i)
	if err != nil {
		return nil, err
	}
	return &Proof{Size: m.Size, Index: i, Siblings: path}, nil
}

// Verify checks that chunk is chunk p.Index of the blob id.
func (p *Proof) Verify(id ID, chunk []byte) error {
	if p == nil {
		return errors.New("blob proof: missing")
	}
	n := ChunkCount(p.Size)
	if p.Index >= n {
		return fmt.Errorf("blob proof: chunk %d of a %d-byte blob", p.Index, p.Size)
	}
	if len(chunk) != ChunkLen(p.Size, p.Index) {
		return fmt.Errorf("blob proof: chunk %d is %d bytes, want %d", p.Index, len(chunk), ChunkLen(p.Size, p.Index))
	}
	root, err := blobtree.RootFromPath(blobtree.ChunkRoot(chunk), p.Index, n, p.Siblings)
	if err != nil {
		return fmt.Errorf("blob proof: %d siblings do not fit chunk %d of %d: %w", len(p.Siblings), p.Index, n, err)
	}
	if MakeID(p.Size, root) != id {
		return fmt.Errorf("blob proof: chunk %d does not belong to blob %s", p.Index, id)
	}
	return nil
}

// HTTP paths of a blob server. GET BlobPath serves the bytes (Range
// requests work), GET ManifestPath the binary manifest, GET ChunkPath one
// chunk with its Proof as JSON in the ProofHeader, PUT BlobPath stores an
// upload after checking it hashes to the ID in the path.
const (
	BlobRoute     = "/v1/blobs/{id}"
	ManifestRoute = "GET /v1/blobs/{id}/manifest"
	ChunkRoute    = "GET /v1/blobs/{id}/chunks/{index}"
	ProofHeader   = "X-Agora-Blob-Proof"
)

// BlobPath is the path of blob id's bytes.
func BlobPath(id ID) string { return "/v1/blobs/" + id.String() }

// ManifestPath is the path of blob id's manifest.
func ManifestPath(id ID) string { return BlobPath(id) + "/manifest" }

// ChunkPath is the path of chunk i of blob id.
func ChunkPath(id ID, i uint64) string { return fmt.Sprintf("%s/chunks/%d", BlobPath(id), i) }
