package storage

import (
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/types"
)

// TestDeadline: a proof is due proof_window blocks after the epoch's seed
// height, never at or past the next epoch's seed.
func TestDeadline(t *testing.T) {
	for _, c := range []struct {
		epochLen, commit, beacon, window int64
		n                                uint64
		seed, deadline                   int64
	}{
		{20, 5, 4, 10, 0, 30, 40},
		{20, 5, 4, 10, 3, 90, 100},
		{4, 1, 0, 2, 5, 26, 28},
		{4, 1, 0, 10, 5, 26, 29}, // clamped to epoch_length − 1
	} {
		p := types.Params{EpochLength: c.epochLen, CommitWindow: c.commit, BeaconWindow: c.beacon,
			Storage: &types.StorageParams{ProofWindow: c.window}}
		if s, d := SeedHeight(p, c.n), Deadline(p, c.n); s != c.seed || d != c.deadline || d >= SeedHeight(p, c.n+1) {
			t.Errorf("%+v: seed %d deadline %d (next seed %d)", c, s, d, SeedHeight(p, c.n+1))
		}
	}
}

// TestValidateMsgs: the stateless limits, each with its message.
func TestValidateMsgs(t *testing.T) {
	id := make([]byte, 32)
	ok := func() *types.MsgCreateDeal {
		return &types.MsgCreateDeal{BlobId: id, Size: 1000, Epochs: 10, PricePerEpoch: 1, Challenges: 16}
	}
	for _, c := range []struct {
		name string
		mut  func(*types.MsgCreateDeal)
		want string
	}{
		{"ok", func(*types.MsgCreateDeal) {}, ""},
		{"1 GiB", func(m *types.MsgCreateDeal) { m.Size = 1 << 30 }, ""},
		{"over 1 GiB", func(m *types.MsgCreateDeal) { m.Size = 1<<30 + 1 }, "out of range"},
		{"empty", func(m *types.MsgCreateDeal) { m.Size = 0 }, "out of range"},
		{"k 0", func(m *types.MsgCreateDeal) { m.Challenges = 0 }, "between 1 and 16"},
		{"k 17", func(m *types.MsgCreateDeal) { m.Challenges = 17 }, "between 1 and 16"},
		{"short blob id", func(m *types.MsgCreateDeal) { m.BlobId = id[:31] }, "blob_id must be 32 bytes"},
		{"bad provider", func(m *types.MsgCreateDeal) { m.Provider = id[:19] }, "provider must be empty or 20 bytes"},
		{"no epochs", func(m *types.MsgCreateDeal) { m.Epochs = 0 }, "epochs must be between"},
	} {
		m := ok()
		c.mut(m)
		err := validateCreate(m)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	seg := make([]byte, 1024)
	h := make([]byte, 32)
	long := make([][]byte, MaxPathLen+1)
	for i := range long {
		long[i] = h
	}
	for _, c := range []struct {
		name string
		p    *types.StorageProof
		want string
	}{
		{"ok", &types.StorageProof{Segment: seg, PrevLeaf: h, ReplicaPath: [][]byte{h}}, ""},
		{"segment over 1 KiB", &types.StorageProof{Segment: make([]byte, 1025), PrevLeaf: h}, "segment must be 1 to 1024 bytes"},
		{"no segment", &types.StorageProof{PrevLeaf: h}, "segment must be 1 to 1024 bytes"},
		{"path too long", &types.StorageProof{Segment: seg, PrevLeaf: h, DataPath: long}, "at most 20 hashes"},
		{"short hash", &types.StorageProof{Segment: seg, PrevLeaf: h, PrevPath: [][]byte{h[:5]}}, "path hashes must be 32 bytes"},
	} {
		err := validateProve(&types.MsgProveStorage{DealId: 1, Proofs: []*types.StorageProof{c.p}})
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if err := validateProve(&types.MsgProveStorage{DealId: 1, Proofs: make([]*types.StorageProof, 17)}); err == nil || !strings.Contains(err.Error(), "between 1 and 16 proofs") {
		t.Errorf("17 proofs: %v", err)
	}
}
