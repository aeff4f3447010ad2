package meter

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// errEOF is the error of every read past the end of its input: the pass
// reports it with the section or function it was reading.
var errEOF = errors.New("unexpected end of input")

// reader decodes the binary format's primitives from a byte slice. Every
// read checks bounds, so malformed input gives an error, never a panic.
type reader struct {
	b   []byte
	pos int
}

func (r *reader) eof() bool { return r.pos >= len(r.b) }

func (r *reader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, errEOF
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *reader) bytes(n uint32) ([]byte, error) {
	if uint64(n) > uint64(len(r.b)-r.pos) {
		return nil, errEOF
	}
	s := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return s, nil
}

// u32 reads an unsigned LEB128 of at most 5 bytes whose value fits 32 bits.
func (r *reader) u32() (uint32, error) {
	var v uint64
	for i := 0; i < 5; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if v > 0xffffffff {
				return 0, errors.New("u32 out of range")
			}
			return uint32(v), nil
		}
	}
	return 0, errors.New("u32 LEB128 too long")
}

// sleb reads a signed LEB128 of at most bits bits (32, 33 or 64); the
// value is not needed by the pass, only its extent, but the length and the
// unused high bits are checked as the spec requires.
func (r *reader) sleb(bits int) (int64, error) {
	var v int64
	shift := 0
	max := (bits + 6) / 7
	for i := 0; i < max; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			if i == max-1 {
				// The last byte's bits above the value's width must
				// extend its sign bit.
				rem := uint(bits - 7*(max-1))
				lo := c & 0x7f
				mask := byte(0x7f) &^ (byte(1)<<rem - 1)
				if neg := lo>>(rem-1)&1 == 1; (neg && lo&mask != mask) || (!neg && lo&mask != 0) {
					return 0, fmt.Errorf("s%d LEB128 out of range", bits)
				}
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("s%d LEB128 too long", bits)
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(n)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", errors.New("name is not UTF-8")
	}
	return string(b), nil
}

// appendU32 appends v as an unsigned LEB128.
func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

// appendS64 appends v as a signed LEB128.
func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}
