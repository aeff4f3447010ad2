// Package replicastore keeps a storage provider's sealed replicas on disk
// (chain/blobtree's provider-specific encoding of a blob) and answers
// storage challenges from them.
//
// A replica is two files in the store's directory: <blob id>.replica, the
// encoded bytes (as long as the blob), and <blob id>.meta: the blob's size,
// the provider it was sealed for, the replica root, the roots of every
// 64 KiB chunk of the blob and of the replica, and the replica leaf of each
// chunk's last segment (96 bytes per chunk, 1.5 MiB for a 1 GiB blob).
// Proofs recompute the inside of a challenged chunk from its 64 KiB (hash
// the replica's 64 segments, decode them, hash the data's) and take the
// chunk-level paths from trees over the stored chunk roots, held in memory
// once loaded: a 1 GiB replica keeps no per-segment hashes on disk. The
// recorded last leaves let a chunk decode even when the one before it is
// damaged, so losing a chunk fails only the challenges that land in it (and
// the one on the next chunk's first segment, whose proof carries the lost
// chunk's last leaf).
//
// A seal writes both files through temp files, fsyncs them, and renames the
// replica first and the meta file last, so a replica is present exactly when
// its meta file is; Open removes temp files and replicas without a meta file
// that a crash left behind.
package replicastore

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
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

	"github.com/agoranet/agora/chain/blobtree"
	"github.com/agoranet/agora/protocol/blob"
)

// ErrNotFound is returned for a blob the store holds no replica of.
var ErrNotFound = errors.New("replica not found")

// MismatchError is returned when a sealed blob's bytes do not hash to the ID
// they were sealed under.
type MismatchError struct{ Want, Got [32]byte }

func (e *MismatchError) Error() string {
	return fmt.Sprintf("blob hashes to %x, not %x", e.Got[:], e.Want[:])
}

// DamageError reports replica chunks whose bytes no longer match the roots
// recorded when they were sealed (lost, zeroed or corrupted on disk).
type DamageError struct {
	BlobID [32]byte
	Chunks []uint64 // the damaged chunks among those read, ascending
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("replica of %x: chunks %v are damaged (they no longer match the roots recorded at sealing)", e.BlobID[:], e.Chunks)
}

// Info describes a stored replica.
type Info struct {
	BlobID      [32]byte
	Size        uint64
	Provider    []byte    // the address the replica is sealed for
	ReplicaRoot [32]byte  // what the provider posts when it accepts a deal
	Sealed      time.Time // when the replica was sealed (List only; garbage collectors keep fresh ones)
}

// entry is a replica's meta file, loaded, with trees over its chunk roots.
type entry struct {
	Info
	dataRoots, repRoots [][32]byte
	// lastLeaves[c] is the replica leaf of chunk c's last segment: what
	// chunk c+1's first segment decodes with, kept so a damaged chunk does
	// not spoil the decoding of the next.
	lastLeaves          [][32]byte
	dataUpper, repUpper *blobtree.Tree
}

// Store is a directory of replicas. It is safe for concurrent use.
type Store struct {
	dir     string
	mu      sync.Mutex
	loaded  map[[32]byte]*entry
	sealing map[[32]byte]bool
}

// Open opens (creating if needed) the store in dir and removes what an
// interrupted seal left behind.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("replica store: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("replica store: %w", err)
	}
	for _, d := range ents {
		name := d.Name()
		orphan := false
		if base, ok := strings.CutSuffix(name, ".replica"); ok {
			if _, err := os.Stat(filepath.Join(dir, base+".meta")); errors.Is(err, fs.ErrNotExist) {
				orphan = true
			}
		}
		if strings.HasSuffix(name, ".tmp") || orphan {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("replica store: %w", err)
			}
		}
	}
	return &Store{dir: dir, loaded: map[[32]byte]*entry{}, sealing: map[[32]byte]bool{}}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(id [32]byte, ext string) string {
	return filepath.Join(s.dir, hex.EncodeToString(id[:])+ext)
}

// progressEvery is how many bytes pass between two progress calls.
const progressEvery = 1 << 20

// Seal encodes the blob id (size bytes read from r) into a replica for
// provider (a 20-byte address) and keeps it with its chunk roots. It checks
// the bytes against id and keeps nothing when they do not match or r yields
// more or fewer than size bytes. progress, if set, is called with the bytes
// sealed so far and size, every MiB and at the end. Sealing a blob the store
// already holds for the same provider reads nothing and returns its info.
func (s *Store) Seal(id [32]byte, size uint64, r io.Reader, provider []byte, progress func(done, total uint64)) (Info, error) {
	if len(provider) != blobtree.ProviderLen {
		return Info{}, fmt.Errorf("replica store: provider address is %d bytes, want %d", len(provider), blobtree.ProviderLen)
	}
	s.mu.Lock()
	if s.sealing[id] {
		s.mu.Unlock()
		return Info{}, fmt.Errorf("replica store: %x is being sealed already", id[:])
	}
	e, err := s.entryLocked(id)
	if err == nil {
		s.mu.Unlock()
		if string(e.Provider) != string(provider) {
			return Info{}, fmt.Errorf("replica store: holds a replica of %x for provider %x, not %x", id[:], e.Provider, provider)
		}
		return e.Info, nil
	}
	if !errors.Is(err, ErrNotFound) {
		s.mu.Unlock()
		return Info{}, err
	}
	s.sealing[id] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sealing, id)
		s.mu.Unlock()
	}()

	e, err = s.seal(id, size, r, provider, progress)
	if err != nil {
		return Info{}, err
	}
	s.mu.Lock()
	s.loaded[id] = e
	s.mu.Unlock()
	return e.Info, nil
}

func (s *Store) seal(id [32]byte, size uint64, r io.Reader, provider []byte, progress func(done, total uint64)) (*entry, error) {
	repPath, metaPath := s.path(id, ".replica"), s.path(id, ".meta")
	tmp := repPath + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("replica store: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
			os.Remove(tmp)
		}
	}()
	n := blobtree.ChunkCount(size)
	e := &entry{
		Info:       Info{BlobID: id, Size: size, Provider: append([]byte(nil), provider...)},
		dataRoots:  make([][32]byte, n),
		repRoots:   make([][32]byte, n),
		lastLeaves: make([][32]byte, n),
	}
	enc := blobtree.NewEncoder(id, provider)
	br := bufio.NewReaderSize(r, 1<<20)
	bw := bufio.NewWriterSize(f, 1<<20)
	buf := make([]byte, blobtree.ChunkSize)
	leaves := make([][32]byte, blobtree.SegmentsPerChunk)
	var done, reported uint64
	for c := uint64(0); c < n; c++ {
		chunk := buf[:blobtree.ChunkLen(size, c)]
		if _, err := io.ReadFull(br, chunk); err != nil {
			return nil, fmt.Errorf("replica store: sealing %x: the blob is shorter than %d bytes: %w", id[:], size, err)
		}
		e.dataRoots[c] = blobtree.ChunkRoot(chunk)
		m := 0
		for off := 0; off < len(chunk); off += blobtree.SegmentSize {
			seg := chunk[off:min(off+blobtree.SegmentSize, len(chunk))]
			leaves[m] = enc.Next(seg, seg) // in place: the data root is taken
			m++
		}
		e.repRoots[c] = blobtree.Root(leaves[:m])
		e.lastLeaves[c] = leaves[m-1]
		if _, err := bw.Write(chunk); err != nil {
			return nil, fmt.Errorf("replica store: %w", err)
		}
		done += uint64(len(chunk))
		if progress != nil && (done-reported >= progressEvery || done == size) {
			progress(done, size)
			reported = done
		}
	}
	if k, _ := br.Read(buf[:1]); k > 0 {
		return nil, fmt.Errorf("replica store: sealing %x: the blob is longer than %d bytes", id[:], size)
	}
	if got := blobtree.BlobID(size, blobtree.RootOfChunks(e.dataRoots)); got != id {
		return nil, &MismatchError{Want: id, Got: got}
	}
	e.ReplicaRoot = blobtree.RootOfChunks(e.repRoots)
	if size == 0 && progress != nil {
		progress(0, 0)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("replica store: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("replica store: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("replica store: %w", err)
	}
	keep = true
	if err := os.Rename(tmp, repPath); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("replica store: %w", err)
	}
	if err := writeMeta(metaPath, e); err != nil {
		os.Remove(repPath)
		return nil, err
	}
	if err := syncDir(s.dir); err != nil {
		return nil, err
	}
	e.dataUpper, e.repUpper = blobtree.NewTree(e.dataRoots), blobtree.NewTree(e.repRoots)
	return e, nil
}

// metaMagic starts a meta file: magic, blob id, provider length (1 byte)
// and address, size (u64 big-endian), replica root, then the blob's chunk
// roots, the replica's chunk roots and the replica's last leaf of each
// chunk.
const metaMagic = "agora-replica-meta/v1\n"

func writeMeta(path string, e *entry) error {
	b := make([]byte, 0, len(metaMagic)+32+1+len(e.Provider)+8+32+96*len(e.dataRoots))
	b = append(b, metaMagic...)
	b = append(b, e.BlobID[:]...)
	b = append(b, byte(len(e.Provider)))
	b = append(b, e.Provider...)
	b = binary.BigEndian.AppendUint64(b, e.Size)
	b = append(b, e.ReplicaRoot[:]...)
	for _, r := range e.dataRoots {
		b = append(b, r[:]...)
	}
	for _, r := range e.repRoots {
		b = append(b, r[:]...)
	}
	for _, r := range e.lastLeaves {
		b = append(b, r[:]...)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("replica store: %w", err)
	}
	_, err = f.Write(b)
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
		return fmt.Errorf("replica store: meta: %w", err)
	}
	return nil
}

// readMeta loads and checks a meta file: its chunk roots must give its blob
// id and its replica root.
func readMeta(path string) (*entry, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("replica store: %w", err)
	}
	bad := func(why string) error { return fmt.Errorf("replica store: %s: %s", filepath.Base(path), why) }
	if len(b) < len(metaMagic)+33 || string(b[:len(metaMagic)]) != metaMagic {
		return nil, bad("not a replica meta file")
	}
	b = b[len(metaMagic):]
	e := &entry{}
	copy(e.BlobID[:], b)
	pl := int(b[32])
	b = b[33:]
	if len(b) < pl+8+32 {
		return nil, bad("truncated")
	}
	e.Provider = append([]byte(nil), b[:pl]...)
	e.Size = binary.BigEndian.Uint64(b[pl:])
	copy(e.ReplicaRoot[:], b[pl+8:])
	b = b[pl+40:]
	n := blobtree.ChunkCount(e.Size)
	if uint64(len(b)) != 96*n {
		return nil, bad(fmt.Sprintf("%d bytes of chunk hashes for %d chunks", len(b), n))
	}
	e.dataRoots, e.repRoots, e.lastLeaves = make([][32]byte, n), make([][32]byte, n), make([][32]byte, n)
	for i := range e.dataRoots {
		copy(e.dataRoots[i][:], b[32*i:])
		copy(e.repRoots[i][:], b[32*(uint64(i)+n):])
		copy(e.lastLeaves[i][:], b[32*(uint64(i)+2*n):])
	}
	if blobtree.BlobID(e.Size, blobtree.RootOfChunks(e.dataRoots)) != e.BlobID {
		return nil, bad("its chunk roots do not give its blob id")
	}
	if blobtree.RootOfChunks(e.repRoots) != e.ReplicaRoot {
		return nil, bad("its replica chunk roots do not give its replica root")
	}
	e.dataUpper, e.repUpper = blobtree.NewTree(e.dataRoots), blobtree.NewTree(e.repRoots)
	return e, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("replica store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("replica store: sync %s: %w", dir, err)
	}
	return nil
}

// entryLocked returns id's loaded meta, loading it on first use. s.mu held.
func (s *Store) entryLocked(id [32]byte) (*entry, error) {
	if e, ok := s.loaded[id]; ok {
		return e, nil
	}
	e, err := readMeta(s.path(id, ".meta"))
	if err != nil {
		return nil, err
	}
	if e.BlobID != id {
		return nil, fmt.Errorf("replica store: %x.meta names blob %x", id[:], e.BlobID[:])
	}
	s.loaded[id] = e
	return e, nil
}

func (s *Store) entry(id [32]byte) (*entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entryLocked(id)
}

// Info returns what the store knows of id's replica.
func (s *Store) Info(id [32]byte) (Info, error) {
	e, err := s.entry(id)
	if err != nil {
		return Info{}, err
	}
	return e.Info, nil
}

// Manifest is the blob's manifest (its chunk roots), for serving the blob.
func (s *Store) Manifest(id [32]byte) (*blob.Manifest, error) {
	e, err := s.entry(id)
	if err != nil {
		return nil, err
	}
	return &blob.Manifest{Size: e.Size, Chunks: append([][32]byte(nil), e.dataRoots...)}, nil
}

// Remove deletes id's replica (no error if absent): meta first, so a crash
// leaves at most an orphan replica file, which Open removes.
func (s *Store) Remove(id [32]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sealing[id] {
		return fmt.Errorf("replica store: %x is being sealed", id[:])
	}
	delete(s.loaded, id)
	for _, ext := range []string{".meta", ".replica"} {
		if err := os.Remove(s.path(id, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("replica store: %w", err)
		}
	}
	return nil
}

// List returns the stored replicas in blob id order.
func (s *Store) List() ([]Info, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("replica store: %w", err)
	}
	var out []Info
	for _, d := range ents {
		base, ok := strings.CutSuffix(d.Name(), ".meta")
		if !ok {
			continue
		}
		raw, err := hex.DecodeString(base)
		if err != nil || len(raw) != 32 {
			continue
		}
		info, err := s.Info([32]byte(raw))
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		if fi, err := d.Info(); err == nil {
			info.Sealed = fi.ModTime()
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i].BlobID[:]) < string(out[j].BlobID[:]) })
	return out, nil
}
