package storer_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/internal/replicastore"
	"github.com/agoranet/agora/protocol/blob"
	"github.com/agoranet/agora/storer"
	"github.com/agoranet/agora/testutil/testkey"
)

// TestGarbageCollection: a replica stays while a deal of this storer
// holding its blob is active; a replica of a deal done, or taken over by
// another provider, goes once older than the grace period (a fresh one
// may be waiting for its accept tx).
func TestGarbageCollection(t *testing.T) {
	key, pub := testkey.Pair("storer-gc")
	me := types.AddressFromPubKey(pub)
	_, otherPub := testkey.Pair("someone else")
	other := types.AddressFromPubKey(otherPub)
	dir := t.TempDir()
	rs, err := replicastore.Open(storer.ReplicaDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	var ids []blob.ID
	for i, s := range []string{"held", "done", "taken over", "not yet accepted"} {
		data := bytes.Repeat([]byte(s), 1000+i)
		id := blob.Of(data)
		if _, err := rs.Seal(id, uint64(len(data)), bytes.NewReader(data), me, nil); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	s, err := storer.New(storer.Config{Key: key, DataDir: dir, ChainRPC: "tcp://127.0.0.1:1"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	deals := []api.StorageDealView{
		{ID: 1, BlobID: ids[0][:], Status: "active", Provider: me},
		{ID: 2, BlobID: ids[1][:], Status: "done", Provider: me},
		{ID: 3, BlobID: ids[2][:], Status: "active", Provider: other},
	}
	if n, err := s.CollectGarbage(deals, time.Now()); err != nil || n != 0 {
		t.Fatalf("fresh replicas: removed %d (%v), want none", n, err)
	}
	n, err := s.CollectGarbage(deals, time.Now().Add(time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("an hour later: removed %d (%v), want 3", n, err)
	}
	left, err := rs.List()
	if err != nil || len(left) != 1 || left[0].BlobID != ids[0] {
		t.Fatalf("replicas left: %+v (%v), want only the active deal's", left, err)
	}
}
