package replicastore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/agoranet/agora/chain/blobtree"
)

// chunkWork is one replica chunk read from disk with the trees inside it:
// over its replica segments and over the data segments they decode to.
type chunkWork struct {
	rep      []byte
	repTree  *blobtree.Tree
	dataTree *blobtree.Tree
	data     []byte
	damaged  bool // the replica's bytes no longer give the chunk's replica root
	badData  bool // they do not decode to the blob's chunk (damaged, or the chunk before is)
}

// reader reads replica chunks of one blob, remembering the ones read.
type reader struct {
	f    *os.File
	e    *entry
	seen map[uint64]*chunkWork
}

// readFull reads len(b) bytes at off; bytes past the end of the file (a
// truncated replica) read as zeros, as a hole would.
func readFull(f *os.File, b []byte, off int64) error {
	n, err := f.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	clear(b[n:])
	return nil
}

// chunk reads replica chunk c, hashes its segments, decodes them and hashes
// the decoded data, and compares both roots with those recorded at sealing.
func (r *reader) chunk(c uint64) (*chunkWork, error) {
	if w, ok := r.seen[c]; ok {
		return w, nil
	}
	e := r.e
	w := &chunkWork{rep: make([]byte, blobtree.ChunkLen(e.Size, c))}
	if err := readFull(r.f, w.rep, int64(c)*blobtree.ChunkSize); err != nil {
		return nil, fmt.Errorf("replica store: %x chunk %d: %w", e.BlobID[:], c, err)
	}
	repLeaves := blobtree.SegmentLeaves(w.rep)
	w.repTree = blobtree.NewTree(repLeaves)
	// The first segment decodes with the leaf of the replica's previous
	// segment, the last of chunk c-1.
	var prev [32]byte
	if c > 0 {
		prev = e.lastLeaves[c-1] // recorded at sealing: chunk c-1 may be damaged
	}
	w.data = make([]byte, len(w.rep))
	first := c * blobtree.SegmentsPerChunk
	for j := range repLeaves {
		off := j * blobtree.SegmentSize
		seg := w.rep[off:min(off+blobtree.SegmentSize, len(w.rep))]
		copy(w.data[off:], blobtree.ReplicaSegment(e.BlobID, e.Provider, first+uint64(j), prev, seg))
		prev = repLeaves[j]
	}
	w.dataTree = blobtree.NewTree(blobtree.SegmentLeaves(w.data))
	w.damaged = w.repTree.Root() != e.repRoots[c]
	w.badData = w.dataTree.Root() != e.dataRoots[c]
	r.seen[c] = w
	return w, nil
}

// Prove answers storage challenges: a replica proof for each segment index
// (blobtree.VerifyReplica checks them against the blob id, the provider and
// the replica root). When a challenged chunk (or, for the first segment of
// a chunk, the chunk before it) no longer matches the roots recorded at
// sealing, Prove still returns every proof — those touching the damage will
// fail verification — together with a *DamageError naming the chunks.
func (s *Store) Prove(id [32]byte, indices []uint64) ([]blobtree.ReplicaProof, error) {
	e, err := s.entry(id)
	if err != nil {
		return nil, err
	}
	segs := blobtree.SegmentCount(e.Size)
	for _, i := range indices {
		if i >= segs {
			return nil, fmt.Errorf("replica store: segment %d out of range: %x has %d segments", i, id[:], segs)
		}
	}
	f, err := os.Open(s.path(id, ".replica"))
	if err != nil {
		return nil, fmt.Errorf("replica store: %w", err)
	}
	defer f.Close()
	r := &reader{f: f, e: e, seen: map[uint64]*chunkWork{}}
	proofs := make([]blobtree.ReplicaProof, len(indices))
	damaged := map[uint64]bool{}
	for k, i := range indices {
		c, j := i/blobtree.SegmentsPerChunk, i%blobtree.SegmentsPerChunk
		w, err := r.chunk(c)
		if err != nil {
			return nil, err
		}
		if w.damaged {
			damaged[c] = true
		}
		p := &proofs[k]
		p.Index = i
		off := j * blobtree.SegmentSize
		p.Segment = append([]byte(nil), w.rep[off:min(off+blobtree.SegmentSize, uint64(len(w.rep)))]...)
		if p.ReplicaPath, err = paths(w.repTree, j, e.repUpper, c); err != nil {
			return nil, err
		}
		if p.DataPath, err = paths(w.dataTree, j, e.dataUpper, c); err != nil {
			return nil, err
		}
		if i == 0 {
			continue
		}
		pw, pc, pj := w, c, j-1
		if j == 0 {
			pc, pj = c-1, blobtree.SegmentsPerChunk-1
			if pw, err = r.chunk(pc); err != nil {
				return nil, err
			}
			if pw.damaged {
				damaged[pc] = true
			}
		}
		p.PrevLeaf = pw.repTree.Leaf(pj)
		if p.PrevPath, err = paths(pw.repTree, pj, e.repUpper, pc); err != nil {
			return nil, err
		}
	}
	if len(damaged) > 0 {
		de := &DamageError{BlobID: id}
		for c := range damaged {
			de.Chunks = append(de.Chunks, c)
		}
		slices.Sort(de.Chunks)
		return proofs, de
	}
	return proofs, nil
}

// paths joins a segment's path inside its chunk and the chunk's path among
// the chunk roots: the segment's path in the whole tree, since chunk roots
// are nodes of it.
func paths(inner *blobtree.Tree, j uint64, upper *blobtree.Tree, c uint64) ([][32]byte, error) {
	a, err := inner.Path(j)
	if err != nil {
		return nil, err
	}
	b, err := upper.Path(c)
	if err != nil {
		return nil, err
	}
	return append(a, b...), nil
}
