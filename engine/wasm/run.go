package wasm

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Checkpoint is what a provider commits: after Step steps, GasUsed gas were
// used and the state hashed to State.
type Checkpoint struct {
	Step    uint64   `json:"step"`
	GasUsed uint64   `json:"gas_used"`
	State   [32]byte `json:"-"`
}

// MarshalJSON writes the state hash in hex.
func (c Checkpoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Step    uint64 `json:"step"`
		GasUsed uint64 `json:"gas_used"`
		State   string `json:"state"`
	}{c.Step, c.GasUsed, hex.EncodeToString(c.State[:])})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Checkpoint) UnmarshalJSON(b []byte) error {
	var v struct {
		Step    uint64 `json:"step"`
		GasUsed uint64 `json:"gas_used"`
		State   string `json:"state"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	h, err := hex.DecodeString(v.State)
	if err != nil || len(h) != 32 {
		return fmt.Errorf("checkpoint state %q: want 64 hex digits", v.State)
	}
	c.Step, c.GasUsed = v.Step, v.GasUsed
	copy(c.State[:], h)
	return nil
}

// Result is a finished job: done, or failed deterministically.
type Result struct {
	Failure     *Failure // nil when the job is done
	Outputs     []Blob   // stdout and stderr (so far, for a failed job)
	GasUsed     uint64
	Steps       uint64
	Checkpoints []Checkpoint // step 0 (after init), every CheckpointEvery steps, and the last step
}

// Run runs a job to its end. The error is for what is not the job's doing
// (a bad job description, a cancelled context); the job's own failures are
// in Result.Failure.
func (m *Module) Run(ctx context.Context, job Job) (*Result, error) {
	in, err := m.Start(ctx, job)
	var f *Failure
	if errors.As(err, &f) {
		return &Result{Failure: f, GasUsed: f.GasUsed, Outputs: nil}, nil
	}
	if err != nil {
		return nil, err
	}
	defer in.Close(ctx)
	return in.Run(ctx)
}

// Run continues a started or restored instance to the job's end.
func (in *Instance) Run(ctx context.Context) (*Result, error) {
	res := &Result{}
	checkpoint := func() {
		c := Checkpoint{Step: in.steps, GasUsed: in.gasUsed(), State: in.StateHash()}
		res.Checkpoints = append(res.Checkpoints, c)
		if in.job.Progress != nil {
			in.job.Progress(c)
		}
	}
	checkpoint()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		more, err := in.Step(ctx)
		if err != nil {
			var f *Failure
			if !errors.As(err, &f) {
				return nil, err
			}
			res.Failure = f
			break
		}
		if !more {
			checkpoint()
			break
		}
		if e := in.job.CheckpointEvery; e > 0 && in.steps%e == 0 {
			checkpoint()
		}
	}
	res.Outputs, res.GasUsed, res.Steps = in.Outputs(), in.gasUsed(), in.steps
	return res, nil
}

// StepResult is one re-executed step.
type StepResult struct {
	More    bool
	Failure *Failure
	GasUsed uint64   // after the step
	Post    [32]byte // state hash after the step (zero after a failure)
}

// ReplayStep re-executes the single step following pre and returns the
// post-state's hash: what an auditor or a referee compares with the
// provider's next checkpoint.
func (m *Module) ReplayStep(ctx context.Context, job Job, pre *State) (*StepResult, error) {
	in, err := m.Restore(ctx, job, pre)
	if err != nil {
		return nil, err
	}
	defer in.Close(ctx)
	more, err := in.Step(ctx)
	res := &StepResult{More: more, GasUsed: in.gasUsed()}
	if err != nil {
		var f *Failure
		if !errors.As(err, &f) {
			return nil, err
		}
		res.Failure = f
		return res, nil
	}
	res.Post = in.StateHash()
	return res, nil
}
