package cli

import (
	"github.com/spf13/cobra"

	"github.com/agoranet/agora/internal/bench"
)

func benchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Benchmarks (results for BENCHMARKS.md)"}
	var o bench.ChainOptions
	chain := &cobra.Command{
		Use:   "chain",
		Short: "Committed signed-transfer tx/s on a fresh local validator, submitted through its RPC",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = g.out
			tuneGC()
			_, err := bench.RunChain(ctxOr(cmd.Context()), o)
			return err
		},
	}
	fs := chain.Flags()
	fs.DurationVar(&o.Duration, "duration", 60_000_000_000, "measurement window")
	fs.IntVar(&o.Senders, "senders", 2000, "distinct sending accounts")
	fs.IntVar(&o.Accounts, "accounts", 100_000, "accounts created by the end (recipients are fresh addresses until this many exist)")
	fs.IntVar(&o.Concurrency, "concurrency", 64, "concurrent RPC broadcasters")
	fs.DurationVar(&o.BlockTime, "block-time", 1_000_000_000, "timeout_commit")
	fs.StringVar(&o.Dir, "dir", "", "node home (default: a temp dir, removed after)")
	fs.StringVar(&o.Indexer, "indexer", "null", "tx indexer: null or kv")
	fs.BoolVar(&o.NoExplorer, "no-explorer", false, "turn the explorer's indexer off (on in a default node)")
	fs.BoolVar(&o.JSON, "json", false, "print the result as JSON")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the load phase to this file")
	var go_ bench.GatewayOptions
	gw := &cobra.Command{
		Use:   "gateway",
		Short: "Request path overhead: a fake instant backend direct, through a provider, through gateway and provider (loopback)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			go_.Out = g.out
			tuneGC()
			_, err := bench.RunGateway(ctxOr(cmd.Context()), go_)
			return err
		},
	}
	gw.Flags().DurationVar(&go_.Duration, "duration", 5_000_000_000, "time per measurement")
	gw.Flags().IntSliceVar(&go_.Conns, "conns", []int{64, 1}, "concurrent connections to measure")
	gw.Flags().BoolVar(&go_.JSON, "json", false, "print results as JSON")
	gw.Flags().StringVar(&go_.CPUProfile, "cpuprofile", "", "write a CPU profile of the measurements")
	gw.Flags().StringVar(&go_.Only, "only", "", "measure one path only: direct, provider or gateway")
	cmd.AddCommand(chain, gw)
	return cmd
}
