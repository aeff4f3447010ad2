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
	addrArg := func(s string) (types.Address, error) { return types.ParseAddress(s) }
	simple := func(use, short, prefix string, nargs int, mk func() any) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(nargs), RunE: func(cmd *cobra.Command, a []string) error {
			path := prefix
			for _, s := range a {
				path += "/" + s
			}
			return q(cmd, path, mk(), nil)
		}}
	}
	cmd.AddCommand(
		&cobra.Command{Use: "account ADDRESS", Short: "Balance and nonce of an account", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, a []string) error {
			ad, err := addrArg(a[0])
			if err != nil {
				return err
			}
			var v api.AccountView
			return q(cmd, "/account/"+ad.String(), &v, func(w io.Writer) {
				fmt.Fprintf(w, "address: %s\nbalance: %d uagr\nnonce: %d\n", v.Address, v.Balance, v.Nonce)
			})
		}},
		simple("validators", "All validators with bond and voting power", "/validators", 0, func() any { return &[]api.ValidatorView{} }),
		simple("validator OPERATOR", "One validator", "/validator", 1, func() any { return &api.ValidatorView{} }),
		simple("unbondings ADDRESS", "Pending unbondings of an account", "/unbondings", 1, func() any { return &[]api.UnbondingView{} }),
		simple("providers", "All providers", "/providers", 0, func() any { return &[]api.ProviderView{} }),
		simple("provider ADDRESS", "One provider", "/provider", 1, func() any { return &api.ProviderView{} }),
		&cobra.Command{Use: "providers-for-model SHA256_HEX", Short: "Registered providers offering a model", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, a []string) error {
			return q(cmd, "/providers/model/"+a[0], &[]api.ProviderView{}, nil)
		}},
		simple("channel ID", "One payment channel", "/channel", 1, func() any { return &api.ChannelView{} }),
		&cobra.Command{Use: "channels client|provider ADDRESS", Short: "Channels of a client or a provider", Args: cobra.ExactArgs(2), RunE: func(cmd *cobra.Command, a []string) error {
			if a[0] != "client" && a[0] != "provider" {
				return fmt.Errorf("first argument must be client or provider")
			}
			return q(cmd, "/channels/"+a[0]+"/"+a[1], &[]api.ChannelView{}, nil)
		}},
		simple("epoch N|latest", "A closed epoch: heights, deadlines, seed", "/epoch", 1, func() any { return &api.EpochView{} }),
		simple("commitments EPOCH", "Receipt commitments of an epoch", "/commitments", 1, func() any { return &[]api.CommitmentView{} }),
		simple("commitment EPOCH PROVIDER", "One provider's commitment for an epoch", "/commitment", 2, func() any { return &api.CommitmentView{} }),
		simple("params", "Chain parameters", "/params", 0, func() any { return &types.Params{} }),
		simple("supply", "Total supply and module accounts", "/supply", 0, func() any { return &api.SupplyView{} }),
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
