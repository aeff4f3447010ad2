package train

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// The canonical state encoding (a checkpoint file is exactly it, so a
// checkpoint's sha256 is the state hash):
//
//	"AGORA-TRAIN/1\n"
//	uint32 LE length, then the header as JSON (fields in the order below)
//	W, M, V: ParamCount float32 LE each, in layout order
//
// The header holds the shape, the hyperparameters, the data root, the step,
// the data cursor (epoch, position) and the order's RNG state.
const magic = "AGORA-TRAIN/1\n"

type header struct {
	Config   Config `json:"config"`
	Hyper    Hyper  `json:"hyper"`
	DataRoot string `json:"data_root"`
	Step     int    `json:"step"`
	Epoch    int    `json:"epoch"`
	Pos      int    `json:"pos"`
	RNG      uint64 `json:"rng"`
}

func (tr *Trainer) header() header {
	h := header{Config: tr.Cfg, Hyper: tr.Hyp, Step: tr.Step}
	if d := tr.Data; d != nil {
		h.DataRoot, h.Epoch, h.Pos, h.RNG = d.root, d.Epoch, d.Pos, d.RNG
	}
	return h
}

// encode writes the canonical encoding.
func (tr *Trainer) encode(w io.Writer) error {
	hj, err := json.Marshal(tr.header())
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.WriteString(magic)
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(hj)))
	bw.Write(n[:])
	bw.Write(hj)
	buf := make([]byte, 1<<16)
	for _, v := range [][]float32{tr.W, tr.M, tr.V} {
		putF32s(bw, v, buf)
	}
	return bw.Flush()
}

// Hash is the sha256 of the canonical state encoding, hex.
func (tr *Trainer) Hash() string {
	h := sha256.New()
	tr.encode(h) // a hash's writer does not fail
	return hex.EncodeToString(h.Sum(nil))
}

// Save writes a checkpoint crash-safely (a temporary file in the same
// directory, fsynced, renamed over path, the directory fsynced): path holds
// either the old checkpoint or the new one, whole. It returns the state hash.
func (tr *Trainer) Save(path string) (string, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	defer os.Remove(f.Name()) // gone after the rename; cleans up a failure
	h := sha256.New()
	if err := tr.encode(io.MultiWriter(f, h)); err != nil {
		f.Close()
		return "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Load resumes a run from a checkpoint on the given data (whose root must
// be the one the checkpoint names).
func Load(path string, data *Data, threads int) (*Trainer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if !bytes.HasPrefix(raw, []byte(magic)) || len(raw) < len(magic)+4 {
		return nil, fmt.Errorf("checkpoint %s: not an Agora training checkpoint", path)
	}
	raw = raw[len(magic):]
	hl := int(binary.LittleEndian.Uint32(raw))
	if len(raw) < 4+hl {
		return nil, fmt.Errorf("checkpoint %s: truncated header", path)
	}
	var h header
	if err := json.Unmarshal(raw[4:4+hl], &h); err != nil {
		return nil, fmt.Errorf("checkpoint %s: header: %w", path, err)
	}
	if data != nil && data.root != h.DataRoot {
		return nil, fmt.Errorf("checkpoint %s was trained on data %s, not this data (%s)", path, h.DataRoot, data.root)
	}
	tr, err := New(h.Config, h.Hyper, data, threads)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	body := raw[4+hl:]
	n := len(tr.W)
	if len(body) != 3*4*n {
		return nil, fmt.Errorf("checkpoint %s: %d bytes of state, want %d", path, len(body), 12*n)
	}
	for k, v := range [][]float32{tr.W, tr.M, tr.V} {
		b := body[k*4*n:]
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	}
	tr.Step = h.Step
	if data != nil {
		data.Epoch, data.Pos, data.RNG, data.perm = h.Epoch, h.Pos, h.RNG, nil
	}
	return tr, nil
}
