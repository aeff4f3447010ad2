package blobstore

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agoranet/agora/protocol/blob"
)

// Server serves a Store on protocol/blob's paths.
type Server struct {
	Store *Store
	// Authorize decides whether an upload of id (its declared length, -1
	// when unknown) is accepted; nil refuses every upload.
	Authorize func(r *http.Request, id blob.ID) error
	// MaxUpload caps an upload's size in bytes (0: no cap).
	MaxUpload uint64
	Log       *slog.Logger
}

// Register adds the blob routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+blob.BlobRoute, s.get)
	mux.HandleFunc("HEAD "+blob.BlobRoute, s.get)
	mux.HandleFunc("PUT "+blob.BlobRoute, s.put)
	mux.HandleFunc(blob.ManifestRoute, s.manifest)
	mux.HandleFunc(blob.ChunkRoute, s.chunk)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (s *Server) id(w http.ResponseWriter, r *http.Request) (blob.ID, bool) {
	id, err := blob.ParseID(r.PathValue("id"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return id, false
	}
	return id, true
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	f, _, err := s.Store.Open(id)
	if errors.Is(err, ErrNotFound) {
		httpError(w, http.StatusNotFound, "blob "+id.String()+" not found")
		return
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+id.String()+`"`)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, "", zeroTime, f) // Range, If-Range, HEAD
}

func (s *Server) manifest(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	m, err := s.Store.Manifest(id)
	if errors.Is(err, ErrNotFound) {
		httpError(w, http.StatusNotFound, "blob "+id.String()+" not found")
		return
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	enc, _ := m.MarshalBinary()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(enc)
}

func (s *Server) chunk(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	i, err := strconv.ParseUint(r.PathValue("index"), 10, 64)
	if err != nil {
		httpError(w, http.StatusBadRequest, "chunk index: "+err.Error())
		return
	}
	f, m, err := s.Store.Open(id)
	if errors.Is(err, ErrNotFound) {
		httpError(w, http.StatusNotFound, "blob "+id.String()+" not found")
		return
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer f.Close()
	p, err := m.Prove(i)
	if err != nil {
		httpError(w, http.StatusNotFound, err.Error())
		return
	}
	buf := make([]byte, blob.ChunkLen(m.Size, i))
	if _, err := f.ReadAt(buf, int64(i)*blob.ChunkSize); err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	js, _ := json.Marshal(p)
	w.Header().Set(blob.ProofHeader, string(js))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(buf)
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	if s.Authorize == nil {
		httpError(w, http.StatusForbidden, "this server takes no uploads")
		return
	}
	if err := s.Authorize(r, id); err != nil {
		httpError(w, http.StatusForbidden, err.Error())
		return
	}
	if s.MaxUpload > 0 && r.ContentLength > int64(s.MaxUpload) {
		httpError(w, http.StatusRequestEntityTooLarge, (&TooLargeError{Limit: s.MaxUpload}).Error())
		return
	}
	m, err := s.Store.Put(id, r.Body, s.MaxUpload)
	var tooLarge *TooLargeError
	var mismatch *MismatchError
	switch {
	case errors.As(err, &tooLarge):
		httpError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	case errors.As(err, &mismatch):
		httpError(w, http.StatusBadRequest, "upload refused: "+err.Error())
		return
	case err != nil:
		if s.Log != nil {
			s.Log.Warn("blob upload failed", "blob", id, "err", err)
		}
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"id": id.String(), "size": m.Size})
}

// Client fetches blobs from and uploads them to a blob server.
type Client struct {
	HTTP *http.Client // nil: http.DefaultClient
	Base string       // e.g. "http://127.0.0.1:8090"
	// Header, if set, adds headers (authentication) to uploads.
	Header func(r *http.Request, id blob.ID) error
	// Paths, if set, names where a server that is not a plain blob
	// server (a dataset's host) serves a blob's bytes and manifest;
	// default protocol/blob's BlobPath and ManifestPath.
	Paths func(id blob.ID) (data, manifest string)
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) do(req *http.Request, want int) (*http.Response, error) {
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var e struct{ Error string }
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, msg)
	}
	return resp, nil
}

func (c *Client) paths(id blob.ID) (data, manifest string) {
	if c.Paths != nil {
		return c.Paths(id)
	}
	return blob.BlobPath(id), blob.ManifestPath(id)
}

// Manifest fetches id's manifest and checks it names id.
func (c *Client) Manifest(ctx context.Context, id blob.ID) (*blob.Manifest, error) {
	_, mp := c.paths(id)
	req, err := http.NewRequestWithContext(ctx, "GET", c.Base+mp, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	enc, err := io.ReadAll(io.LimitReader(resp.Body, int64(blob.MaxManifestLen)))
	if err != nil {
		return nil, fmt.Errorf("blob %s manifest: %w", id, err)
	}
	var m blob.Manifest
	if err := m.UnmarshalBinary(enc); err != nil {
		return nil, err
	}
	if err := m.Check(id); err != nil {
		return nil, err
	}
	return &m, nil
}

// Fetch downloads id into the file dst, checking every chunk against the
// manifest as it arrives. An interrupted fetch leaves dst+".part" holding
// the chunks already checked, and the next Fetch of the same blob resumes
// after them (a Range request). progress, if set, is called with the bytes
// held so far and the total.
func (c *Client) Fetch(ctx context.Context, id blob.ID, dst string, progress func(done, total uint64)) error {
	m, err := c.Manifest(ctx, id)
	if err != nil {
		return err
	}
	part := dst + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("blob %s: %w", id, err)
	}
	defer f.Close()
	have, err := verifiedPrefix(f, m)
	if err != nil {
		return fmt.Errorf("blob %s: %w", id, err)
	}
	if err := f.Truncate(int64(have) * blob.ChunkSize); err != nil {
		return fmt.Errorf("blob %s: %w", id, err)
	}
	if _, err := f.Seek(int64(have)*blob.ChunkSize, io.SeekStart); err != nil {
		return err
	}
	done := min(have*blob.ChunkSize, m.Size)
	if progress != nil {
		progress(done, m.Size)
	}
	if have < uint64(len(m.Chunks)) {
		dp, _ := c.paths(id)
		req, err := http.NewRequestWithContext(ctx, "GET", c.Base+dp, nil)
		if err != nil {
			return err
		}
		want := http.StatusOK
		if have > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have*blob.ChunkSize))
			want = http.StatusPartialContent
		}
		resp, err := c.do(req, want)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		br := bufio.NewReaderSize(resp.Body, blob.ChunkSize)
		buf := make([]byte, blob.ChunkSize)
		for i := have; i < uint64(len(m.Chunks)); i++ {
			n := blob.ChunkLen(m.Size, i)
			if _, err := io.ReadFull(br, buf[:n]); err != nil {
				return fmt.Errorf("blob %s: chunk %d: %w (fetch again to resume)", id, i, err)
			}
			if sum := blob.ChunkRoot(buf[:n]); sum != m.Chunks[i] {
				return fmt.Errorf("blob %s: chunk %d does not match its manifest: the server sent other bytes", id, i)
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return fmt.Errorf("blob %s: %w", id, err)
			}
			done += uint64(n)
			if progress != nil {
				progress(done, m.Size)
			}
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("blob %s: %w", id, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("blob %s: %w", id, err)
	}
	return os.Rename(part, dst)
}

// verifiedPrefix counts the whole chunks at the start of f that match m
// (a resumed download trusts nothing it did not check).
func verifiedPrefix(f *os.File, m *blob.Manifest) (uint64, error) {
	buf := make([]byte, blob.ChunkSize)
	var i uint64
	for ; i < uint64(len(m.Chunks)); i++ {
		n := blob.ChunkLen(m.Size, i)
		k, err := f.ReadAt(buf[:n], int64(i)*blob.ChunkSize)
		if k < n {
			if err == io.EOF || err == nil {
				return i, nil
			}
			return i, err
		}
		if blob.ChunkRoot(buf[:n]) != m.Chunks[i] {
			return i, nil
		}
	}
	return i, nil
}

// FetchInto downloads id from the server into store (through a temp file
// in the store's directory, so the fetch resumes too).
func (c *Client) FetchInto(ctx context.Context, store *Store, id blob.ID, progress func(done, total uint64)) error {
	if store.Has(id) {
		return nil
	}
	tmp := store.path(id) + ".fetch"
	if err := os.MkdirAll(dirOf(tmp), 0o700); err != nil {
		return err
	}
	if err := c.Fetch(ctx, id, tmp, progress); err != nil {
		return err
	}
	defer os.Remove(tmp)
	f, err := os.Open(tmp)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = store.Put(id, f, 0)
	return err
}

// Upload sends r (size bytes, -1 if unknown) to the server under id.
func (c *Client) Upload(ctx context.Context, id blob.ID, r io.Reader, size int64) error {
	req, err := http.NewRequestWithContext(ctx, "PUT", c.Base+blob.BlobPath(id), r)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	if c.Header != nil {
		if err := c.Header(req, id); err != nil {
			return err
		}
	}
	resp, err := c.do(req, http.StatusCreated)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Chunk fetches chunk i of id with its proof and checks it against id: a
// storage challenge's answer.
func (c *Client) Chunk(ctx context.Context, id blob.ID, i uint64) ([]byte, *blob.Proof, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.Base+blob.ChunkPath(id, i), nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var p blob.Proof
	if err := json.Unmarshal([]byte(resp.Header.Get(blob.ProofHeader)), &p); err != nil {
		return nil, nil, fmt.Errorf("blob %s chunk %d: %w", id, i, err)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, blob.ChunkSize+1))
	if err != nil {
		return nil, nil, err
	}
	if err := p.Verify(id, data); err != nil {
		return nil, nil, err
	}
	if p.Index != i {
		return nil, nil, fmt.Errorf("blob %s: asked chunk %d, got a proof for %d", id, i, p.Index)
	}
	return data, &p, nil
}

var zeroTime time.Time // ServeContent then sends no Last-Modified

func dirOf(p string) string { return filepath.Dir(p) }
