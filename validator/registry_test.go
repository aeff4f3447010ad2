package validator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/internal/blobstore"
	"github.com/agoranet/agora/protocol/blob"
)

// blobServer is an executor's blob store holding blobs.
func blobServer(t *testing.T, blobs ...[]byte) *httptest.Server {
	t.Helper()
	st, err := blobstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blobs {
		if _, err := st.PutBytes(b); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	(&blobstore.Server{Store: st}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestFetchFirst: a model's records are tried in order until one's
// provider serves bytes matching its blob ID and the sha256; each failed
// record says why, and the records after the one that served are not
// asked.
func TestFetchFirst(t *testing.T) {
	model := bytes.Repeat([]byte("GGUF the registered model "), 3*blob.ChunkSize/26) // a few chunks
	mh := sha256.Sum256(model)
	other := bytes.Repeat([]byte("other bytes under the same sha256 "), 1000)
	mid, oid := blob.Of(model), blob.Of(other)
	honest, liar, empty := blobServer(t, model), blobServer(t, other), blobServer(t)

	asked := map[uint64]int{}
	src := func(lease uint64, id blob.ID, size uint64, ds uint64, ep string, epErr error) source {
		return source{rec: api.TrainedModelView{Hash: mh[:], LeaseID: lease, BlobID: id[:], Size: size, DatasetID: ds},
			endpoint: func(context.Context) (string, error) { asked[lease]++; return ep, epErr }}
	}
	sealed := src(1, mid, uint64(len(model)), 7, honest.URL, nil)
	gone := src(2, mid, uint64(len(model)), 0, "", errors.New("provider p registered no endpoint"))
	notHeld := src(3, mid, uint64(len(model)), 0, empty.URL, nil)
	otherBytes := src(4, oid, uint64(len(other)), 0, liar.URL, nil) // a record whose lease wrote other bytes under this sha256
	tooBig := src(5, mid, 1<<40, 0, honest.URL, nil)
	good := src(6, mid, uint64(len(model)), 0, honest.URL, nil)
	later := src(7, mid, uint64(len(model)), 0, honest.URL, nil)
	for _, c := range []struct {
		name  string
		srcs  []source
		asked []uint64 // the leases whose provider was looked up
		err   []string // "": fetched
	}{
		{"the first record serves", []source{good, later}, []uint64{6}, nil},
		{"the served record after failing ones", []source{sealed, gone, notHeld, otherBytes, tooBig, good, later}, []uint64{2, 3, 4, 6}, nil},
		{"none serves", []source{sealed, gone, notHeld, otherBytes, tooBig}, []uint64{2, 3, 4}, []string{
			"none of its 5 record(s) could be fetched",
			"lease 1: trained on dataset 7: its results are sealed",
			"lease 2: provider p registered no endpoint",
			"lease 3: fetch from " + empty.URL,
			"lease 4: the fetched file's sha256",
			"lease 5: 1099511627776 bytes, above this auditor's limit of 1048576",
		}},
		{"no record", nil, nil, []string{"no record of"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			clear(asked)
			path := filepath.Join(t.TempDir(), "model.gguf")
			err := fetchFirst(context.Background(), c.srcs, mh, 1<<20, path)
			var got []uint64
			for _, s := range c.srcs {
				if asked[s.rec.LeaseID] > 0 {
					got = append(got, s.rec.LeaseID)
				}
			}
			if !equalU64(got, c.asked) {
				t.Errorf("providers looked up for leases %v, want %v", got, c.asked)
			}
			if c.err == nil {
				b, rerr := os.ReadFile(path)
				if err != nil || rerr != nil || !bytes.Equal(b, model) {
					t.Fatalf("fetched %d bytes (%v, %v), want the model's %d", len(b), err, rerr, len(model))
				}
				return
			}
			if err == nil {
				t.Fatal("fetched")
			}
			for _, w := range c.err {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\ndoes not say %q", err, w)
				}
			}
			if _, serr := os.Stat(path); !os.IsNotExist(serr) {
				t.Errorf("%s exists after a failed fetch (%v)", path, serr)
			}
		})
	}
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
