package receipt

import (
	"encoding/hex"
	"errors"

	"github.com/agoranet/agora/chain/merkle"
)

// ProofJSON is an inclusion proof (package chain/merkle) in JSON, with the receipt it proves.
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
func ProofToJSON(s *Signed, p *merkle.Proof, root [32]byte, committed bool) ProofJSON {
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
	p := &merkle.Proof{Index: j.Index, Count: j.Count, Left: j.Left}
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
