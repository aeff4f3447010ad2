package jobs

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/protocol/blob"
)

// SeedDomain prefixes every job seed's preimage.
const SeedDomain = "agora/job-seed/v1"

// JobSeed is the key of a job's random stream (engine/wasm Job.Seed):
//
//	sha256("agora/job-seed/v1" || chain id || order id u64 big-endian)
//
// Every replica of an order, every auditor and every referee derives the
// same seed from the chain alone, and no party chooses it.
func JobSeed(chainID string, order uint64) [32]byte {
	h := sha256.New()
	h.Write([]byte(SeedDomain))
	h.Write([]byte(chainID))
	h.Write(binary.BigEndian.AppendUint64(nil, order))
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// InputName is the file name the job reads input i of its order under
// (/in/<name>): its position, "0", "1", ... Orders name inputs by blob ID
// only (`agora job submit --input` puts no name on chain), so the position
// is the one name every party can derive.
func InputName(i int) string { return strconv.Itoa(i) }

// Input is one input file of a job.
type Input struct {
	Name string
	ID   blob.ID
}

// Spec is everything a run of an order's job depends on besides the bytes
// of its module and inputs: the engine/wasm Job an executor runs, an
// auditor re-executes and a referee replays a step of. Orders carry no
// arguments and no stdin: a job has none (argv is just "job", stdin is
// empty).
type Spec struct {
	Module          blob.ID
	Inputs          []Input // in order, named by InputName
	Seed            [32]byte
	Gas             uint64 // the order's gas limit
	MemoryPages     uint32 // the order's memory cap (0: the engine's default)
	CheckpointEvery uint64 // the order's checkpoint interval
}

// SpecOf maps an order to its job. It refuses an order whose blob IDs are
// not 32 bytes.
func SpecOf(chainID string, o api.JobOrderView) (*Spec, error) {
	s := &Spec{Seed: JobSeed(chainID, o.ID), Gas: o.GasLimit, MemoryPages: o.MemoryPages, CheckpointEvery: o.CheckpointInterval}
	if len(o.ModuleHash) != len(s.Module) {
		return nil, fmt.Errorf("order %d: module blob ID is %d bytes, not 32", o.ID, len(o.ModuleHash))
	}
	copy(s.Module[:], o.ModuleHash)
	for i, h := range o.InputHashes {
		in := Input{Name: InputName(i)}
		if len(h) != len(in.ID) {
			return nil, fmt.Errorf("order %d: input %d's blob ID is %d bytes, not 32", o.ID, i, len(h))
		}
		copy(in.ID[:], h)
		s.Inputs = append(s.Inputs, in)
	}
	return s, nil
}
