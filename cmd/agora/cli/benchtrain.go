package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/chain/types"
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

// benchTrainAuditCmd is `agora bench train-audit`: with the chain's own
// sampler, how often a provider faking a fraction of its training steps
// is caught and what share of the training compute one auditor
// re-executes (BENCHMARKS.md, "Training").
func benchTrainAuditCmd(g *globals) *cobra.Command {
	p := train.AuditSimParams{FloorBps: types.DefaultParams().AuditFloorBps, CeilingBps: types.DefaultParams().AuditCeilingBps}
	var asJSON bool
	var steps, perEpoch []int
	cmd := &cobra.Command{
		Use:   "train-audit",
		Short: "Training audits: detection of a step-faking provider and the auditors' share of the compute, with the chain's sampler",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rs []train.AuditSimResult
			for _, n := range steps {
				for _, c := range perEpoch {
					q := p
					q.Steps, q.PerEpoch = n, c
					fmt.Fprintf(g.errOut, "N = %d steps, %d checkpoints an epoch\n", n, c)
					r, err := train.SimulateAudits(q, g.errOut)
					if err != nil {
						return err
					}
					rs = append(rs, r)
				}
			}
			return printer{w: g.out, json: asJSON}.print(rs, func(w io.Writer) {
				how := "at random"
				if p.Packed {
					how = "packed into whole intervals"
				}
				fmt.Fprintf(w, "a provider at reputation %d bps (rate %d bps) faking %.0f %% of its steps (%s), a checkpoint every %d steps, %d trials\n",
					p.ReputationBps, rs[0].RateBps, 100*p.SkipFraction, how, p.Interval, p.Trials)
				fmt.Fprintf(w, "%8s %10s %10s %10s %12s\n", "steps", "cp/epoch", "sampled", "caught", "audit share")
				for _, r := range rs {
					fmt.Fprintf(w, "%8d %10d %10.2f %9.2f%% %11.2f%%\n", r.Steps, r.PerEpoch, r.SampledPerEpoch, 100*r.Caught, 100*r.AuditShare)
				}
			})
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&steps, "steps", []int{1000, 3040, 10000}, "run lengths N to simulate")
	f.IntSliceVar(&perEpoch, "per-epoch", []int{20, 40, 100}, "checkpoints the provider commits per epoch")
	f.IntVar(&p.Interval, "interval", 1, "steps per checkpoint K")
	f.Uint64Var(&p.ReputationBps, "reputation", 10000, "the provider's reputation in bps (10000: the floor's rate)")
	f.Float64Var(&p.SkipFraction, "skip", 0.05, "fraction of steps faked")
	f.BoolVar(&p.Packed, "packed", false, "the faked steps fill whole checkpoint intervals (the skipper's best strategy) instead of falling at random")
	f.IntVar(&p.Trials, "trials", 2000, "trials per configuration")
	f.Uint64Var(&p.Seed, "seed", 1, "simulation seed")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
