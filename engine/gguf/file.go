package gguf

import (
	"fmt"
	"math"
	"os"
)

// File is a parsed GGUF file. Tensor data is read in place from the mapped
// (or given) bytes, never copied.
type File struct {
	Version    uint32
	KVs        []KV
	Tensors    []TensorInfo
	Alignment  uint64
	DataOffset uint64

	kv     map[string]Value
	byName map[string]int
	data   []byte
	unmap  func() error
}

// Open memory-maps and parses a GGUF file.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size < 24 {
		return nil, fmt.Errorf("gguf: %s: %w (%d bytes)", path, ErrTruncated, size)
	}
	if size > math.MaxInt {
		return nil, fmt.Errorf("gguf: %s is too large to map", path)
	}
	b, unmap, err := mapFile(f, int(size))
	if err != nil {
		return nil, fmt.Errorf("gguf: map %s: %w", path, err)
	}
	g, err := Parse(b)
	if err != nil {
		unmap()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	g.unmap = unmap
	return g, nil
}

// Close unmaps the file. Tensor data must not be used afterwards.
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	err := f.unmap()
	f.unmap = nil
	return err
}

// Parse reads a GGUF file held in b.
func Parse(b []byte) (*File, error) {
	d := &decoder{b: b}
	magic, err := d.u32()
	if err != nil {
		return nil, err
	}
	if magic != Magic {
		return nil, fmt.Errorf("gguf: bad magic %#08x (not a GGUF file)", magic)
	}
	f := &File{kv: map[string]Value{}, byName: map[string]int{}, data: b}
	if f.Version, err = d.u32(); err != nil {
		return nil, err
	}
	if f.Version != 2 && f.Version != 3 {
		return nil, fmt.Errorf("gguf: unsupported version %d (want 2 or 3)", f.Version)
	}
	nTensors, err := d.u64()
	if err != nil {
		return nil, err
	}
	nKV, err := d.u64()
	if err != nil {
		return nil, err
	}
	if nTensors > MaxTensors || nKV > MaxKVs {
		return nil, fmt.Errorf("gguf: header declares %d tensors and %d metadata entries (limits %d, %d)", nTensors, nKV, MaxTensors, MaxKVs)
	}
	for i := uint64(0); i < nKV; i++ {
		key, err := d.str(MaxKeyLen)
		if err != nil {
			return nil, fmt.Errorf("metadata %d key: %w", i, err)
		}
		t, err := d.u32()
		if err != nil {
			return nil, err
		}
		v, err := d.value(ValueType(t), 0)
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		if _, dup := f.kv[key]; dup {
			return nil, fmt.Errorf("gguf: duplicate metadata key %q", key)
		}
		f.kv[key] = v
		f.KVs = append(f.KVs, KV{Key: key, Value: v})
	}
	f.Alignment = DefaultAlignment
	if v, ok := f.kv["general.alignment"]; ok {
		a, err := v.Uint()
		if err != nil || a == 0 || a > 1<<16 || a&(a-1) != 0 {
			return nil, fmt.Errorf("gguf: general.alignment must be a power of two up to 65536")
		}
		f.Alignment = a
	}
	for i := uint64(0); i < nTensors; i++ {
		var ti TensorInfo
		if ti.Name, err = d.str(MaxKeyLen); err != nil {
			return nil, fmt.Errorf("tensor %d name: %w", i, err)
		}
		nd, err := d.u32()
		if err != nil {
			return nil, err
		}
		if nd == 0 || nd > MaxDims {
			return nil, fmt.Errorf("gguf: tensor %q has %d dimensions (1..%d)", ti.Name, nd, MaxDims)
		}
		ti.Dims = make([]uint64, nd)
		for j := range ti.Dims {
			if ti.Dims[j], err = d.u64(); err != nil {
				return nil, err
			}
		}
		tt, err := d.u32()
		if err != nil {
			return nil, err
		}
		ti.Type = TensorType(tt)
		if ti.Offset, err = d.u64(); err != nil {
			return nil, err
		}
		if ti.Size, err = tensorBytes(ti); err != nil {
			return nil, err
		}
		if _, dup := f.byName[ti.Name]; dup {
			return nil, fmt.Errorf("gguf: duplicate tensor %q", ti.Name)
		}
		f.byName[ti.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, ti)
	}
	f.DataOffset = alignUp(uint64(d.off), f.Alignment)
	for _, ti := range f.Tensors {
		if ti.Offset%f.Alignment != 0 {
			return nil, fmt.Errorf("gguf: tensor %q offset %d is not aligned to %d", ti.Name, ti.Offset, f.Alignment)
		}
		start := f.DataOffset + ti.Offset
		if start < f.DataOffset || start+ti.Size < start || start+ti.Size > uint64(len(b)) {
			return nil, fmt.Errorf("%w: tensor %q (%d bytes at %d) runs past the end of the file (%d bytes)", ErrTruncated, ti.Name, ti.Size, start, len(b))
		}
	}
	return f, nil
}

func alignUp(x, a uint64) uint64 { return (x + a - 1) / a * a }

func tensorBytes(ti TensorInfo) (uint64, error) {
	elems, bytes, ok := ti.Type.BlockSize()
	if !ok {
		return 0, fmt.Errorf("gguf: tensor %q has unknown type %d", ti.Name, uint32(ti.Type))
	}
	n := uint64(1)
	for _, dim := range ti.Dims {
		if dim == 0 || dim > maxTensorBytes {
			return 0, fmt.Errorf("gguf: tensor %q has dimension %d", ti.Name, dim)
		}
		if n > maxTensorBytes/dim {
			return 0, fmt.Errorf("gguf: tensor %q is too large", ti.Name)
		}
		n *= dim
	}
	if ti.Dims[0]%uint64(elems) != 0 {
		return 0, fmt.Errorf("gguf: tensor %q row length %d is not a multiple of the %s block size %d", ti.Name, ti.Dims[0], ti.Type, elems)
	}
	return n / uint64(elems) * uint64(bytes), nil
}

// Tensor returns a tensor's info and its bytes (in place).
func (f *File) Tensor(name string) (TensorInfo, []byte, error) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, nil, fmt.Errorf("gguf: no tensor %q", name)
	}
	ti := f.Tensors[i]
	start := f.DataOffset + ti.Offset
	return ti, f.data[start : start+ti.Size : start+ti.Size], nil
}

// HasTensor reports whether the file has a tensor.
func (f *File) HasTensor(name string) bool {
	_, ok := f.byName[name]
	return ok
}

// Get returns a metadata value.
func (f *File) Get(key string) (Value, bool) {
	v, ok := f.kv[key]
	return v, ok
}

// String returns a string metadata value.
func (f *File) String(key string) (string, error) {
	v, ok := f.kv[key]
	if !ok {
		return "", fmt.Errorf("gguf: missing metadata %q", key)
	}
	s, ok := v.V.(string)
	if !ok {
		return "", fmt.Errorf("gguf: metadata %q is %s, want string", key, v.Type)
	}
	return s, nil
}

// Uint returns an integer metadata value of any integer type, as uint64.
func (f *File) Uint(key string) (uint64, error) {
	v, ok := f.kv[key]
	if !ok {
		return 0, fmt.Errorf("gguf: missing metadata %q", key)
	}
	n, err := v.Uint()
	if err != nil {
		return 0, fmt.Errorf("gguf: metadata %q: %w", key, err)
	}
	return n, nil
}

// Float returns a float metadata value.
func (f *File) Float(key string) (float64, error) {
	v, ok := f.kv[key]
	if !ok {
		return 0, fmt.Errorf("gguf: missing metadata %q", key)
	}
	switch x := v.V.(type) {
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	}
	return 0, fmt.Errorf("gguf: metadata %q is %s, want a float", key, v.Type)
}

// Uint converts an integer value.
func (v Value) Uint() (uint64, error) {
	switch x := v.V.(type) {
	case uint8:
		return uint64(x), nil
	case uint16:
		return uint64(x), nil
	case uint32:
		return uint64(x), nil
	case uint64:
		return x, nil
	case int8, int16, int32, int64:
		var i int64
		switch y := x.(type) {
		case int8:
			i = int64(y)
		case int16:
			i = int64(y)
		case int32:
			i = int64(y)
		case int64:
			i = y
		}
		if i < 0 {
			return 0, fmt.Errorf("negative value %d", i)
		}
		return uint64(i), nil
	}
	return 0, fmt.Errorf("%s is not an integer", v.Type)
}
