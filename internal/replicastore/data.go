package replicastore

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/agoranet/agora/chain/blobtree"
)

// Data reads a replica's original bytes back (decoding it), so the provider
// can serve the blob to its client. Every chunk is checked against the blob's
// chunk root as it is decoded: a damaged replica reads as an error, never as
// wrong bytes. It is an io.ReaderAt and an io.ReadSeeker (http.ServeContent
// takes it); it is not safe for concurrent use.
type Data struct {
	r   reader
	off int64
}

// Open opens id's replica for reading its original bytes.
func (s *Store) Open(id [32]byte) (*Data, error) {
	e, err := s.entry(id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(id, ".replica"))
	if err != nil {
		return nil, fmt.Errorf("replica store: %w", err)
	}
	return &Data{r: reader{f: f, e: e, seen: map[uint64]*chunkWork{}}}, nil
}

// Size is the blob's size.
func (d *Data) Size() int64 { return int64(d.r.e.Size) }

// Close closes the replica file.
func (d *Data) Close() error { return d.r.f.Close() }

// ReadAt reads the blob's bytes at off.
func (d *Data) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("replica store: negative offset")
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= d.Size() {
			return n, io.EOF
		}
		c := uint64(pos) / blobtree.ChunkSize
		w, err := d.chunk(c)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], w.data[uint64(pos)-c*blobtree.ChunkSize:])
	}
	return n, nil
}

// chunk decodes chunk c, keeping only it and the one before (sequential
// reads need the previous chunk's last leaf).
func (d *Data) chunk(c uint64) (*chunkWork, error) {
	for k := range d.r.seen {
		if k != c && k+1 != c {
			delete(d.r.seen, k)
		}
	}
	w, err := d.r.chunk(c)
	if err != nil {
		return nil, err
	}
	if w.damaged || w.badData {
		return nil, &DamageError{BlobID: d.r.e.BlobID, Chunks: []uint64{c}}
	}
	return w, nil
}

// Read reads the blob's bytes sequentially.
func (d *Data) Read(p []byte) (int, error) {
	if d.off >= d.Size() {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), d.Size()-d.off)]
	n, err := d.ReadAt(p, d.off)
	d.off += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

// Seek sets the offset of the next Read.
func (d *Data) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += d.off
	case io.SeekEnd:
		offset += d.Size()
	default:
		return 0, errors.New("replica store: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("replica store: negative offset")
	}
	d.off = offset
	return offset, nil
}
