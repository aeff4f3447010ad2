package train

import (
	"strings"
	"testing"
)

func TestRunHyper(t *testing.T) {
	p := Presets["tiny"]
	h, err := RunHyper(p, 100, 7, []string{"lr=0.001", "batch=4", "warmup=3", "clip=0.5", "beta2=0.99", "min_lr=0.0001", "weight_decay=0", "adam_eps=1e-6", "beta1=0.8"})
	if err != nil {
		t.Fatal(err)
	}
	want := Hyper{Batch: 4, Steps: 100, Warmup: 3, LR: 0.001, MinLR: 0.0001, WeightDecay: 0, Beta1: 0.8, Beta2: 0.99, AdamEps: 1e-6, Clip: 0.5, Seed: 7}
	if h != want {
		t.Fatalf("got %+v, want %+v", h, want)
	}
	if h, _ := RunHyper(p, 30, 1, nil); h.Warmup != 3 || h.LR != p.Hyper.LR {
		t.Fatalf("defaults: %+v", h)
	}
	for _, c := range []struct{ kv, want string }{
		{"lr", "want key=value"},
		{"lr=0", "want a number > 0"},
		{"lr=-1", "finite number ≥ 0"},
		{"lr=NaN", "finite number ≥ 0"},
		{"batch=0", "batch ≥ 1"},
		{"warmup=x", "whole number"},
		{"beta1=1", "in [0, 1)"},
		{"momentum=0.9", "unknown"},
		{"min_lr=1", "min_lr 1 above lr"},
	} {
		if _, err := RunHyper(p, 10, 1, []string{c.kv}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.kv, err, c.want)
		}
	}
}
