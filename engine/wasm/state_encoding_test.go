package wasm

import (
	"reflect"
	"strings"
	"testing"
)

func TestStateEncoding(t *testing.T) {
	s := &State{
		Steps: 3, GasUsed: 12345, Memory: make([]byte, 2*PageSize), Globals: []uint64{1, 1 << 63, 0},
		StdinOffset: 7, RandOffset: 64, Stdout: []byte("out"), Stderr: nil,
		Files: []Blob{{Name: "a.png", Data: []byte{1, 2, 3}}, {Name: "b", Data: nil}},
	}
	s.Memory[PageSize+5] = 9
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got State
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got.Hash() != s.Hash() || VerifyState(s.Hash(), &got) != nil {
		t.Fatalf("decoded state hashes differently")
	}
	if !reflect.DeepEqual(got.Globals, s.Globals) || got.Files[0].Name != "a.png" || got.Memory[PageSize+5] != 9 {
		t.Fatalf("decoded %+v", got)
	}
	// Every truncation and a trailing byte are refused; a flipped byte
	// decodes to a state that fails VerifyState.
	for n := 0; n < len(b); n += 1 + n/7 {
		if err := new(State).UnmarshalBinary(b[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: decoded", n)
		}
	}
	if err := new(State).UnmarshalBinary(append(append([]byte(nil), b...), 0)); err == nil || !strings.Contains(err.Error(), "after the state") {
		t.Fatalf("trailing byte: %v", err)
	}
	bad := append([]byte(nil), b...)
	bad[len(bad)-20] ^= 1
	var forged State
	if err := forged.UnmarshalBinary(bad); err == nil {
		if err := VerifyState(s.Hash(), &forged); err == nil || !strings.Contains(err.Error(), "not the committed") {
			t.Fatalf("forged state verified: %v", err)
		}
	}
}
