package jobs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
)

func TestJobSeed(t *testing.T) {
	// The preimage spelled out byte by byte: domain, chain id, order u64 BE.
	pre := append([]byte("agora/job-seed/v1agora-test"), 0, 0, 0, 0, 0, 0, 1, 2)
	want := sha256.Sum256(pre)
	if got := JobSeed("agora-test", 258); got != want {
		t.Fatalf("JobSeed = %x, want %x", got, want)
	}
	if JobSeed("agora-test", 258) == JobSeed("agora-test", 259) || JobSeed("agora-test", 258) == JobSeed("agora-tesu", 258) {
		t.Fatal("seeds of different orders or chains must differ")
	}
	// A fixed vector, so the executor and the validator cannot drift apart
	// through a refactoring of either.
	if got := hex.EncodeToString(func() []byte { s := JobSeed("agora", 1); return s[:] }()); got != hex.EncodeToString(func() []byte {
		s := sha256.Sum256(append([]byte("agora/job-seed/v1agora"), 0, 0, 0, 0, 0, 0, 0, 1))
		return s[:]
	}()) {
		t.Fatalf("JobSeed(agora, 1) = %s", got)
	}
}

func TestSpecOf(t *testing.T) {
	mod, in0, in1 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	o := api.JobOrderView{ID: 7, ModuleHash: mod, InputHashes: []types.HexBytes{in0, in1}, GasLimit: 1000, MemoryPages: 16, CheckpointInterval: 10}
	s, err := SpecOf("c", o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Module[:], mod) || s.Seed != JobSeed("c", 7) || s.Gas != 1000 || s.MemoryPages != 16 || s.CheckpointEvery != 10 {
		t.Fatalf("spec %+v", s)
	}
	if len(s.Inputs) != 2 || s.Inputs[0].Name != "0" || s.Inputs[1].Name != "1" || !bytes.Equal(s.Inputs[1].ID[:], in1) {
		t.Fatalf("inputs %+v", s.Inputs)
	}
	for _, tc := range []struct {
		name string
		o    api.JobOrderView
		want string
	}{
		{"short module", api.JobOrderView{ID: 1, ModuleHash: mod[:31]}, "module blob ID is 31 bytes"},
		{"short input", api.JobOrderView{ID: 1, ModuleHash: mod, InputHashes: []types.HexBytes{in0, in1[:3]}}, "input 1's blob ID is 3 bytes"},
	} {
		if _, err := SpecOf("c", tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}
