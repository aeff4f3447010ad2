package train

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// HyperKeys are the hyperparameters Set takes, for messages.
const HyperKeys = "batch, warmup, lr, min_lr, weight_decay, beta1, beta2, adam_eps, clip"

// Set overrides one hyperparameter from "key=value" (keys: HyperKeys).
// A run's hyperparameters are part of its state (the checkpoint header),
// so a resumed or re-executed run must be given the same.
func (h *Hyper) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("hyperparameter %q: want key=value (keys: %s)", kv, HyperKeys)
	}
	if k == "batch" || k == "warmup" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || (k == "batch" && n < 1) || n > 1<<20 {
			return fmt.Errorf("hyperparameter %s=%q: want a whole number (batch ≥ 1, warmup ≥ 0)", k, v)
		}
		if k == "batch" {
			h.Batch = n
		} else {
			h.Warmup = n
		}
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return fmt.Errorf("hyperparameter %s=%q: want a finite number ≥ 0", k, v)
	}
	switch k {
	case "lr":
		if f == 0 {
			return fmt.Errorf("hyperparameter lr=%q: want a number > 0", v)
		}
		h.LR = f
	case "min_lr":
		h.MinLR = f
	case "weight_decay":
		h.WeightDecay = f
	case "beta1", "beta2":
		if f >= 1 {
			return fmt.Errorf("hyperparameter %s=%q: want a number in [0, 1)", k, v)
		}
		if k == "beta1" {
			h.Beta1 = f
		} else {
			h.Beta2 = f
		}
	case "adam_eps":
		h.AdamEps = f
	case "clip":
		h.Clip = f
	default:
		return fmt.Errorf("hyperparameter %q: unknown (keys: %s)", k, HyperKeys)
	}
	return nil
}

// RunHyper is the hyperparameters of a run of steps steps from a preset's,
// with overrides (Set's "key=value"): the warm-up is capped at a tenth of
// the run unless given. `agora train` and the train job both use it, so
// the same arguments give the same run.
func RunHyper(p Preset, steps int, seed uint64, overrides []string) (Hyper, error) {
	h := p.Hyper
	h.Steps, h.Seed = steps, seed
	h.Warmup = min(h.Warmup, max(steps/10, 1))
	for _, kv := range overrides {
		if err := h.Set(kv); err != nil {
			return h, err
		}
	}
	if h.MinLR > h.LR {
		return h, fmt.Errorf("hyperparameters: min_lr %g above lr %g", h.MinLR, h.LR)
	}
	return h, nil
}
