// Package gguf reads and writes GGUF model files (versions 2 and 3).
//
// Files are untrusted input: every count, length, dimension and offset is
// bounded and checked before use, so a truncated or hostile file produces an
// error, never a panic or an allocation larger than the file itself.
package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Magic is "GGUF" read as a little-endian uint32.
const Magic = 0x46554747

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// ValueType is a metadata value's type.
type ValueType uint32

const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

func (t ValueType) String() string {
	names := [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}
	if int(t) < len(names) {
		return names[t]
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// size of a scalar value type in bytes (0 for string/array).
func (t ValueType) size() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// TensorType is a ggml tensor data type.
type TensorType uint32

const (
	F32  TensorType = 0
	F16  TensorType = 1
	Q4_0 TensorType = 2
	Q4_1 TensorType = 3
	Q5_0 TensorType = 6
	Q5_1 TensorType = 7
	Q8_0 TensorType = 8
	Q8_1 TensorType = 9
	Q2_K TensorType = 10
	Q3_K TensorType = 11
	Q4_K TensorType = 12
	Q5_K TensorType = 13
	Q6_K TensorType = 14
	Q8_K TensorType = 15
	BF16 TensorType = 30
)

// typeInfo: elements per block and bytes per block, for the types whose
// layout we know (enough to size any tensor we may meet).
var typeInfo = map[TensorType]struct {
	name       string
	blockElems int
	blockBytes int
}{
	F32: {"F32", 1, 4}, F16: {"F16", 1, 2}, BF16: {"BF16", 1, 2},
	Q4_0: {"Q4_0", 32, 18}, Q4_1: {"Q4_1", 32, 20}, Q5_0: {"Q5_0", 32, 22}, Q5_1: {"Q5_1", 32, 24},
	Q8_0: {"Q8_0", 32, 34}, Q8_1: {"Q8_1", 32, 36},
	Q2_K: {"Q2_K", 256, 84}, Q3_K: {"Q3_K", 256, 110}, Q4_K: {"Q4_K", 256, 144},
	Q5_K: {"Q5_K", 256, 176}, Q6_K: {"Q6_K", 256, 210}, Q8_K: {"Q8_K", 256, 292},
}

func (t TensorType) String() string {
	if i, ok := typeInfo[t]; ok {
		return i.name
	}
	return fmt.Sprintf("ggml_type(%d)", uint32(t))
}

// BlockSize returns elements per block and bytes per block of t.
func (t TensorType) BlockSize() (elems, bytes int, ok bool) {
	i, ok := typeInfo[t]
	return i.blockElems, i.blockBytes, ok
}

// Value is a metadata value: one of uint8 … float64, bool, string, or []Value
// for arrays (arrays of scalars are kept as typed Go slices for speed:
// []string, []float32, []int32, []uint32, ...).
type Value struct {
	Type ValueType
	// ElemType is the element type of an array.
	ElemType ValueType
	V        any
}

// KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}

// TensorInfo describes a tensor in the file.
type TensorInfo struct {
	Name   string
	Dims   []uint64 // Dims[0] varies fastest (the row length)
	Type   TensorType
	Offset uint64 // relative to the data section
	Size   uint64 // bytes
}

// Elements is the tensor's element count.
func (t TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Limits bound what a file may declare.
const (
	MaxTensors     = 1 << 16
	MaxKVs         = 1 << 16
	MaxDims        = 4
	MaxStringLen   = 1 << 24 // 16 MiB (chat templates are long; tokens are short)
	MaxArrayLen    = 1 << 24
	MaxKeyLen      = 1 << 16
	maxTensorBytes = 1 << 40
)

// ErrTruncated means the file ended in the middle of a structure.
var ErrTruncated = errors.New("gguf: file truncated")

// decoder reads little-endian values from a byte slice, with bounds checks.
type decoder struct {
	b   []byte
	off int
}

func (d *decoder) need(n int) error {
	if n < 0 || d.off+n > len(d.b) || d.off+n < d.off {
		return fmt.Errorf("%w at offset %d (need %d more bytes, %d left)", ErrTruncated, d.off, n, len(d.b)-d.off)
	}
	return nil
}

func (d *decoder) u8() (uint8, error) {
	if err := d.need(1); err != nil {
		return 0, err
	}
	v := d.b[d.off]
	d.off++
	return v, nil
}

func (d *decoder) u16() (uint16, error) {
	if err := d.need(2); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint16(d.b[d.off:])
	d.off += 2
	return v, nil
}

func (d *decoder) u32() (uint32, error) {
	if err := d.need(4); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v, nil
}

func (d *decoder) u64() (uint64, error) {
	if err := d.need(8); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v, nil
}

func (d *decoder) str(max int) (string, error) {
	n, err := d.u64()
	if err != nil {
		return "", err
	}
	if n > uint64(max) {
		return "", fmt.Errorf("gguf: string of %d bytes at offset %d exceeds the limit of %d", n, d.off-8, max)
	}
	if err := d.need(int(n)); err != nil {
		return "", err
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s, nil
}

func (d *decoder) scalar(t ValueType) (any, error) {
	switch t {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		v, err := d.u8()
		return int8(v), err
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		v, err := d.u16()
		return int16(v), err
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		v, err := d.u32()
		return int32(v), err
	case TypeFloat32:
		v, err := d.u32()
		return math.Float32frombits(v), err
	case TypeBool:
		v, err := d.u8()
		if err == nil && v > 1 {
			return nil, fmt.Errorf("gguf: bool value %d at offset %d", v, d.off-1)
		}
		return v == 1, err
	case TypeString:
		return d.str(MaxStringLen)
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		v, err := d.u64()
		return int64(v), err
	case TypeFloat64:
		v, err := d.u64()
		return math.Float64frombits(v), err
	}
	return nil, fmt.Errorf("gguf: unknown value type %d at offset %d", uint32(t), d.off)
}

func (d *decoder) value(t ValueType, depth int) (Value, error) {
	if t != TypeArray {
		v, err := d.scalar(t)
		return Value{Type: t, V: v}, err
	}
	if depth > 2 {
		return Value{}, fmt.Errorf("gguf: arrays nested too deep at offset %d", d.off)
	}
	et32, err := d.u32()
	if err != nil {
		return Value{}, err
	}
	et := ValueType(et32)
	n, err := d.u64()
	if err != nil {
		return Value{}, err
	}
	if n > MaxArrayLen {
		return Value{}, fmt.Errorf("gguf: array of %d elements exceeds the limit of %d", n, MaxArrayLen)
	}
	// Each element takes at least one byte (strings at least 8), so an array
	// longer than the rest of the file is truncated: check before allocating.
	minElem := et.size()
	if et == TypeString {
		minElem = 8
	} else if et == TypeArray {
		minElem = 12
	} else if minElem == 0 {
		return Value{}, fmt.Errorf("gguf: unknown array element type %d at offset %d", et32, d.off)
	}
	if n*uint64(minElem) > uint64(len(d.b)-d.off) {
		return Value{}, fmt.Errorf("%w: array of %d %s at offset %d runs past the end", ErrTruncated, n, et, d.off)
	}
	out := Value{Type: TypeArray, ElemType: et}
	switch et {
	case TypeString:
		a := make([]string, n)
		for i := range a {
			if a[i], err = d.str(MaxStringLen); err != nil {
				return Value{}, err
			}
		}
		out.V = a
	case TypeFloat32:
		a := make([]float32, n)
		for i := range a {
			v, _ := d.u32()
			a[i] = math.Float32frombits(v)
		}
		out.V = a
	case TypeInt32:
		a := make([]int32, n)
		for i := range a {
			v, _ := d.u32()
			a[i] = int32(v)
		}
		out.V = a
	case TypeUint32:
		a := make([]uint32, n)
		for i := range a {
			a[i], _ = d.u32()
		}
		out.V = a
	default:
		a := make([]Value, n)
		for i := range a {
			if a[i], err = d.value(et, depth+1); err != nil {
				return Value{}, err
			}
		}
		out.V = a
	}
	return out, nil
}
