package gguf

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/agoranet/agora/internal/atomicfile"
)

// Writer builds a GGUF v3 file.
type Writer struct {
	KVs     []KV
	tensors []wtensor
}

type wtensor struct {
	info TensorInfo
	data []byte
}

// Scalar and array constructors for metadata values.
func String(s string) Value      { return Value{Type: TypeString, V: s} }
func Uint32(v uint32) Value      { return Value{Type: TypeUint32, V: v} }
func Int32(v int32) Value        { return Value{Type: TypeInt32, V: v} }
func Uint64(v uint64) Value      { return Value{Type: TypeUint64, V: v} }
func Float32(v float32) Value    { return Value{Type: TypeFloat32, V: v} }
func Bool(v bool) Value          { return Value{Type: TypeBool, V: v} }
func Strings(v []string) Value   { return Value{Type: TypeArray, ElemType: TypeString, V: v} }
func Float32s(v []float32) Value { return Value{Type: TypeArray, ElemType: TypeFloat32, V: v} }
func Int32s(v []int32) Value     { return Value{Type: TypeArray, ElemType: TypeInt32, V: v} }

// Set adds a metadata entry.
func (w *Writer) Set(key string, v Value) { w.KVs = append(w.KVs, KV{Key: key, Value: v}) }

// AddTensor adds a tensor; data must be exactly its encoded size.
func (w *Writer) AddTensor(name string, typ TensorType, dims []uint64, data []byte) error {
	ti := TensorInfo{Name: name, Dims: dims, Type: typ}
	size, err := tensorBytes(ti)
	if err != nil {
		return err
	}
	if uint64(len(data)) != size {
		return fmt.Errorf("gguf: tensor %q: %d bytes of data, want %d", name, len(data), size)
	}
	ti.Size = size
	w.tensors = append(w.tensors, wtensor{info: ti, data: data})
	return nil
}

// WriteFile writes the file to path (via a synced temp file and a rename).
func (w *Writer) WriteFile(path string) error {
	return atomicfile.Write(path, 0o644, w.Write)
}

type encoder struct {
	w   io.Writer
	n   uint64
	err error
}

func (e *encoder) bytes(b []byte) {
	if e.err != nil {
		return
	}
	var n int
	n, e.err = e.w.Write(b)
	e.n += uint64(n)
}

func (e *encoder) u32(v uint32) { e.bytes(binary.LittleEndian.AppendUint32(nil, v)) }
func (e *encoder) u64(v uint64) { e.bytes(binary.LittleEndian.AppendUint64(nil, v)) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.bytes([]byte(s)) }

func (e *encoder) value(v Value) {
	switch x := v.V.(type) {
	case uint8:
		e.bytes([]byte{x})
	case int8:
		e.bytes([]byte{byte(x)})
	case uint16:
		e.bytes(binary.LittleEndian.AppendUint16(nil, x))
	case int16:
		e.bytes(binary.LittleEndian.AppendUint16(nil, uint16(x)))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		if x {
			e.bytes([]byte{1})
		} else {
			e.bytes([]byte{0})
		}
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case []string:
		e.u32(uint32(TypeString))
		e.u64(uint64(len(x)))
		for _, s := range x {
			e.str(s)
		}
	case []float32:
		e.u32(uint32(TypeFloat32))
		e.u64(uint64(len(x)))
		for _, f := range x {
			e.u32(math.Float32bits(f))
		}
	case []int32:
		e.u32(uint32(TypeInt32))
		e.u64(uint64(len(x)))
		for _, i := range x {
			e.u32(uint32(i))
		}
	case []uint32:
		e.u32(uint32(TypeUint32))
		e.u64(uint64(len(x)))
		for _, i := range x {
			e.u32(i)
		}
	case []Value:
		e.u32(uint32(v.ElemType))
		e.u64(uint64(len(x)))
		for _, el := range x {
			e.value(el)
		}
	default:
		e.err = fmt.Errorf("gguf: cannot encode %T", v.V)
	}
}

// Write encodes the file.
func (w *Writer) Write(out io.Writer) error {
	e := &encoder{w: out}
	e.u32(Magic)
	e.u32(3)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.KVs)))
	align := uint64(DefaultAlignment)
	for _, kv := range w.KVs {
		if kv.Key == "general.alignment" {
			if a, err := kv.Value.Uint(); err == nil && a > 0 {
				align = a
			}
		}
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type))
		e.value(kv.Value)
	}
	var off uint64
	for i := range w.tensors {
		t := &w.tensors[i]
		t.info.Offset = off
		off = alignUp(off+t.info.Size, align)
		e.str(t.info.Name)
		e.u32(uint32(len(t.info.Dims)))
		for _, d := range t.info.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.info.Type))
		e.u64(t.info.Offset)
	}
	pad := func(to uint64) {
		if to > e.n {
			e.bytes(make([]byte, to-e.n))
		}
	}
	data0 := alignUp(e.n, align)
	pad(data0)
	for _, t := range w.tensors {
		pad(data0 + t.info.Offset)
		e.bytes(t.data)
	}
	return e.err
}
