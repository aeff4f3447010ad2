package wasm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
)

// host is the part of a job's state outside the module: how far it has read
// stdin and the random stream, and what it has written. Everything else
// the virtual WASI offers is constant or derived from the gas used.
type host struct {
	stdin  *offsetReader
	rand   *randStream
	stdout capped
	stderr capped
	in     *memFS  // /in, read-only
	out    *memFS  // /out, the result files
	data   *treeFS // /data, read-only (a compute-to-data job's dataset), or nil
}

func newHost(job Job) *host {
	h := &host{
		stdin: &offsetReader{data: job.Stdin}, rand: &randStream{seed: job.Seed},
		in: newMemFS(job.Inputs, true), out: newMemFS(nil, false),
	}
	h.stdout.total, h.stderr.total = h.outputBytes, h.outputBytes
	h.out.cap = h.outputBytes
	if job.Data != nil {
		h.data = newTreeFS(job.Data)
	}
	return h
}

// outputBytes is all the job has written: stdout, stderr and /out.
func (h *host) outputBytes() int { return h.stdout.Len() + h.stderr.Len() + h.out.size() }

// offsetReader is stdin: a byte string and how much of it was read.
type offsetReader struct {
	data []byte
	off  uint64
}

func (r *offsetReader) Read(p []byte) (int, error) {
	if r.off >= uint64(len(r.data)) {
		return 0, io.EOF
	}
	n := copy(p, r.data[r.off:])
	r.off += uint64(n)
	return n, nil
}

// randStream is the job's random source: block i of the stream is
// sha256(seed || i), read from an offset that is part of the state, so a
// restored job draws the same bytes the original did.
type randStream struct {
	seed [32]byte
	off  uint64
}

func (r *randStream) Read(p []byte) (int, error) {
	var in [40]byte
	copy(in[:], r.seed[:])
	for n := 0; n < len(p); {
		binary.BigEndian.PutUint64(in[32:], r.off/32)
		block := sha256.Sum256(in[:])
		c := copy(p[n:], block[r.off%32:])
		n += c
		r.off += uint64(c)
	}
	return len(p), nil
}

var errOutputFull = errors.New("job output over its cap")

// capped is an output stream; all outputs share MaxOutputBytes.
type capped struct {
	bytes.Buffer
	total func() int
}

func (c *capped) Write(p []byte) (int, error) {
	if c.total()+len(p) > MaxOutputBytes {
		return 0, errOutputFull
	}
	return c.Buffer.Write(p)
}
