package jobs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/agoranet/agora/protocol/blob"
)

// Output is one result blob of a job: stdout, stderr, or a file it wrote
// under /out ("out/<name>").
type Output struct {
	Name string
	ID   blob.ID
	Size uint64
}

// Results lists a finished job's outputs. The final checkpoint's result
// hash on chain is the blob ID of its encoding (Encode), so an owner who
// fetched the results can check every byte against the chain:
//
//	"agora-results/v1\n" || count u32 || (name length u32 || name || blob ID || size u64)...
//
// outputs sorted by name, integers big-endian. The executor serves the
// encoding and each output as blobs (protocol/blob paths).
type Results struct {
	Outputs []Output
}

const resultsMagic = "agora-results/v1\n"

// MaxOutputs bounds a decoded result list.
const MaxOutputs = 1 << 12

// Encode returns the canonical encoding (outputs sorted by name).
func (r *Results) Encode() []byte {
	outs := append([]Output(nil), r.Outputs...)
	sort.Slice(outs, func(i, j int) bool { return outs[i].Name < outs[j].Name })
	b := append([]byte(nil), resultsMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(outs)))
	for _, o := range outs {
		b = binary.BigEndian.AppendUint32(b, uint32(len(o.Name)))
		b = append(b, o.Name...)
		b = append(b, o.ID[:]...)
		b = binary.BigEndian.AppendUint64(b, o.Size)
	}
	return b
}

// ID is the result hash a final checkpoint commits.
func (r *Results) ID() blob.ID { return blob.Of(r.Encode()) }

// DecodeResults parses Encode's form, refusing any other (unsorted or
// repeated names, trailing bytes).
func DecodeResults(b []byte) (*Results, error) {
	if len(b) < len(resultsMagic)+4 || string(b[:len(resultsMagic)]) != resultsMagic {
		return nil, errors.New("job results: not an agora result list")
	}
	b = b[len(resultsMagic):]
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if n > MaxOutputs {
		return nil, fmt.Errorf("job results: %d outputs (at most %d)", n, MaxOutputs)
	}
	r := &Results{}
	for i := uint32(0); i < n; i++ {
		if len(b) < 4 {
			return nil, errors.New("job results: truncated")
		}
		l := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(len(b)) < uint64(l)+32+8 {
			return nil, errors.New("job results: truncated")
		}
		o := Output{Name: string(b[:l])}
		copy(o.ID[:], b[l:l+32])
		o.Size = binary.BigEndian.Uint64(b[l+32:])
		b = b[l+40:]
		if o.Name == "" || (i > 0 && r.Outputs[i-1].Name >= o.Name) {
			return nil, fmt.Errorf("job results: output %d (%q) empty or out of order", i, o.Name)
		}
		r.Outputs = append(r.Outputs, o)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("job results: %d bytes after the list", len(b))
	}
	return r, nil
}

// The executor's HTTP paths, besides protocol/blob's (which serve the
// results, the result list, and take the owner's uploads under
// UploadHeader).
//
//   - GET LeasePath(lease): the executor's view of a lease as JSON
//     (LeaseStatus).
//   - GET StatePath(lease, step): the job's state after step steps,
//     serialized (engine/wasm State.MarshalBinary), for audits and
//     disputes: the reader checks its hash against the committed or agreed
//     one. The executor serves the states at its checkpoints, and any other
//     step of a lease under dispute (it recomputes it).
const (
	LeaseRoute = "GET /v1/jobs/leases/{lease}"
	StateRoute = "GET /v1/jobs/leases/{lease}/states/{step}"
)

// LeasePath is the path of the executor's view of a lease.
func LeasePath(lease uint64) string { return fmt.Sprintf("/v1/jobs/leases/%d", lease) }

// StatePath is the path of a lease's job state after step steps.
func StatePath(lease, step uint64) string {
	return fmt.Sprintf("/v1/jobs/leases/%d/states/%d", lease, step)
}

// LeaseStatus is the executor's view of a lease.
type LeaseStatus struct {
	Lease     uint64   `json:"lease"`
	Order     uint64   `json:"order"`
	Phase     string   `json:"phase"` // "waiting for blobs", "running", "done", "failed", "ended"
	Steps     uint64   `json:"steps"`
	GasUsed   uint64   `json:"gas_used"`
	Committed uint64   `json:"committed"`            // checkpoints on chain
	ResumedAt uint64   `json:"resumed_at,omitempty"` // the step a restarted executor resumed the job from
	Missing   []string `json:"missing,omitempty"`    // blob IDs not yet uploaded
	Results   string   `json:"results,omitempty"`    // result list blob ID, once done
	Error     string   `json:"error,omitempty"`
}
