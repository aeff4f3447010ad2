package cli

import (
	"context"
	"encoding/hex"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
)

func queryCmd(g *globals) *cobra.Command {
	var nodeAddr, output string
	var height int64
	cmd := &cobra.Command{Use: "query", Aliases: []string{"q"}, Short: "Read chain state"}
	pf := cmd.PersistentFlags()
	pf.StringVar(&nodeAddr, "node", defaultNode, "node RPC address")
	pf.StringVarP(&output, "output", "o", "text", "output format: text or json")
	pf.Int64Var(&height, "height", 0, "state at this height (0: latest)")

	// q runs a JSON query path and prints the answer; text is an optional summary.
	q := func(cmd *cobra.Command, path string, out any, text func(io.Writer)) error {
		if err := checkOutput(output); err != nil {
			return err
		}
		c, err := client.New(nodeAddr)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctxOr(cmd.Context()), 30*time.Second)
		defer cancel()
		if err := c.Query(ctx, path, height, out); err != nil {
			return err
		}
		return printer{w: g.out, json: output == "json"}.print(out, text)
	}
	// byAddr and byNum make a command whose one argument (an address or a
	// number) goes into its chain/api path builder.
	byAddr := func(use, short string, path func(types.Address) string, mk func() any) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, a []string) error {
			ad, err := types.ParseAddress(a[0])
			if err != nil {
				return err
			}
			return q(cmd, path(ad), mk(), nil)
		}}
	}
	byNum := func(use, short, what string, path func(uint64) string, mk func() any) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, a []string) error {
			n, err := u64(a[0], what)
			if err != nil {
				return err
			}
			return q(cmd, path(n), mk(), nil)
		}}
	}
	fixed := func(use, short, path string, mk func() any) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			return q(cmd, path, mk(), nil)
		}}
	}
	var service string
	commitment := &cobra.Command{Use: "commitment EPOCH PROVIDER", Short: "One provider's commitment for an epoch (of --service, default inference)", Args: cobra.ExactArgs(2), RunE: func(cmd *cobra.Command, a []string) error {
		n, err := u64(a[0], "epoch")
		if err != nil {
			return err
		}
		ad, err := types.ParseAddress(a[1])
		if err != nil {
			return err
		}
		path := api.CommitmentPath(n, ad)
		if service != "" {
			path = api.ServiceCommitmentPath(n, service, ad)
		}
		return q(cmd, path, &api.CommitmentView{}, nil)
	}}
	commitment.Flags().StringVar(&service, "service", "", "the kind of work committed (default: inference)")
	// agora query job ...: the job market's records (chain/jobs).
	job := &cobra.Command{Use: "job", Short: "Compute-job market: orders, bids, leases, checkpoints, disputes, sampled checkpoints"}
	job.AddCommand(
		byNum("order ID", "One job order", "order id", api.JobOrderPath, func() any { return &api.JobOrderView{} }),
		byNum("bids ORDER_ID", "An order's open bids", "order id", api.JobBidsPath, func() any { return &[]api.JobBidView{} }),
		byNum("lease ID", "One lease", "lease id", api.JobLeasePath, func() any { return &api.JobLeaseView{} }),
		byNum("checkpoints LEASE_ID", "A lease's committed checkpoints", "lease id", api.JobCheckpointsPath, func() any { return &[]api.JobCheckpointView{} }),
		byNum("dispute ID", "A dispute over a checkpoint", "dispute id", api.JobDisputePath, func() any { return &api.JobDisputeView{} }),
		byNum("sample EPOCH", "Checkpoints of an epoch validators must re-execute (once its seed is drawn)", "epoch", api.JobSamplePath, func() any { return &[]api.JobSampleView{} }),
		fixed("open-disputes", "Unresolved disputes, soonest deadline first", api.JobOpenDisputesPath, func() any { return &[]api.JobDisputeView{} }),
		byNum("disputes LEASE_ID", "The disputes over a lease's checkpoints", "lease id", api.JobLeaseDisputesPath, func() any { return &[]api.JobDisputeView{} }),
		byAddr("orders OWNER", "An owner's orders", api.JobOrdersByOwnerPath, func() any { return &[]api.JobOrderView{} }),
		byAddr("leases PROVIDER", "A provider's leases", api.JobLeasesByProviderPath, func() any { return &[]api.JobLeaseView{} }),
		&cobra.Command{Use: "status STATUS", Short: "Orders in a status: bidding, running, done, unmatched, cancelled, ended", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, a []string) error {
			if _, ok := api.ParseJobStatus(a[0]); !ok {
				return fmt.Errorf("unknown job status %q", a[0])
			}
			return q(cmd, api.JobOrdersByStatusPath(a[0]), &[]api.JobOrderView{}, nil)
		}},
	)
	cmd.AddCommand(job)
	// agora query data ...: the data market's records (chain/data).
	dataQ := &cobra.Command{Use: "data", Short: "Data market: datasets, download grants, compute-to-data runs"}
	dataQ.AddCommand(
		byNum("dataset ID", "One dataset", "dataset id", api.DatasetPath, func() any { return &api.DatasetView{} }),
		fixed("datasets", "Every dataset, oldest first", api.DatasetsPath(), func() any { return &[]api.DatasetView{} }),
		byAddr("owned OWNER", "An owner's datasets", api.DatasetsByOwnerPath, func() any { return &[]api.DatasetView{} }),
		byNum("grant ID", "One download grant", "grant id", api.DataGrantPath, func() any { return &api.DataGrantView{} }),
		&cobra.Command{Use: "grants DATASET_ID [BUYER]", Short: "A dataset's grants (only BUYER's if given)", Args: cobra.RangeArgs(1, 2), RunE: func(cmd *cobra.Command, a []string) error {
			n, err := u64(a[0], "dataset id")
			if err != nil {
				return err
			}
			var buyer types.Address
			if len(a) == 2 {
				if buyer, err = types.ParseAddress(a[1]); err != nil {
					return err
				}
			}
			return q(cmd, api.DataGrantsPath(n, buyer), &[]api.DataGrantView{}, nil)
		}},
		byAddr("bought BUYER", "A buyer's grants on every dataset", api.DataGrantsByBuyerPath, func() any { return &[]api.DataGrantView{} }),
		byNum("runs DATASET_ID", "The compute-to-data orders on a dataset", "dataset id", api.JobOrdersByDatasetPath, func() any { return &[]api.JobOrderView{} }),
	)
	cmd.AddCommand(dataQ)
	cmd.AddCommand(
		&cobra.Command{Use: "account ADDRESS", Short: "Balance and nonce of an account", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, a []string) error {
			ad, err := types.ParseAddress(a[0])
			if err != nil {
				return err
			}
			var v api.AccountView
			return q(cmd, api.AccountPath(ad), &v, func(w io.Writer) {
				fmt.Fprintf(w, "address: %s\nbalance: %d uagr\nnonce: %d\n", v.Address, v.Balance, v.Nonce)
			})
		}},
		fixed("validators", "All validators with bond and voting power", api.ValidatorsPath, func() any { return &[]api.ValidatorView{} }),
		byAddr("validator OPERATOR", "One validator", api.ValidatorPath, func() any { return &api.ValidatorView{} }),
		byAddr("unbondings ADDRESS", "Pending unbondings of an account", api.UnbondingsPath, func() any { return &[]api.UnbondingView{} }),
		fixed("providers", "All providers", api.ProvidersPath, func() any { return &[]api.ProviderView{} }),
		byAddr("provider ADDRESS", "One provider", api.ProviderPath, func() any { return &api.ProviderView{} }),
		&cobra.Command{Use: "providers-for-model SHA256_HEX", Short: "Registered providers offering a model", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, a []string) error {
			h, err := hex.DecodeString(a[0])
			if err != nil || len(h) != types.HashLen {
				return fmt.Errorf("model hash must be %d hex bytes", types.HashLen)
			}
			return q(cmd, api.ProvidersForModelPath(h), &[]api.ProviderView{}, nil)
		}},
		byNum("channel ID", "One payment channel", "channel id", api.ChannelPath, func() any { return &api.ChannelView{} }),
		&cobra.Command{Use: "channels client|provider ADDRESS", Short: "Channels of a client or a provider", Args: cobra.ExactArgs(2), RunE: func(cmd *cobra.Command, a []string) error {
			ad, err := types.ParseAddress(a[1])
			if err != nil {
				return err
			}
			switch a[0] {
			case "client":
				return q(cmd, api.ClientChannelsPath(ad), &[]api.ChannelView{}, nil)
			case "provider":
				return q(cmd, api.ProviderChannelsPath(ad), &[]api.ChannelView{}, nil)
			}
			return fmt.Errorf("first argument must be client or provider")
		}},
		&cobra.Command{Use: "epoch N|latest", Short: "A closed epoch: heights, deadlines, seed", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, a []string) error {
			if a[0] == "latest" {
				return q(cmd, api.LatestEpochPath, &api.EpochView{}, nil)
			}
			n, err := u64(a[0], "epoch")
			if err != nil {
				return err
			}
			return q(cmd, api.EpochPath(n), &api.EpochView{}, nil)
		}},
		byNum("commitments EPOCH", "Commitments of an epoch", "epoch", api.CommitmentsPath, func() any { return &[]api.CommitmentView{} }),
		commitment,
		fixed("params", "Chain parameters", api.ParamsPath, func() any { return &types.Params{} }),
		fixed("supply", "Total supply and module accounts", api.SupplyPath, func() any { return &api.SupplyView{} }),
		&cobra.Command{Use: "tx HASH", Short: "A committed tx by hash", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, a []string) error {
			c, err := client.New(nodeAddr)
			if err != nil {
				return err
			}
			res, err := c.Tx(ctxOr(cmd.Context()), a[0])
			if err != nil {
				return err
			}
			return printer{w: g.out, json: true}.print(res, nil)
		}},
		&cobra.Command{Use: "proof KEY_HEX", Short: "Read a raw state key with a Merkle proof verified against the signed app hash", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, a []string) error {
			key, err := hex.DecodeString(a[0])
			if err != nil {
				return fmt.Errorf("key: %w", err)
			}
			c, err := client.New(nodeAddr)
			if err != nil {
				return err
			}
			val, h, err := c.VerifiedStore(ctxOr(cmd.Context()), key, height)
			if err != nil {
				return err
			}
			out := map[string]any{"height": h, "key": hex.EncodeToString(key), "value": hex.EncodeToString(val), "exists": val != nil, "verified": true}
			return printer{w: g.out, json: output == "json"}.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "height %d: key %x exists=%v, proof verified against the app hash in header %d\nvalue: %x\n", h, key, val != nil, h+1, val)
			})
		}},
		&cobra.Command{Use: "status", Short: "Node status", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client.New(nodeAddr)
			if err != nil {
				return err
			}
			st, err := c.Status(ctxOr(cmd.Context()))
			if err != nil {
				return err
			}
			out := map[string]any{
				"chain_id": st.NodeInfo.Network, "moniker": st.NodeInfo.Moniker, "height": st.SyncInfo.LatestBlockHeight,
				"app_hash": st.SyncInfo.LatestAppHash.String(), "block_time": st.SyncInfo.LatestBlockTime, "catching_up": st.SyncInfo.CatchingUp,
			}
			return printer{w: g.out, json: output == "json"}.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "chain %s, height %d, app hash %s, catching up %v\n", st.NodeInfo.Network, st.SyncInfo.LatestBlockHeight, st.SyncInfo.LatestAppHash, st.SyncInfo.CatchingUp)
			})
		}},
	)
	return cmd
}
