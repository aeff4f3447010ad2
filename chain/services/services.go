// Package services declares the kinds of work the chain verifies. A provider
// commits, per epoch and per service, a Merkle root over that service's
// records with their count and total billed (chain/epochs); the audit kernel
// (chain/audit) samples the records by the service's rule, checks a reported
// record by the service's rule, and applies a confirmed fault with the
// slash fraction the genesis params give the service's fault kind, refunding
// whom the service says. Inference is the first service; the next kinds of
// work (jobs, data, storage, training, zk) add a declaration here.
package services

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/sampling"
	"github.com/agoranet/agora/chain/types"
)

// Inference is the name of the LLM inference service. An empty service in a
// message means Inference: txs signed before services existed still replay.
const Inference = "inference"

// Reported says how a fault kind reaches the chain.
type Reported int

const (
	// ByVerdict faults are reported by validators with MsgReportFault and
	// apply once enough of them agree.
	ByVerdict Reported = iota
	// ByOmission faults are proven by a signed record left out of the
	// commitment (MsgReportOmission and its challenge).
	ByOmission
	// ByModule faults are found and applied by the declaring module's own
	// rules on chain (a job dispute's verdict, the liveness sweep), never
	// reported with MsgReportFault.
	ByModule
)

// Fault is one kind of fault a service's records can have.
type Fault struct {
	Code uint32 // the code in MsgReportFault.fault and in verdict events
	Name string // e.g. "fabricated"
	// CarriesRecord: a report of this fault carries the record, its
	// signature and its inclusion proof, which the chain checks; a
	// confirmed fault refunds whom the record says (Service.Record). Other
	// faults (a refused opening) refund no one.
	CarriesRecord bool
	Reported      Reported
	// DefaultSlashBps is the slash fraction DefaultParams give it; the
	// chain uses Params.SlashBps[SlashKey(service, fault)].
	DefaultSlashBps uint64
}

// Refund is whom a confirmed fault on a record refunds, and up to how much.
type Refund struct {
	Client []byte
	Amount uint64
}

// RecordRef is where a reported record claims to sit.
type RecordRef struct {
	ChainID  string
	Provider []byte
	Epoch    uint64
	Index    uint64
}

// Service declares one kind of work.
type Service struct {
	Name   string
	Faults []Fault
	// OnChain: the service's records are on chain (a job's checkpoints), so
	// it has no per-epoch commitments: MsgCommitEpoch for it is refused
	// (a commitment would claim billed work the chain did not see).
	OnChain bool
	// Record checks that record (serialized, signed by the provider's
	// account key pub with sig) is the provider's record at ref, and
	// returns its Merkle leaf and whom a fault on it refunds.
	Record func(ref RecordRef, pub, record, sig []byte) (leaf [32]byte, refund Refund, err error)
	// Sample returns the indices of an epoch's count committed records that
	// are audited, from the epoch's seed and the provider's reputation when
	// it committed.
	Sample func(p types.Params, seed, provider []byte, count, reputationBps uint64) []uint64
}

// Fault returns the service's fault kind with code, or false.
func (s *Service) Fault(code uint32) (Fault, bool) {
	for _, f := range s.Faults {
		if f.Code == code {
			return f, true
		}
	}
	return Fault{}, false
}

// FaultNamed returns the service's fault kind named name; it panics when
// the service has none (a programming error in the chain, not bad input).
func (s *Service) FaultNamed(name string) Fault {
	for _, f := range s.Faults {
		if f.Name == name {
			return f
		}
	}
	panic(fmt.Sprintf("service %s declares no fault %q", s.Name, name))
}

// SlashBps is the slash fraction the params give fault f of s.
func (s *Service) SlashBps(p types.Params, f Fault) uint64 {
	return p.SlashBps[SlashKey(s.Name, f.Name)]
}

// SlashKey is the key of a service's fault kind in Params.SlashBps.
func SlashKey(service, fault string) string { return service + "/" + fault }

// Registry lists the services a chain knows, in a fixed order.
type Registry []*Service

// Get returns the service named name (empty means Inference), or an error
// a tx can carry.
func (r Registry) Get(name string) (*Service, error) {
	name = Normalize(name)
	for _, s := range r {
		if s.Name == name {
			return s, nil
		}
	}
	return nil, types.Errorf(types.CodeInvalid, "unknown service %q", name)
}

// MustGet is Get for a name the chain itself uses.
func (r Registry) MustGet(name string) *Service {
	s, err := r.Get(name)
	if err != nil {
		panic(err)
	}
	return s
}

// ValidateParams checks that p gives every fault kind of every service a
// slash fraction of at most 10000 bps, and names no fault kind that does
// not exist.
func (r Registry) ValidateParams(p types.Params) error {
	known := map[string]bool{}
	for _, s := range r {
		for _, f := range s.Faults {
			k := SlashKey(s.Name, f.Name)
			known[k] = true
			if _, ok := p.SlashBps[k]; !ok {
				return fmt.Errorf("slash_bps: missing fraction for %q", k)
			}
		}
	}
	for k := range p.SlashBps {
		if !known[k] {
			return fmt.Errorf("slash_bps: %q is not a fault kind of any service", k)
		}
	}
	return nil
}

// DefaultSlashBps returns the slash fractions the services declare as
// defaults, keyed as Params.SlashBps.
func (r Registry) DefaultSlashBps() map[string]uint64 {
	out := map[string]uint64{}
	for _, s := range r {
		for _, f := range s.Faults {
			out[SlashKey(s.Name, f.Name)] = f.DefaultSlashBps
		}
	}
	return out
}

// Normalize maps the empty service name of old messages to Inference.
func Normalize(name string) string {
	if name == "" {
		return Inference
	}
	return name
}

// Key encodes a known service's name as a store-key segment
// (length-prefixed, so keys stay prefix-free whatever the names).
func Key(name string) []byte {
	name = Normalize(name)
	return append([]byte{byte(len(name))}, name...)
}

// Default lists the services this chain verifies: inference, jobs and zk.
// An app takes its registry from its modules (the epochs module declares
// inference, the jobs module jobs, the zk module zk); this is that default
// set, for tests and tools.
func Default() Registry { return Registry{InferenceService(), JobsService(), ZKService()} }

// Jobs is the name of the compute-job service (chain/jobs).
const Jobs = "jobs"

// JobsService declares compute jobs: their records are checkpoints
// committed on chain (chain/jobs), so there is no epoch commitment and no
// record to report; a wrong checkpoint is found by a dispute's bisection
// and a validator quorum (wrong_step), a provider that stops committing by
// the liveness sweep (abandoned). Sample picks which of a provider's
// checkpoints committed in an epoch validators re-execute (chain/jobs
// SampleCheckpoints), at the reputation's audit rate like inference.
func JobsService() *Service {
	return &Service{
		Name:    Jobs,
		OnChain: true,
		Faults: []Fault{
			{Code: types.FaultWrongStep, Name: "wrong_step", Reported: ByModule, DefaultSlashBps: 1000},
			{Code: types.FaultAbandoned, Name: "abandoned", Reported: ByModule, DefaultSlashBps: 500},
		},
		Record: func(RecordRef, []byte, []byte, []byte) ([32]byte, Refund, error) {
			return [32]byte{}, Refund{}, types.Errorf(types.CodeInvalid, "job checkpoints are on chain: challenge one with challenge_checkpoint")
		},
		Sample: func(p types.Params, seed, provider []byte, count, rep uint64) []uint64 {
			return sampling.Sample(seed, provider, count, p.AuditFloorBps, p.AuditCeilingBps, rep)
		},
	}
}

// ZK is the name of the zero-knowledge inference service (chain/zk).
const ZK = "zk"

// ZKService declares proven inference: an answer carries its own proof,
// so nothing is sampled for re-execution; a provider that signed an answer
// whose proof does not verify is slashed when anyone reports it
// (report_zk_fault: the chain checks the signature and runs the pairing
// check itself).
func ZKService() *Service {
	return &Service{
		Name:    ZK,
		OnChain: true,
		Faults: []Fault{
			{Code: types.FaultBadProof, Name: "bad_proof", Reported: ByModule, DefaultSlashBps: 1000},
		},
		Record: func(RecordRef, []byte, []byte, []byte) ([32]byte, Refund, error) {
			return [32]byte{}, Refund{}, types.Errorf(types.CodeInvalid, "zk answers are settled by their proofs: report a bad one with report_zk_fault")
		},
		Sample: func(types.Params, []byte, []byte, uint64, uint64) []uint64 { return nil },
	}
}

// InferenceService declares LLM inference: its records are provider-signed
// receipts (types.Receipt), leaves are receipt ids, a record refunds the
// receipt's client its amount, and records are sampled at the reputation's
// audit rate (chain/sampling).
func InferenceService() *Service {
	return &Service{
		Name: Inference,
		Faults: []Fault{
			{Code: types.FaultFabricated, Name: "fabricated", CarriesRecord: true, Reported: ByVerdict, DefaultSlashBps: 1000},
			{Code: types.FaultRefused, Name: "refused", Reported: ByVerdict, DefaultSlashBps: 500},
			{Code: types.FaultOmitted, Name: "omitted", CarriesRecord: true, Reported: ByOmission, DefaultSlashBps: 1000},
		},
		Record: inferenceRecord,
		Sample: func(p types.Params, seed, provider []byte, count, rep uint64) []uint64 {
			return sampling.Sample(seed, provider, count, p.AuditFloorBps, p.AuditCeilingBps, rep)
		},
	}
}

func inferenceRecord(ref RecordRef, pub, record, sig []byte) ([32]byte, Refund, error) {
	var r types.Receipt
	if err := proto.Unmarshal(record, &r); err != nil {
		return [32]byte{}, Refund{}, types.Errorf(types.CodeMalformed, "receipt: %v", err)
	}
	if r.ChainId != ref.ChainID || string(r.Provider) != string(ref.Provider) || r.Epoch != ref.Epoch || r.Index != ref.Index {
		return [32]byte{}, Refund{}, types.Errorf(types.CodeInvalid, "the receipt is not receipt %d of %s in epoch %d", ref.Index, types.Address(ref.Provider), ref.Epoch)
	}
	if !types.VerifyReceiptSignature(pub, record, sig) {
		return [32]byte{}, Refund{}, types.Errorf(types.CodeBadSignature, "the receipt is not signed by the provider")
	}
	return types.ReceiptID(record), Refund{Client: r.Client, Amount: r.Amount}, nil
}
