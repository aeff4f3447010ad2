// Package codec holds the deterministic encoding helpers shared by the chain
// modules: protobuf with deterministic marshalling, and big-endian key parts.
package codec

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/proto"
)

// Marshal encodes m deterministically. It panics only on programmer error
// (a message that cannot be encoded), never on state content.
func Marshal(m proto.Message) []byte {
	bz, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(fmt.Errorf("codec: marshal %T: %w", m, err))
	}
	return bz
}

// MustUnmarshal decodes state written by Marshal. Stored state that does not
// decode means the store is corrupt, which is unrecoverable.
func MustUnmarshal(bz []byte, m proto.Message) {
	if err := proto.Unmarshal(bz, m); err != nil {
		panic(fmt.Errorf("codec: corrupt state for %T: %w", m, err))
	}
}

// Key concatenates key parts.
func Key(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// U64 encodes v big-endian, so keys sort numerically.
func U64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// I64 encodes a non-negative height big-endian.
func I64(v int64) []byte { return U64(uint64(v)) }

// ReadU64 decodes a big-endian uint64 value (zero when absent).
func ReadU64(bz []byte) uint64 {
	if len(bz) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(bz)
}
