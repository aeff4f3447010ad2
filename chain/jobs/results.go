package jobs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// A finished job's result list is what its final checkpoint's result hash
// names (the hash is the list's blob ID): the job's outputs, each by name,
// blob ID and size. The chain reads it when a message proves something
// about an output (a trained model's registration, chain/models); the
// roles write it (protocol/jobs Results.Encode, with EncodeResultList):
//
//	ResultsMagic || count u32 || (name length u32 || name || blob ID || size u64)...
//
// outputs sorted by name, integers big-endian.
const ResultsMagic = "agora-results/v1\n"

// MaxOutputs bounds a decoded result list.
const MaxOutputs = 1 << 12

// ResultEntry is one output of a result list.
type ResultEntry struct {
	Name string
	ID   [32]byte
	Size uint64
}

// EncodeResultList is a result list's canonical encoding (outputs sorted
// by name).
func EncodeResultList(outs []ResultEntry) []byte {
	outs = append([]ResultEntry(nil), outs...)
	sort.Slice(outs, func(i, j int) bool { return outs[i].Name < outs[j].Name })
	b := append([]byte(nil), ResultsMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(outs)))
	for _, o := range outs {
		b = binary.BigEndian.AppendUint32(b, uint32(len(o.Name)))
		b = append(b, o.Name...)
		b = append(b, o.ID[:]...)
		b = binary.BigEndian.AppendUint64(b, o.Size)
	}
	return b
}

// DecodeResultList parses a result list, refusing any other form
// (unsorted or repeated names, trailing bytes).
func DecodeResultList(b []byte) ([]ResultEntry, error) {
	if len(b) < len(ResultsMagic)+4 || string(b[:len(ResultsMagic)]) != ResultsMagic {
		return nil, errors.New("job results: not an agora result list")
	}
	b = b[len(ResultsMagic):]
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if n > MaxOutputs {
		return nil, fmt.Errorf("job results: %d outputs (at most %d)", n, MaxOutputs)
	}
	var out []ResultEntry
	for i := uint32(0); i < n; i++ {
		if len(b) < 4 {
			return nil, errors.New("job results: truncated")
		}
		l := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(len(b)) < uint64(l)+32+8 {
			return nil, errors.New("job results: truncated")
		}
		e := ResultEntry{Name: string(b[:l])}
		copy(e.ID[:], b[l:l+32])
		e.Size = binary.BigEndian.Uint64(b[l+32:])
		b = b[l+40:]
		if e.Name == "" || (i > 0 && out[i-1].Name >= e.Name) {
			return nil, fmt.Errorf("job results: output %d (%q) empty or out of order", i, e.Name)
		}
		out = append(out, e)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("job results: %d bytes after the list", len(b))
	}
	return out, nil
}
