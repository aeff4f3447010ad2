package jobs

import (
	"fmt"

	chainjobs "github.com/agoranet/agora/chain/jobs"
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

// MaxOutputs bounds a decoded result list.
const MaxOutputs = chainjobs.MaxOutputs

// Encode returns the canonical encoding (outputs sorted by name):
// chain/jobs.EncodeResultList's, the form the chain reads.
func (r *Results) Encode() []byte {
	es := make([]chainjobs.ResultEntry, len(r.Outputs))
	for i, o := range r.Outputs {
		es[i] = chainjobs.ResultEntry{Name: o.Name, ID: o.ID, Size: o.Size}
	}
	return chainjobs.EncodeResultList(es)
}

// ID is the result hash a final checkpoint commits.
func (r *Results) ID() blob.ID { return blob.Of(r.Encode()) }

// DecodeResults parses Encode's form, refusing any other (unsorted or
// repeated names, trailing bytes): the chain's own parser
// (chain/jobs.DecodeResultList), which reads the list when a message
// proves something about an output.
func DecodeResults(b []byte) (*Results, error) {
	es, err := chainjobs.DecodeResultList(b)
	if err != nil {
		return nil, err
	}
	r := &Results{}
	for _, e := range es {
		r.Outputs = append(r.Outputs, Output{Name: e.Name, ID: blob.ID(e.ID), Size: e.Size})
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
