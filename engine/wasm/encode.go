package wasm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// stateMagic starts a State's binary encoding.
const stateMagic = "AGWS\x01"

// MarshalBinary encodes the state for transfer (a provider serving a
// pre-state to an auditor or referee):
//
//	"AGWS\x01" || steps u64 || gas used u64 || stdin offset u64 || random offset u64
//	|| globals: count u32, each u64 || memory: length u32, bytes
//	|| stdout: length u32, bytes || stderr: length u32, bytes
//	|| files: count u32, each (name length u32, name, length u32, bytes)
//
// integers big-endian. The receiver checks it with Hash against a
// checkpoint.
func (s *State) MarshalBinary() ([]byte, error) {
	n := len(stateMagic) + 32 + 4 + 8*len(s.Globals) + 12 + len(s.Memory) + len(s.Stdout) + len(s.Stderr) + 4
	for _, f := range s.Files {
		n += 8 + len(f.Name) + len(f.Data)
	}
	b := make([]byte, 0, n)
	b = append(b, stateMagic...)
	for _, v := range []uint64{s.Steps, s.GasUsed, s.StdinOffset, s.RandOffset} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.Globals)))
	for _, g := range s.Globals {
		b = binary.BigEndian.AppendUint64(b, g)
	}
	for _, part := range [][]byte{s.Memory, s.Stdout, s.Stderr} {
		if uint64(len(part)) > 1<<32-1 {
			return nil, errors.New("state part over 4 GiB")
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(part)))
		b = append(b, part...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.Files)))
	for _, f := range s.Files {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f.Name)))
		b = append(b, f.Name...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(f.Data)))
		b = append(b, f.Data...)
	}
	return b, nil
}

// UnmarshalBinary decodes MarshalBinary's encoding; every length is checked
// against the input, so a short or forged encoding is an error.
func (s *State) UnmarshalBinary(b []byte) error {
	if len(b) < len(stateMagic) || string(b[:len(stateMagic)]) != stateMagic {
		return errors.New("state: bad magic")
	}
	b = b[len(stateMagic):]
	short := errors.New("state: truncated")
	u64 := func() (uint64, error) {
		if len(b) < 8 {
			return 0, short
		}
		v := binary.BigEndian.Uint64(b)
		b = b[8:]
		return v, nil
	}
	u32 := func() (uint32, error) {
		if len(b) < 4 {
			return 0, short
		}
		v := binary.BigEndian.Uint32(b)
		b = b[4:]
		return v, nil
	}
	bytesN := func() ([]byte, error) {
		n, err := u32()
		if err != nil {
			return nil, err
		}
		if uint64(n) > uint64(len(b)) {
			return nil, short
		}
		v := append([]byte(nil), b[:n]...)
		b = b[n:]
		return v, nil
	}
	var out State
	var err error
	for _, p := range []*uint64{&out.Steps, &out.GasUsed, &out.StdinOffset, &out.RandOffset} {
		if *p, err = u64(); err != nil {
			return err
		}
	}
	ng, err := u32()
	if err != nil {
		return err
	}
	if uint64(ng)*8 > uint64(len(b)) {
		return short
	}
	out.Globals = make([]uint64, ng)
	for i := range out.Globals {
		out.Globals[i], _ = u64()
	}
	for _, p := range []*[]byte{&out.Memory, &out.Stdout, &out.Stderr} {
		if *p, err = bytesN(); err != nil {
			return err
		}
	}
	nf, err := u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < nf; i++ {
		name, err := bytesN()
		if err != nil {
			return err
		}
		data, err := bytesN()
		if err != nil {
			return err
		}
		out.Files = append(out.Files, Blob{Name: string(name), Data: data})
	}
	if len(b) != 0 {
		return fmt.Errorf("state: %d trailing bytes", len(b))
	}
	*s = out
	return nil
}

// VerifyState checks a received state against a committed state hash.
func VerifyState(hash [32]byte, s *State) error {
	if got := s.Hash(); got != hash {
		return fmt.Errorf("state hashes to %x, not the committed %x", got, hash)
	}
	return nil
}
