// Package verify checks the transcripts providers open for audited
// inference requests, off chain: a native-engine transcript is re-executed
// and compared bit for bit (CheckNative), a GPU backend's transcript within
// tolerances (CheckReported). Which receipts are audited is the chain's
// rule, in chain/sampling.
package verify

import (
	"errors"
	"fmt"
	"math"

	"github.com/agoranet/agora/engine/native"
)

// Transcript is what a provider opens for an audited request served by the
// native engine.
type Transcript struct {
	PromptIDs []int
	OutputIDs []int
	Logprobs  []float32
	Params    native.SampleParams // temperature, top-k/p, min-p, penalties, seed
}

// CheckNative re-executes a native-engine transcript: one teacher-forced
// prefill over prompt + output must reproduce every reported log-prob bit for
// bit, and replaying the sampler (same parameters and seed) over those logits
// must draw exactly the reported tokens. Any difference is a fault: the engine
// is deterministic and batch-invariant, so an honest provider always passes.
func CheckNative(m *native.Model, t Transcript) error {
	if len(t.PromptIDs) == 0 {
		return errors.New("transcript has no prompt")
	}
	if len(t.Logprobs) != len(t.OutputIDs) {
		return fmt.Errorf("transcript has %d tokens but %d log-probs", len(t.OutputIDs), len(t.Logprobs))
	}
	if len(t.OutputIDs) == 0 {
		return nil
	}
	if len(t.PromptIDs)+len(t.OutputIDs) > m.Config.ContextLen {
		return fmt.Errorf("transcript of %d tokens exceeds the model's context %d", len(t.PromptIDs)+len(t.OutputIDs), m.Config.ContextLen)
	}
	// Two prefill batches (bit-identical to one, the engine being batch
	// invariant): the prompt but its last token without output logits, then
	// that token and the output with logits at every position — the ones
	// that predicted each output token. Skipping the vocabulary projection
	// at the other prompt positions saves a large part of the work.
	s := m.NewSession()
	last := len(t.PromptIDs) - 1
	if last > 0 {
		if _, err := s.Forward(t.PromptIDs[:last], false); err != nil {
			return fmt.Errorf("re-execution: %w", err)
		}
	}
	logits, err := s.Forward(append([]int{t.PromptIDs[last]}, t.OutputIDs...), true)
	if err != nil {
		return fmt.Errorf("re-execution: %w", err)
	}
	sampler := native.NewSampler(t.Params)
	history := append([]int(nil), t.PromptIDs...)
	for i, id := range t.OutputIDs {
		l := logits[i]
		lp := native.LogSoftmax(l)
		if id < 0 || id >= len(lp) {
			return fmt.Errorf("token %d: id %d outside the vocabulary", i, id)
		}
		if math.Float32bits(lp[id]) != math.Float32bits(t.Logprobs[i]) {
			return fmt.Errorf("token %d: reported log-prob %v, re-executed %v", i, t.Logprobs[i], lp[id])
		}
		if want := sampler.Sample(l, history); want != id {
			return fmt.Errorf("token %d: reported token %d, the sampler draws %d with this seed", i, id, want)
		}
		history = append(history, id)
	}
	return nil
}
