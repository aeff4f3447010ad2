package wasm

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
)

// A state served by a provider and decoded by a validator hashes the same
// and replays the same step.
func TestStateCodecRoundTrip(t *testing.T) {
	ctx := context.Background()
	job := Job{Args: []string{"3", "40"}, Inputs: []Blob{{Name: "corpus.txt", Data: []byte(text)}}, Gas: 1 << 40, CheckpointEvery: 1}
	m := compile(t, false, example(t, "ngram"))
	full, err := m.Run(ctx, job)
	if err != nil || full.Failure != nil || full.Steps < 3 {
		t.Fatalf("run: %v %v", err, full)
	}
	in, err := m.Start(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close(ctx)
	for i := 0; i < 2; i++ {
		if _, err := in.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st := in.Snapshot()
	enc, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := back.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	if back.Hash() != st.Hash() || back.Hash() != full.Checkpoints[2].State {
		t.Fatalf("decoded state hashes to %x, want %x", back.Hash(), st.Hash())
	}
	sr, err := m.ReplayStep(ctx, job, &back)
	if err != nil || sr.Failure != nil || sr.Post != full.Checkpoints[3].State {
		t.Fatalf("replay from the decoded state: %v %+v, want %x", err, sr, full.Checkpoints[3].State)
	}
	again, _ := back.MarshalBinary()
	if string(again) != string(enc) {
		t.Fatal("re-encoding differs")
	}
}

func TestStateCodecRefuses(t *testing.T) {
	good := &State{Steps: 2, GasUsed: 9, Memory: make([]byte, PageSize), Globals: []uint64{1, 2},
		Stdout: []byte("out"), Files: []Blob{{Name: "a", Data: []byte("1")}, {Name: "b", Data: []byte("2")}}}
	enc, _ := good.MarshalBinary()
	memLenAt := len(stateMagic) + 16
	withMemLen := func(n uint64) []byte {
		b := append([]byte(nil), enc...)
		binary.BigEndian.PutUint64(b[memLenAt:], n)
		return b
	}
	unordered := *good
	unordered.Files = []Blob{{Name: "b"}, {Name: "a"}}
	badOrder, _ := unordered.MarshalBinary()
	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "not a serialized job state"},
		{"truncated", enc[:len(enc)-1], "bytes, 0 left"},
		{"trailing", append(append([]byte(nil), enc...), 0), "bytes after the state"},
		{"odd memory", withMemLen(PageSize - 1), "not a whole number of pages"},
		{"huge memory", withMemLen(1 << 62), "not a whole number of pages"},
		{"files out of order", badOrder, "out of order"},
	} {
		var s State
		err := s.UnmarshalBinary(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func FuzzStateCodec(f *testing.F) {
	s := &State{Steps: 1, Memory: make([]byte, PageSize), Globals: []uint64{7}, Stdout: []byte("x"), Files: []Blob{{Name: "f", Data: []byte("d")}}}
	enc, _ := s.MarshalBinary()
	f.Add(enc)
	f.Fuzz(func(t *testing.T, b []byte) {
		var s State
		if s.UnmarshalBinary(b) != nil {
			return
		}
		again, _ := s.MarshalBinary()
		if string(again) != string(b) {
			t.Fatal("a decoded state does not re-encode to its bytes")
		}
		_ = s.Hash()
	})
}
