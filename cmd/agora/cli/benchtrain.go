package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/train"
)

// benchTrainCmd is `agora bench train`: the trainer's tokens/s against the
// engine's prefill on the same model and threads, and the state hash's
// cost (BENCHMARKS.md, "Training").
func benchTrainCmd(g *globals) *cobra.Command {
	var preset string
	var threads, steps int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Training: tokens/s against the engine's prefill of the same model, and the state hash's cost",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "agora-bench-train-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			r, err := train.BenchTraining(preset, threads, steps, dir, g.errOut)
			if err != nil {
				return err
			}
			return printer{w: g.out, json: asJSON}.print(r, func(w io.Writer) {
				fmt.Fprintf(w, "preset %s (%.2fM parameters), %d threads, batch %d tokens\n", r.Preset, float64(r.Params)/1e6, r.Threads, r.BatchTokens)
				fmt.Fprintf(w, "training:        %8.0f tokens/s (%.1f ms per step)\n", r.TrainTokensPerS, r.StepMS)
				fmt.Fprintf(w, "engine prefill:  %8.0f tokens/s  → training is %.0f %% of prefill (target ≥ 25 %%)\n", r.PrefillTokensPS, 100*r.TrainVsPrefill)
				fmt.Fprintf(w, "trainer forward: %8.0f tokens/s\n", r.ForwardTokensPS)
				fmt.Fprintf(w, "state hash:      %8.1f ms = %.1f %% of a step; hashed every 10 steps %.2f %% (target ≤ 5 %%)\n", r.HashMS, 100*r.HashShareEvery1, 100*r.HashShareEvery10)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&preset, "preset", "small", "model preset: tiny or small")
	f.IntVar(&threads, "threads", 2, "threads for both")
	f.IntVar(&steps, "steps", 8, "training steps timed")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
