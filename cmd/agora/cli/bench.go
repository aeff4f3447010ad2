package cli

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/cmd/agora/bench"
)

func benchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Benchmarks (results for BENCHMARKS.md)"}
	var o bench.ChainOptions
	var chainOut string
	chain := &cobra.Command{
		Use:   "chain",
		Short: "Sustained committed signed-transfer tx/s of a fresh local validator (its own process), loaded through its RPC",
		Long: `Writes a fresh single-validator chain with --accounts funded senders, starts
its node as a child process (agora start), and broadcasts pre-signed transfers
into it from this process over --connections HTTP connections (JSON-RPC batches
of broadcast_tx_sync, each item's answer handled on its own: refused items are
resent, in nonce order). Reports committed tx/s over the window after the
warm-up (counted from the blocks), the per-second timeline, broadcast -> commit
latency, every refusal by reason, the node process's RSS, and checks after a
drain that each sender's committed nonce equals its admitted txs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(chainOut); err != nil {
				return err
			}
			o.JSON = o.JSON || chainOut == "json"
			o.Out = g.out
			tuneGC()
			ctx, stop := signal.NotifyContext(ctxOr(cmd.Context()), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := bench.RunChain(ctx, o)
			if err == nil && !res.Consistent {
				return fmt.Errorf("the counts do not add up (see above): admitted %d, committed %d, Σ nonces %d, accounts off %d, drained %v",
					res.Admitted, res.Committed, res.NonceSum, res.NonceErrors, res.Drained)
			}
			return err
		},
	}
	fs := chain.Flags()
	fs.DurationVar(&o.Duration, "duration", 60*time.Second, "measurement window (after the warm-up)")
	fs.DurationVar(&o.Warmup, "warmup", 10*time.Second, "load before the window")
	fs.IntVar(&o.Accounts, "accounts", 2000, "sending accounts (funded at genesis)")
	fs.IntVar(&o.Recipients, "recipients", 100_000, "distinct recipients (new accounts until this many exist)")
	fs.IntVar(&o.Connections, "connections", 8, "concurrent HTTP connections broadcasting")
	fs.IntVar(&o.Batch, "batch", 50, "txs per JSON-RPC batch (at most 100)")
	fs.IntVar(&o.MaxPending, "max-pending", 0, "admitted but uncommitted txs the load keeps at most (0: no limit, the mempool's size bounds it)")
	fs.IntVar(&o.PresignRate, "presign-rate", 12_000, "txs signed ahead per second of load (an upper bound on the load)")
	fs.IntVar(&o.MempoolSize, "mempool-size", 0, "the node's mempool.size (0: the node default)")
	fs.DurationVar(&o.BlockTime, "block-time", time.Second, "timeout_commit")
	fs.StringVar(&o.Dir, "dir", "", "node home (default: a temp dir, removed after)")
	fs.StringVar(&o.Indexer, "indexer", "null", "tx indexer: null or kv")
	fs.BoolVar(&o.NoExplorer, "no-explorer", false, "turn the explorer's indexer off (on in a default node)")
	fs.StringVarP(&chainOut, "output", "o", "text", "output format: text or json")
	fs.BoolVar(&o.JSON, "json", false, "print the result as JSON (same as -o json)")
	fs.StringVar(&o.NodeExe, "node-exe", "", "run the node from this binary (`BIN start --home DIR --log-level warn`; default: this agora)")
	_ = fs.MarkHidden("node-exe")
	var ro bench.RetentionOptions
	ret := &cobra.Command{
		Use:   "retention",
		Short: "Disk per block: a fresh local validator under light load, keeping all blocks, then only the last --keep",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ro.Out = g.out
			_, err := bench.RunRetention(ctxOr(cmd.Context()), ro)
			return err
		},
	}
	rf := ret.Flags()
	rf.Int64Var(&ro.Blocks, "blocks", 20_000, "blocks each run produces")
	rf.Int64Var(&ro.Keep, "keep", 1000, "the pruned run's retention.keep_blocks, explorer.keep_blocks and state.keep_recent")
	rf.IntVar(&ro.TxsPerBlock, "txs-per-block", 2, "transfers broadcast per block")
	rf.DurationVar(&ro.BlockTime, "block-time", 5*time.Millisecond, "timeout_commit")
	rf.StringVar(&ro.Dir, "dir", "", "keep the node homes here (default: temp dirs, removed after)")
	rf.BoolVar(&ro.JSON, "json", false, "print the result as JSON")
	cmd.AddCommand(ret)
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
	gw.Flags().StringVar(&go_.MemProfile, "memprofile", "", "write an allocation profile of the measurements (go tool pprof -sample_index=alloc_space)")
	gw.Flags().StringVar(&go_.Only, "only", "", "measure one path only: direct, provider or gateway")
	gw.Flags().StringVar(&go_.Mode, "mode", "", "measure one mode only: json or sse")
	gw.Flags().IntVar(&go_.Rounds, "rounds", 5, "turns over the three paths per measurement (the duration split evenly), so drift on a shared machine hits all paths alike")
	gw.Flags().BoolVar(&go_.Procs, "procs", false, "run the backend, the provider and the gateway each in its own process (default: all in this one)")
	var part struct{ chainRPC, dir, backend string }
	gwPart := &cobra.Command{
		Use:       "gateway-part backend|provider|gateway",
		Short:     "One server of `bench gateway`, run as its own process (started by it)",
		Hidden:    true,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{bench.RoleBackend, bench.RoleProvider, bench.RoleGateway},
		RunE: func(cmd *cobra.Command, args []string) error {
			tuneGC()
			ctx, stop := signal.NotifyContext(ctxOr(cmd.Context()), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return bench.RunGatewayPart(ctx, args[0], part.chainRPC, part.dir, part.backend, os.Stdin, g.out)
		},
	}
	gwPart.Flags().StringVar(&part.chainRPC, "chain-rpc", "", "the bench node's RPC address")
	gwPart.Flags().StringVar(&part.dir, "dir", "", "the bench's state directory")
	gwPart.Flags().StringVar(&part.backend, "backend", "", "the fake backend's base URL (provider)")
	vo := bench.VerifyOptions{}
	var vjson bool
	ver := &cobra.Command{
		Use:   "verify",
		Short: "Audit simulator: detection of cheating providers, audit compute overhead, false slashes (real sampling, reputation and re-execution code)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vo.Out = g.errOut
			res, err := bench.RunVerify(vo)
			if err != nil {
				return err
			}
			if vjson {
				return printer{w: g.out, json: true}.print(res, nil)
			}
			return nil
		},
	}
	ver.Flags().IntVar(&vo.Trials, "trials", 20000, "detection trials per cheat rate and starting reputation")
	ver.Flags().IntVar(&vo.RequestsPerEpoch, "requests-per-epoch", 100, "requests a provider serves per epoch")
	ver.Flags().IntVar(&vo.HonestEpochs, "honest-epochs", 10000, "epochs of the honest provider (false-slash run)")
	ver.Flags().IntVar(&vo.Pool, "pool", 64, "real transcripts generated, honest and fabricated")
	ver.Flags().BoolVar(&vjson, "json", false, "print the result as JSON on stdout")
	to := bench.ToleranceOptions{}
	var tjson bool
	tolc := &cobra.Command{
		Use:   "tolerance",
		Short: "Calibrate the tolerance path: honest GPU-like backends (logit noise) must pass, substituted models and prefill attacks must not",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			to.Out = g.errOut
			res, err := bench.RunTolerance(to)
			if err != nil {
				return err
			}
			if tjson {
				return printer{w: g.out, json: true}.print(res, nil)
			}
			return nil
		},
	}
	tolc.Flags().IntVar(&to.Requests, "requests", 250, "honest requests per noise level")
	tolc.Flags().IntVar(&to.Attacks, "attacks", 40, "cheating requests per attack and setting")
	tolc.Flags().Float64SliceVar(&to.Noise, "noise", []float64{0.005, 0.02, 0.05, 0.1}, "σ of the logit noise of honest backends")
	tolc.Flags().BoolVar(&tjson, "json", false, "print the result as JSON on stdout")
	cmd.AddCommand(chain, gw, gwPart, ver, tolc, benchJobsCmd(g), benchTrainCmd(g), benchTrainAuditCmd(g), benchZKCmd(g))
	return cmd
}
