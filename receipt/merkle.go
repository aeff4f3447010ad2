package receipt

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// The Merkle tree follows RFC 6962: leaf = H(0x00 || id), node =
// H(0x01 || left || right); a level with an odd count promotes its last node.
// An empty tree has root H("") — but providers never commit empty epochs.

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

// Root computes the root over receipt ids in index order.
func Root(ids [][32]byte) [32]byte {
	if len(ids) == 0 {
		return sha256.Sum256(nil)
	}
	level := make([][32]byte, len(ids))
	for i, id := range ids {
		level[i] = leafHash(id)
	}
	for len(level) > 1 {
		level = nextLevel(level)
	}
	return level[0]
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
	p.Siblings, p.Left = path(treeLevels(ids), index)
	return p, nil
}

// treeLevels returns the tree's levels, leaves first, root last.
func treeLevels(ids [][32]byte) [][][32]byte {
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

// path returns leaf index's sibling hashes from the leaf up, and whether
// each lies on the left.
func path(levels [][][32]byte, index int) (siblings [][32]byte, left []bool) {
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

// Verify checks that id is included at p.Index under root.
func (p *Proof) Verify(root, id [32]byte) bool {
	h, ok := p.root(id)
	return ok && h == root
}

// root recomputes the root from id up the path. The levels that have a
// sibling, and on which side, follow from index and count, so a proof
// cannot claim a shape the tree does not have.
func (p *Proof) root(id [32]byte) ([32]byte, bool) {
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

// leftFlags derives, from index and count, on which side each sibling of
// the path lies.
func (p *Proof) leftFlags() []bool {
	var left []bool
	for pos, n := p.Index, p.Count; n > 1; pos, n = pos/2, (n+1)/2 {
		if sib := pos ^ 1; sib < n {
			left = append(left, sib < pos)
		}
	}
	return left
}

// ProofJSON is an inclusion proof in JSON, with the receipt it proves.
type ProofJSON struct {
	Receipt   string   `json:"receipt"` // Encode() form
	ID        string   `json:"id"`
	Epoch     uint64   `json:"epoch"`
	Index     uint64   `json:"index"`
	Count     uint64   `json:"count"`
	Siblings  []string `json:"siblings"`
	Left      []bool   `json:"left"`
	Root      string   `json:"root"`
	Committed bool     `json:"committed"`
}

// ProofToJSON renders a proof.
func ProofToJSON(s *Signed, p *Proof, root [32]byte, committed bool) ProofJSON {
	out := ProofJSON{Receipt: s.Encode(), ID: s.IDHex(), Epoch: s.Receipt.Epoch, Index: p.Index, Count: p.Count,
		Left: p.Left, Root: hex.EncodeToString(root[:]), Committed: committed, Siblings: []string{}}
	for _, sib := range p.Siblings {
		out.Siblings = append(out.Siblings, hex.EncodeToString(sib[:]))
	}
	if out.Left == nil {
		out.Left = []bool{}
	}
	return out
}

// VerifyAgainst checks the JSON proof's receipt is included under root (the
// root committed on chain, not the one in the JSON).
func (j ProofJSON) VerifyAgainst(root []byte) (*Signed, error) {
	s, err := Decode(j.Receipt)
	if err != nil {
		return nil, err
	}
	if len(root) != 32 {
		return nil, errors.New("root must be 32 bytes")
	}
	p := &Proof{Index: j.Index, Count: j.Count, Left: j.Left}
	for _, h := range j.Siblings {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			return nil, errors.New("bad sibling hash")
		}
		var x [32]byte
		copy(x[:], b)
		p.Siblings = append(p.Siblings, x)
	}
	var r [32]byte
	copy(r[:], root)
	if s.Receipt.Index != j.Index || !p.Verify(r, s.ID()) {
		return nil, errors.New("inclusion proof does not verify against the root")
	}
	return s, nil
}
