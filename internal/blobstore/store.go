// Package blobstore keeps content-addressed blobs (protocol/blob) on disk,
// serves them over HTTP and fetches them from other servers, checking every
// chunk against the blob's ID before it is kept.
//
// On disk a blob is two files under DIR/<first two hex digits>/: <id> (the
// bytes) and <id>.manifest (its chunk roots). A put writes both through
// temp files, fsyncs them and renames the manifest first and the data
// last, so a blob is present exactly when its data file is, and a crash
// leaves at most temp files, removed at the next Open.
package blobstore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agoranet/agora/protocol/blob"
)

// ErrNotFound is returned for a blob the store does not hold.
var ErrNotFound = errors.New("blob not found")

// TooLargeError is returned when an upload exceeds the size allowed.
type TooLargeError struct{ Limit uint64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("blob is larger than the %d-byte limit", e.Limit)
}

// MismatchError is returned when bytes do not hash to the ID they were
// offered under.
type MismatchError struct{ Want, Got blob.ID }

func (e *MismatchError) Error() string {
	return fmt.Sprintf("blob hashes to %s, not %s", e.Got, e.Want)
}

// Store is a directory of blobs. It is safe for concurrent use.
type Store struct {
	dir string
	mu  sync.Mutex // serialises puts, so two puts of one blob do not race on its temp files
}

// Open opens (creating if needed) the store in dir and removes temp files
// a crash left behind.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".tmp") {
			return os.Remove(p)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("blob store %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(id blob.ID) string {
	h := id.String()
	return filepath.Join(s.dir, h[:2], h)
}

// Has reports whether the store holds id.
func (s *Store) Has(id blob.ID) bool {
	_, err := os.Stat(s.path(id))
	return err == nil
}

// Put stores the bytes r yields under id, refusing them (and keeping
// nothing) when they exceed limit bytes (0: no limit) or do not hash to id.
// Putting a blob the store holds reads nothing and succeeds.
func (s *Store) Put(id blob.ID, r io.Reader, limit uint64) (*blob.Manifest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, err := s.Manifest(id); err == nil {
		return m, nil
	}
	p := s.path(id)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	defer os.Remove(tmp) // a no-op once renamed
	m, err := copyHashed(f, r, limit)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if got := m.ID(); got != id {
		return nil, &MismatchError{Want: id, Got: got}
	}
	if err := writeManifest(p+".manifest", m); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, p); err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	return m, syncDir(filepath.Dir(p))
}

// PutBytes stores data and returns its ID.
func (s *Store) PutBytes(data []byte) (blob.ID, error) {
	id := blob.Of(data)
	_, err := s.Put(id, strings.NewReader(string(data)), 0)
	return id, err
}

// copyHashed copies r to w, building the manifest, up to limit bytes.
func copyHashed(w io.Writer, r io.Reader, limit uint64) (*blob.Manifest, error) {
	var b blob.Builder
	bw := bufio.NewWriterSize(w, 1<<20)
	src := r
	if limit > 0 {
		src = io.LimitReader(r, int64(limit)+1)
	}
	n, err := io.Copy(io.MultiWriter(bw, &b), src)
	if err != nil {
		return nil, fmt.Errorf("blob store: reading the blob: %w", err)
	}
	if limit > 0 && uint64(n) > limit {
		return nil, &TooLargeError{Limit: limit}
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	return b.Manifest(), nil
}

func writeManifest(path string, m *blob.Manifest) error {
	enc, _ := m.MarshalBinary()
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("blob store: %w", err)
	}
	_, err = f.Write(enc)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("blob store: manifest: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("blob store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("blob store: sync %s: %w", dir, err)
	}
	return nil
}

// Manifest returns id's manifest, checked against id.
func (s *Store) Manifest(id blob.ID) (*blob.Manifest, error) {
	if !s.Has(id) {
		return nil, ErrNotFound
	}
	enc, err := os.ReadFile(s.path(id) + ".manifest")
	if err != nil {
		return nil, fmt.Errorf("blob store: %s: %w", id, err)
	}
	var m blob.Manifest
	if err := m.UnmarshalBinary(enc); err != nil {
		return nil, fmt.Errorf("blob store: %s: %w", id, err)
	}
	if err := m.Check(id); err != nil {
		return nil, fmt.Errorf("blob store: %s: %w", id, err)
	}
	return &m, nil
}

// Open returns id's bytes and manifest.
func (s *Store) Open(id blob.ID) (*os.File, *blob.Manifest, error) {
	m, err := s.Manifest(id)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(s.path(id))
	if err != nil {
		return nil, nil, fmt.Errorf("blob store: %w", err)
	}
	if st, err := f.Stat(); err != nil || uint64(st.Size()) != m.Size {
		f.Close()
		return nil, nil, fmt.Errorf("blob store: %s: data file is not %d bytes", id, m.Size)
	}
	return f, m, nil
}

// Get returns id's bytes in memory.
func (s *Store) Get(id blob.ID) ([]byte, error) {
	f, _, err := s.Open(id)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Verify re-reads id's bytes and checks them against its ID (bit rot,
// tampering on disk).
func (s *Store) Verify(id blob.ID) error {
	f, _, err := s.Open(id)
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := blob.Compute(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return fmt.Errorf("blob store: %s: %w", id, err)
	}
	if got := m.ID(); got != id {
		return &MismatchError{Want: id, Got: got}
	}
	return nil
}

// Delete removes id (no error if absent): data first, so a crash leaves
// at most an orphan manifest, which Has ignores.
func (s *Store) Delete(id blob.ID) error {
	p := s.path(id)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob store: %w", err)
	}
	if err := os.Remove(p + ".manifest"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob store: %w", err)
	}
	return nil
}

// Info describes a stored blob.
type Info struct {
	ID      blob.ID
	Size    uint64
	ModTime time.Time // when its data file was written (garbage collectors keep fresh blobs)
}

// List returns the stored blobs in ID order.
func (s *Store) List() ([]Info, error) {
	var out []Info
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		id, perr := blob.ParseID(d.Name())
		if perr != nil {
			return nil // manifests, temp files
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, Info{ID: id, Size: uint64(st.Size()), ModTime: st.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID.String() < out[j].ID.String() })
	return out, nil
}
