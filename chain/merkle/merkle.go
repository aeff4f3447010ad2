// Package merkle is the Merkle tree of the receipt commitments and of
// batched receipt signatures, as RFC 6962 hashes it: leaf = H(0x00 || id),
// node = H(0x01 || left || right), H = sha256; a level with an odd count
// promotes its last node. The chain checks inclusion proofs against
// committed roots with it; providers build roots and proofs with it. It
// imports nothing but the standard library.
package merkle

import (
	"crypto/sha256"
	"errors"
)

func leafHash(id [32]byte) [32]byte {
	return sha256.Sum256(append([]byte{0}, id[:]...))
}

func nodeHash(l, r [32]byte) [32]byte {
	b := make([]byte, 0, 65)
	b = append(b, 1)
	b = append(b, l[:]...)
	b = append(b, r[:]...)
	return sha256.Sum256(b)
}

// Root computes the root over ids in index order. An empty tree has root
// H("") — but providers never commit empty epochs.
func Root(ids [][32]byte) [32]byte {
	if len(ids) == 0 {
		return sha256.Sum256(nil)
	}
	levels := Levels(ids)
	return levels[len(levels)-1][0]
}

// Levels returns the tree's levels over ids (at least one), leaves first,
// root last.
func Levels(ids [][32]byte) [][][32]byte {
	level := make([][32]byte, len(ids))
	for i, id := range ids {
		level[i] = leafHash(id)
	}
	levels := [][][32]byte{level}
	for len(level) > 1 {
		level = nextLevel(level)
		levels = append(levels, level)
	}
	return levels
}

// nextLevel hashes a level's nodes in pairs; an odd last node is promoted.
func nextLevel(level [][32]byte) [][32]byte {
	next := make([][32]byte, 0, (len(level)+1)/2)
	for i := 0; i < len(level); i += 2 {
		if i+1 < len(level) {
			next = append(next, nodeHash(level[i], level[i+1]))
		} else {
			next = append(next, level[i])
		}
	}
	return next
}

// Path returns leaf index's sibling hashes from the leaf up, and whether
// each lies on the left, from the levels Levels returned.
func Path(levels [][][32]byte, index int) (siblings [][32]byte, left []bool) {
	pos := index
	for _, level := range levels[:len(levels)-1] {
		if sib := pos ^ 1; sib < len(level) {
			siblings = append(siblings, level[sib])
			left = append(left, sib < pos)
		}
		pos /= 2
	}
	return siblings, left
}

// Proof is an inclusion proof: sibling hashes from the leaf up, and whether
// each sibling is on the left.
type Proof struct {
	Index    uint64     `json:"index"`
	Count    uint64     `json:"count"`
	Siblings [][32]byte `json:"-"`
	Left     []bool     `json:"-"`
}

// Prove returns the inclusion proof of ids[index].
func Prove(ids [][32]byte, index int) (*Proof, error) {
	if index < 0 || index >= len(ids) {
		return nil, errors.New("index out of range")
	}
	p := &Proof{Index: uint64(index), Count: uint64(len(ids))}
	p.Siblings, p.Left = Path(Levels(ids), index)
	return p, nil
}

// Verify checks that id is included at p.Index under root.
func (p *Proof) Verify(root, id [32]byte) bool {
	h, ok := p.Root(id)
	return ok && h == root
}

// Root recomputes the root from id up the path; ok is false when the proof
// does not have the shape of a tree of p.Count leaves. The levels that have
// a sibling, and on which side, follow from index and count, so a proof
// cannot claim a shape the tree does not have.
func (p *Proof) Root(id [32]byte) (root [32]byte, ok bool) {
	if p.Index >= p.Count || len(p.Siblings) != len(p.Left) {
		return [32]byte{}, false
	}
	h := leafHash(id)
	pos, n, k := p.Index, p.Count, 0
	for n > 1 {
		sib := pos ^ 1
		if sib < n {
			if k >= len(p.Siblings) || p.Left[k] != (sib < pos) {
				return [32]byte{}, false
			}
			if p.Left[k] {
				h = nodeHash(p.Siblings[k], h)
			} else {
				h = nodeHash(h, p.Siblings[k])
			}
			k++
		}
		pos /= 2
		n = (n + 1) / 2
	}
	return h, k == len(p.Siblings)
}

// LeftFlags derives, from index and count, on which side each sibling of
// the leaf's path lies (the Left of its proof).
func LeftFlags(index, count uint64) []bool {
	var left []bool
	for pos, n := index, count; n > 1; pos, n = pos/2, (n+1)/2 {
		if sib := pos ^ 1; sib < n {
			left = append(left, sib < pos)
		}
	}
	return left
}
