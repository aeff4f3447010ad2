package wasm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// stateMagic starts a serialized State.
const stateMagic = "agora-wasm-state/v1\n"

// maxStateFiles bounds the /out files a decoded state may list.
const maxStateFiles = 1 << 12

// MarshalBinary serializes the state: what a provider serves for audits
// and disputes, and what it keeps on disk at checkpoints. The reader checks
// the decoded state's Hash against the hash it trusts (a committed
// checkpoint, an agreed dispute state); the encoding itself proves nothing.
//
//	magic || steps u64 || gas u64 || memory length u64 || memory
//	|| globals count u32 || globals u64... || stdin offset u64 || random offset u64
//	|| stdout length u32 || stdout || stderr length u32 || stderr
//	|| files count u32 || (name length u32 || name || data length u32 || data)...
//
// All integers big-endian.
func (s *State) MarshalBinary() ([]byte, error) {
	n := len(stateMagic) + 8*6 + len(s.Memory) + 8*len(s.Globals) + len(s.Stdout) + len(s.Stderr) + 16
	for _, f := range s.Files {
		n += 8 + len(f.Name) + len(f.Data)
	}
	b := make([]byte, 0, n)
	b = append(b, stateMagic...)
	b = binary.BigEndian.AppendUint64(b, s.Steps)
	b = binary.BigEndian.AppendUint64(b, s.GasUsed)
	b = binary.BigEndian.AppendUint64(b, uint64(len(s.Memory)))
	b = append(b, s.Memory...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.Globals)))
	for _, g := range s.Globals {
		b = binary.BigEndian.AppendUint64(b, g)
	}
	b = binary.BigEndian.AppendUint64(b, s.StdinOffset)
	b = binary.BigEndian.AppendUint64(b, s.RandOffset)
	for _, out := range [][]byte{s.Stdout, s.Stderr} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(out)))
		b = append(b, out...)
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

// stateReader reads MarshalBinary's fields, remembering the first error.
type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("wasm state: "+format, a...)
	}
}

func (r *stateReader) bytes(n uint64, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("%s: %d bytes, %d left", what, n, len(r.b))
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *stateReader) u64(what string) uint64 {
	b := r.bytes(8, what)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func (r *stateReader) u32(what string) uint32 {
	b := r.bytes(4, what)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// UnmarshalBinary decodes MarshalBinary's form, refusing anything a job
// could not have produced (memory not a whole number of pages or over the
// cap, outputs over MaxOutputBytes, files out of order). The slices alias
// b's memory only for reading; the state copies nothing it can avoid.
func (s *State) UnmarshalBinary(b []byte) error {
	if len(b) < len(stateMagic) || string(b[:len(stateMagic)]) != stateMagic {
		return errors.New("wasm state: not a serialized job state")
	}
	r := &stateReader{b: b[len(stateMagic):]}
	var st State
	st.Steps = r.u64("steps")
	st.GasUsed = r.u64("gas used")
	memLen := r.u64("memory length")
	if r.err == nil && (memLen%PageSize != 0 || memLen > uint64(MaxMemoryPages)*PageSize) {
		r.fail("memory of %d bytes is not a whole number of pages within %d", memLen, MaxMemoryPages)
	}
	st.Memory = r.bytes(memLen, "memory")
	ng := r.u32("globals count")
	if r.err == nil && uint64(ng)*8 > uint64(len(r.b)) {
		r.fail("%d globals, %d bytes left", ng, len(r.b))
	}
	if r.err == nil {
		st.Globals = make([]uint64, ng)
		for i := range st.Globals {
			st.Globals[i] = r.u64("global")
		}
	}
	st.StdinOffset = r.u64("stdin offset")
	st.RandOffset = r.u64("random offset")
	total := 0
	st.Stdout = r.bytes(uint64(r.u32("stdout length")), "stdout")
	st.Stderr = r.bytes(uint64(r.u32("stderr length")), "stderr")
	total += len(st.Stdout) + len(st.Stderr)
	nf := r.u32("files count")
	if r.err == nil && nf > maxStateFiles {
		r.fail("%d output files (at most %d)", nf, maxStateFiles)
	}
	for i := uint32(0); i < nf && r.err == nil; i++ {
		name := string(r.bytes(uint64(r.u32("file name length")), "file name"))
		data := r.bytes(uint64(r.u32("file length")), "file")
		if r.err == nil && name == "" {
			r.fail("file %d has no name", i)
		}
		if r.err == nil && i > 0 && st.Files[i-1].Name >= name {
			r.fail("files out of order at %q", name)
		}
		total += len(data)
		st.Files = append(st.Files, Blob{Name: name, Data: data})
	}
	if r.err == nil && total > MaxOutputBytes {
		r.fail("outputs of %d bytes over the %d-byte cap", total, MaxOutputBytes)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the state", len(r.b))
	}
	if r.err != nil {
		return r.err
	}
	*s = st
	return nil
}

// VerifyState checks a received state against a committed state hash.
func VerifyState(hash [32]byte, s *State) error {
	if got := s.Hash(); got != hash {
		return fmt.Errorf("state hashes to %x, not the committed %x", got, hash)
	}
	return nil
}
