package gguf

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sample(t testing.TB) []byte {
	var w Writer
	w.Set("general.architecture", String("llama"))
	w.Set("general.alignment", Uint32(64))
	w.Set("u8", Value{Type: TypeUint8, V: uint8(7)})
	w.Set("i8", Value{Type: TypeInt8, V: int8(-7)})
	w.Set("u16", Value{Type: TypeUint16, V: uint16(700)})
	w.Set("i16", Value{Type: TypeInt16, V: int16(-700)})
	w.Set("u32", Uint32(70000))
	w.Set("i32", Int32(-70000))
	w.Set("f32", Float32(1.5))
	w.Set("b", Bool(true))
	w.Set("u64", Uint64(1<<40))
	w.Set("i64", Value{Type: TypeInt64, V: int64(-1 << 40)})
	w.Set("f64", Value{Type: TypeFloat64, V: math.Pi})
	w.Set("strs", Strings([]string{"a", "", "ccc"}))
	w.Set("f32s", Float32s([]float32{1, 2, 3}))
	w.Set("i32s", Int32s([]int32{-1, 0, 1}))
	w.Set("nested", Value{Type: TypeArray, ElemType: TypeUint16, V: []Value{{Type: TypeUint16, V: uint16(1)}, {Type: TypeUint16, V: uint16(2)}}})
	f32 := make([]byte, 4*8*2)
	for i := range f32 {
		f32[i] = byte(i)
	}
	if err := w.AddTensor("a", F32, []uint64{8, 2}, f32); err != nil {
		t.Fatal(err)
	}
	q8 := make([]byte, 34*2)
	q8[0] = 0x3c
	if err := w.AddTensor("b", Q8_0, []uint64{64}, q8); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := w.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	b := sample(t)
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 3 || f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Fatalf("header %d %d %d", f.Version, f.Alignment, f.DataOffset)
	}
	if s, _ := f.String("general.architecture"); s != "llama" {
		t.Fatal(s)
	}
	for key, want := range map[string]uint64{"u8": 7, "u16": 700, "u32": 70000, "u64": 1 << 40} {
		if got, err := f.Uint(key); err != nil || got != want {
			t.Fatalf("%s = %d %v", key, got, err)
		}
	}
	if _, err := f.Uint("i32"); err == nil {
		t.Fatal("negative accepted as uint")
	}
	v, _ := f.Get("i64")
	if v.V.(int64) != -1<<40 {
		t.Fatal("i64")
	}
	if x, _ := f.Float("f64"); x != math.Pi {
		t.Fatal("f64")
	}
	v, _ = f.Get("strs")
	if strings.Join(v.V.([]string), ",") != "a,,ccc" {
		t.Fatal("strs")
	}
	v, _ = f.Get("nested")
	if len(v.V.([]Value)) != 2 || v.V.([]Value)[1].V.(uint16) != 2 {
		t.Fatal("nested")
	}
	ti, data, err := f.Tensor("a")
	if err != nil || ti.Elements() != 16 || len(data) != 64 || data[5] != 5 {
		t.Fatalf("tensor a: %+v %d %v", ti, len(data), err)
	}
	ti, data, _ = f.Tensor("b")
	if ti.Type != Q8_0 || len(data) != 68 || data[0] != 0x3c || (f.DataOffset+ti.Offset)%64 != 0 {
		t.Fatalf("tensor b: %+v", ti)
	}
	// via a mapped file
	path := filepath.Join(t.TempDir(), "m.gguf")
	os.WriteFile(path, b, 0o644)
	g, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, d2, _ := g.Tensor("a")
	if d2[5] != 5 {
		t.Fatal("mapped data")
	}
	g.Close()
}

// TestTruncatedAndCorrupt: every prefix of a valid file and many single-byte
// corruptions are refused with an error, never a panic.
func TestTruncatedAndCorrupt(t *testing.T) {
	b := sample(t)
	for n := 0; n < len(b); n++ {
		if _, err := Parse(b[:n]); err == nil {
			t.Fatalf("prefix of %d/%d bytes parsed", n, len(b))
		}
	}
	for i := 0; i < len(b); i++ {
		c := append([]byte(nil), b...)
		c[i] ^= 0xff
		Parse(c) // must not panic
	}
	bad := append([]byte(nil), b...)
	copy(bad, "GGUX")
	if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), "bad magic") {
		t.Fatalf("bad magic: %v", err)
	}
	if _, err := Parse(b[:30]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated header: %v", err)
	}
	// a huge declared array must fail before allocating
	var w Writer
	w.Set("x", Strings([]string{"a"}))
	var buf bytes.Buffer
	w.Write(&buf)
	huge := buf.Bytes()
	i := bytes.Index(huge, []byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'a'})
	if i < 0 {
		t.Fatal("layout")
	}
	copy(huge[i:], []byte{0, 0, 0, 1, 0, 0, 0, 0})
	if _, err := Parse(huge); err == nil {
		t.Fatal("huge array accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample(f))
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	// a tensor of each block type, whole and truncated
	for _, typ := range []TensorType{Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, F16, BF16} {
		var w Writer
		w.Set("general.architecture", String("llama"))
		elems, bytes, _ := typ.BlockSize()
		if err := w.AddTensor("t", typ, []uint64{uint64(256 / elems * elems), 2}, make([]byte, 2*256/elems*bytes)); err != nil {
			f.Fatal(err)
		}
		var buf bytesBuffer
		if err := w.Write(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.b)
		f.Add(buf.b[:len(buf.b)-bytes/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := Parse(b)
		if err != nil {
			return
		}
		for _, ti := range g.Tensors {
			if _, data, err := g.Tensor(ti.Name); err != nil || uint64(len(data)) != ti.Size {
				t.Fatalf("tensor %q inconsistent", ti.Name)
			}
		}
	})
}

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
