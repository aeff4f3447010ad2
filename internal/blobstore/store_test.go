package blobstore

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/agoranet/agora/protocol/blob"
)

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// files lists the regular files under dir (relative paths).
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func TestPutGetListDelete(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, b := randBytes(3*blob.ChunkSize+11, 1), []byte("small")
	ida, err := s.PutBytes(a)
	if err != nil {
		t.Fatal(err)
	}
	idb, _ := s.PutBytes(b)
	if _, err := s.PutBytes(b); err != nil { // again: a no-op
		t.Fatal(err)
	}
	got, err := s.Get(ida)
	if err != nil || !bytes.Equal(got, a) {
		t.Fatalf("Get = %d bytes, %v", len(got), err)
	}
	m, err := s.Manifest(ida)
	if err != nil || m.Size != uint64(len(a)) || len(m.Chunks) != 4 {
		t.Fatalf("manifest %+v, %v", m, err)
	}
	list, _ := s.List()
	if len(list) != 2 || list[0].ID.String() > list[1].ID.String() {
		t.Fatalf("List = %+v", list)
	}
	for _, in := range list {
		if (in.ID == ida && in.Size != uint64(len(a))) || (in.ID == idb && in.Size != 5) {
			t.Fatalf("List sizes %+v", list)
		}
	}
	if err := s.Verify(ida); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ida); err != nil {
		t.Fatal(err)
	}
	if s.Has(ida) {
		t.Fatal("deleted blob still held")
	}
	if _, err := s.Get(ida); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after delete: %v", err)
	}
}

func TestPutRefusedKeepsNothing(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	data := randBytes(2*blob.ChunkSize, 3)
	other := blob.Of([]byte("something else"))
	_, err := s.Put(other, bytes.NewReader(data), 0)
	var mm *MismatchError
	if !errors.As(err, &mm) || mm.Got != blob.Of(data) || !strings.Contains(err.Error(), "hashes to") {
		t.Fatalf("mismatched put: %v", err)
	}
	_, err = s.Put(blob.Of(data), bytes.NewReader(data), uint64(len(data)-1))
	var tl *TooLargeError
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversize put: %v", err)
	}
	if f := files(t, dir); len(f) != 0 {
		t.Fatalf("refused puts left %v", f)
	}
	// Exactly at the limit is fine.
	if _, err := s.Put(blob.Of(data), bytes.NewReader(data), uint64(len(data))); err != nil {
		t.Fatal(err)
	}
}

func TestCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	id, _ := s.PutBytes([]byte("kept"))
	// A crash mid-put leaves temp files; one after the manifest's rename but
	// before the data's leaves an orphan manifest.
	orphan := blob.Of([]byte("orphan"))
	sub := filepath.Join(dir, orphan.String()[:2])
	os.MkdirAll(sub, 0o700)
	os.WriteFile(filepath.Join(sub, orphan.String()+".tmp"), []byte("half"), 0o600)
	os.WriteFile(filepath.Join(sub, orphan.String()+".manifest"), []byte("x"), 0o600)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files(t, dir) {
		if strings.HasSuffix(f, ".tmp") {
			t.Fatalf("Open left %s", f)
		}
	}
	if s.Has(orphan) || !s.Has(id) {
		t.Fatalf("Has(orphan) = %v, Has(kept) = %v", s.Has(orphan), s.Has(id))
	}
	list, _ := s.List()
	if len(list) != 1 || list[0].ID != id {
		t.Fatalf("List = %+v", list)
	}
	if _, err := s.PutBytes([]byte("orphan")); err != nil || !s.Has(orphan) {
		t.Fatalf("put over an orphan manifest: %v", err)
	}
}

func TestVerifyFindsRot(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	id, _ := s.PutBytes(randBytes(blob.ChunkSize+3, 4))
	p := filepath.Join(dir, id.String()[:2], id.String())
	b, _ := os.ReadFile(p)
	b[10] ^= 0x40
	os.WriteFile(p, b, 0o600)
	var mm *MismatchError
	if err := s.Verify(id); !errors.As(err, &mm) {
		t.Fatalf("Verify on a flipped byte: %v", err)
	}
}

// tamper serves blob paths with one byte of chunk 2 flipped (and everything
// else, the manifest included, from the real server).
type tamper struct{ real http.Handler }

func (h tamper) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/manifest") || r.Method != "GET" {
		h.real.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	h.real.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	off := 2*blob.ChunkSize + 5
	if strings.Contains(r.URL.Path, "/chunks/") {
		off = 5
	}
	if rec.Code == http.StatusPartialContent {
		start, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(r.Header.Get("Range"), "bytes="), "-"))
		off -= start
	}
	if off >= 0 && off < len(body) {
		body[off] ^= 1
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(body)
}

func newServer(t *testing.T, auth func(*http.Request, blob.ID) error, max uint64) (*Store, *httptest.Server) {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&Server{Store: s, Authorize: auth, MaxUpload: max}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return s, srv
}

func TestFetchResumesAndChecks(t *testing.T) {
	src, srv := newServer(t, nil, 0)
	data := randBytes(5*blob.ChunkSize+77, 5)
	id, _ := src.PutBytes(data)
	ctx := context.Background()
	dst := filepath.Join(t.TempDir(), "out")
	c := &Client{Base: srv.URL}

	// A part file holding two good chunks and a bad third resumes at chunk 2.
	part := append(append([]byte(nil), data[:2*blob.ChunkSize]...), bytes.Repeat([]byte{9}, 100)...)
	os.WriteFile(dst+".part", part, 0o600)
	var first, last uint64
	err := c.Fetch(ctx, id, dst, func(done, total uint64) {
		if first == 0 {
			first = done
		}
		last = done
		if total != uint64(len(data)) {
			t.Errorf("progress total %d", total)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dst)
	if !bytes.Equal(got, data) {
		t.Fatal("fetched bytes differ")
	}
	if first != 2*blob.ChunkSize || last != uint64(len(data)) {
		t.Fatalf("progress went %d → %d, want resume at %d", first, last, 2*blob.ChunkSize)
	}

	// A server that alters chunk 2: the fetch stops there, keeping the two
	// checked chunks for a resume from an honest server.
	bad := httptest.NewServer(tamper{real: srv.Config.Handler})
	defer bad.Close()
	dst2 := filepath.Join(t.TempDir(), "out")
	err = (&Client{Base: bad.URL}).Fetch(ctx, id, dst2, nil)
	if err == nil || !strings.Contains(err.Error(), "chunk 2 does not match") {
		t.Fatalf("tampered fetch: %v", err)
	}
	if st, err := os.Stat(dst2 + ".part"); err != nil || st.Size() != 2*blob.ChunkSize {
		t.Fatalf("part file after a tampered chunk: %v %v", st, err)
	}
	if _, err := os.Stat(dst2); err == nil {
		t.Fatal("tampered fetch produced the file")
	}
	if err := c.Fetch(ctx, id, dst2, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst2); !bytes.Equal(got, data) {
		t.Fatal("resumed fetch differs")
	}

	// Into another store, and one chunk with its proof.
	other, _ := Open(t.TempDir())
	if err := c.FetchInto(ctx, other, id, nil); err != nil {
		t.Fatal(err)
	}
	if err := other.Verify(id); err != nil {
		t.Fatal(err)
	}
	chunk, p, err := c.Chunk(ctx, id, 5)
	if err != nil || !bytes.Equal(chunk, data[5*blob.ChunkSize:]) || p.Index != 5 {
		t.Fatalf("chunk 5: %d bytes, %v", len(chunk), err)
	}
	if _, _, err := (&Client{Base: bad.URL}).Chunk(ctx, id, 2); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("tampered chunk: %v", err)
	}
	if err := c.Fetch(ctx, blob.Of([]byte("absent")), filepath.Join(t.TempDir(), "x"), nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("absent blob: %v", err)
	}
	resp, _ := http.Get(srv.URL + "/v1/blobs/nothex/manifest")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad id: %s", resp.Status)
	}
}

func TestUpload(t *testing.T) {
	const token = "let-me-in"
	auth := func(r *http.Request, id blob.ID) error {
		if r.Header.Get("Authorization") != "Bearer "+token {
			return errors.New("upload needs the owner's token")
		}
		return nil
	}
	store, srv := newServer(t, auth, 3*blob.ChunkSize)
	ctx := context.Background()
	data := randBytes(2*blob.ChunkSize+1, 6)
	id := blob.Of(data)
	big := randBytes(4*blob.ChunkSize, 7)
	withToken := &Client{Base: srv.URL, Header: func(r *http.Request, _ blob.ID) error {
		r.Header.Set("Authorization", "Bearer "+token)
		return nil
	}}
	for _, c := range []struct {
		name   string
		client *Client
		id     blob.ID
		body   []byte
		size   int64
		want   string
	}{
		{"no token", &Client{Base: srv.URL}, id, data, int64(len(data)), "403 Forbidden: upload needs the owner's token"},
		{"wrong id", withToken, blob.Of([]byte("x")), data, int64(len(data)), "400 Bad Request: upload refused: blob hashes to"},
		{"declared too large", withToken, blob.Of(big), big, int64(len(big)), "413"},
		{"streamed too large", withToken, blob.Of(big), big, -1, "413"},
	} {
		err := c.client.Upload(ctx, c.id, bytes.NewReader(c.body), c.size)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if list, _ := store.List(); len(list) != 0 {
		t.Fatalf("refused uploads stored %+v", list)
	}
	if err := withToken.Upload(ctx, id, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.Get(id); !bytes.Equal(got, data) {
		t.Fatal("uploaded bytes differ")
	}
	// A server without Authorize takes no uploads.
	_, ro := newServer(t, nil, 0)
	if err := withToken.Upload(ctx, id, bytes.NewReader(data), -1); err != nil {
		t.Fatal(err)
	}
	if err := (&Client{Base: ro.URL}).Upload(ctx, id, bytes.NewReader(data), -1); err == nil || !strings.Contains(err.Error(), "takes no uploads") {
		t.Fatalf("read-only server: %v", err)
	}
}
