package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/blobtree"
	"github.com/agoranet/agora/chain/storage"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/keyring"
	"github.com/agoranet/agora/internal/replicastore"
	pdata "github.com/agoranet/agora/protocol/data"
	pstorage "github.com/agoranet/agora/protocol/storage"
	"github.com/agoranet/agora/storer"
)

// storageCmd is `agora storage`: storage deals (chain/storage) for clients
// (deal, status) and providers (prove).
func storageCmd(g *globals) *cobra.Command {
	f := &txFlags{}
	cmd := &cobra.Command{Use: "storage", Short: "Storage deals: pay a provider to keep a blob, proved on chain every epoch"}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.from, "from", "", "name of the signing key (transactions)")
	pf.StringVar(&f.node, "node", defaultNode, "node RPC address")
	pf.StringVar(&f.backend, "keyring", keyring.BackendFile, "keyring backend: file or test")
	pf.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	p := func() printer { return printer{w: g.out, json: f.output == "json"} }

	var epochs, price, collateral uint64
	var k uint32
	var provider string
	var wait time.Duration
	deal := &cobra.Command{Use: "deal FILE", Short: "Create a deal for FILE, upload it to the provider and wait for its acceptance",
		Long: `Escrows epochs × price for FILE (at most 1 GiB), then uploads the file to the
provider (--provider ADDR, or the first registered provider with the storage
capability), which seals its own replica and accepts the deal on chain with
the replica's root. From the next epoch on, the chain challenges k segments of
the file per epoch and pays the provider for each epoch it proves.`,
		Example: `  agora storage deal data.bin --epochs 100 --price 1000 --collateral 5000000 --from demo`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkOutput(f.output); err != nil {
				return err
			}
			if f.from == "" {
				return errors.New("--from is required")
			}
			progress := g.errOut // quiet with -o json: the output is one document
			if f.output == "json" {
				progress = io.Discard
			}
			data, err := os.ReadFile(a[0])
			if err != nil {
				return err
			}
			if len(data) == 0 || len(data) > storage.MaxSize {
				return fmt.Errorf("%s is %d bytes: a deal holds 1 byte to 1 GiB", a[0], len(data))
			}
			priv, err := keyFrom(g.home, f.backend, f.from)
			if err != nil {
				return err
			}
			c, err := client.New(f.node)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctxOr(cmd.Context()), wait)
			defer cancel()
			pv, err := storageProvider(ctx, c, provider)
			if err != nil {
				return err
			}
			id := blobtree.BlobID(uint64(len(data)), blobtree.Root(blobtree.SegmentLeaves(data)))
			msg := &types.MsgCreateDeal{BlobId: id[:], Size: uint64(len(data)), Epochs: epochs, PricePerEpoch: price,
				Collateral: collateral, Challenges: k}
			if provider != "" {
				msg.Provider = pv.Address
			}
			res, err := c.NewSigner(priv).Send(ctx, msg)
			if err != nil {
				return err
			}
			dealID, err := u64(res.Events["deal_id"], "deal id")
			if err != nil {
				return fmt.Errorf("the create_deal tx %s named no deal: %w", res.Hash, err)
			}
			fmt.Fprintf(progress, "deal %d created in block %d (escrow %d uagr); uploading %d bytes to %s at %s ...\n",
				dealID, res.Height, epochs*price, len(data), pv.Address, pv.Endpoint)
			d, err := uploadDeal(ctx, c, priv, dealID, data, pv, progress)
			if err != nil {
				return fmt.Errorf("%w (deal %d stays open: 'agora storage upload %d FILE' offers it to a provider, 'agora storage cancel %d' returns its escrow)",
					err, dealID, dealID, dealID)
			}
			return p().print(d, func(w io.Writer) { printDeal(w, d) })
		}}
	fl := deal.Flags()
	fl.Uint64Var(&epochs, "epochs", 100, "epochs to keep the file")
	fl.Uint64Var(&price, "price", 1000, "uagr paid per proved epoch")
	fl.Uint64Var(&collateral, "collateral", 1_000_000, "uagr the provider locks (slashed gradually on misses)")
	fl.Uint32Var(&k, "k", 16, "segments challenged per epoch (1..16)")
	fl.StringVar(&provider, "provider", "", "the provider that must hold it (default: the first with the storage capability)")
	fl.DurationVar(&wait, "wait", 5*time.Minute, "how long to wait for the upload and the acceptance")

	status := &cobra.Command{Use: "status DEAL_ID", Short: "A deal, its proved and missed epochs, its faults and its open challenge", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := u64(a[0], "deal id")
			if err != nil {
				return err
			}
			if err := checkOutput(f.output); err != nil {
				return err
			}
			c, err := client.New(f.node)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctxOr(cmd.Context()), 30*time.Second)
			defer cancel()
			var out struct {
				Deal      api.StorageDealView       `json:"deal"`
				Epochs    []api.StorageEpochView    `json:"epochs"`
				Faults    []api.StorageFaultView    `json:"faults"`
				Challenge *api.StorageChallengeView `json:"challenge,omitempty"`
			}
			if out.Deal, err = c.StorageDeal(ctx, id); err != nil {
				return err
			}
			if out.Epochs, err = c.StorageEpochs(ctx, id); err != nil {
				return err
			}
			if out.Faults, err = c.StorageFaults(ctx, id); err != nil {
				return err
			}
			if out.Deal.Status == "active" {
				ch, err := c.StorageChallenge(ctx, id)
				if err != nil {
					return err
				}
				out.Challenge = &ch
			}
			return p().print(out, func(w io.Writer) {
				printDeal(w, out.Deal)
				for _, e := range out.Epochs {
					if e.Proved {
						fmt.Fprintf(w, "  epoch %d: proved at %d by %s, paid %d (+%d fee)\n", e.Epoch, e.Height, e.Provider, e.Paid, e.Fee)
					} else {
						fmt.Fprintf(w, "  epoch %d: MISSED by %s (deadline %d), slashed %d\n", e.Epoch, e.Provider, e.Height, e.Slashed)
					}
				}
				for _, fl := range out.Faults {
					drop := ""
					if fl.Dropped {
						drop = fmt.Sprintf(", provider dropped (forfeited %d)", fl.Forfeited)
					}
					fmt.Fprintf(w, "fault %d: epoch %d, %d in a row, slashed %d, refunded %d, score %d%s\n", fl.ID, fl.Epoch, fl.Consecutive, fl.Slashed, fl.Refunded, fl.Score, drop)
				}
				if ch := out.Challenge; ch != nil {
					if len(ch.Indices) == 0 {
						fmt.Fprintf(w, "next challenge: epoch %d, drawn at height %d, due by %d\n", ch.Epoch, ch.SeedHeight, ch.Deadline)
					} else {
						fmt.Fprintf(w, "open challenge: epoch %d, segments %v, due by height %d\n", ch.Epoch, ch.Indices, ch.Deadline)
					}
				}
			})
		}}

	var replicas string
	prove := &cobra.Command{Use: "prove DEAL_ID", Short: "As the deal's provider, answer its open challenge from the replica store", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := u64(a[0], "deal id")
			if err != nil {
				return err
			}
			if f.from == "" {
				return errors.New("--from is required (the deal's provider key)")
			}
			priv, err := keyFrom(g.home, f.backend, f.from)
			if err != nil {
				return err
			}
			c, err := client.New(f.node)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctxOr(cmd.Context()), 90*time.Second)
			defer cancel()
			d, err := c.StorageDeal(ctx, id)
			if err != nil {
				return err
			}
			signer := c.NewSigner(priv)
			if d.Provider.String() != signer.Address().String() {
				return fmt.Errorf("deal %d's provider is %s, not %s (--from)", id, d.Provider, signer.Address())
			}
			ch, err := c.StorageChallenge(ctx, id)
			if err != nil {
				return err
			}
			if len(ch.Indices) == 0 {
				return fmt.Errorf("deal %d: epoch %d is not challenged yet (its seed is drawn at height %d)", id, ch.Epoch, ch.SeedHeight)
			}
			if replicas == "" {
				replicas = storer.ReplicaDir(filepath.Join(g.home, "data", "storer"))
			}
			if _, err := os.Stat(replicas); err != nil {
				return fmt.Errorf("replica store: %w", err)
			}
			rs, err := replicastore.Open(replicas)
			if err != nil {
				return err
			}
			ps, err := rs.Prove([32]byte(d.BlobID), ch.Indices)
			if err != nil {
				return fmt.Errorf("deal %d epoch %d: %w", id, ch.Epoch, err)
			}
			msg := &types.MsgProveStorage{DealId: id, Epoch: ch.Epoch}
			for i := range ps {
				msg.Proofs = append(msg.Proofs, storage.ProofOf(&ps[i]))
			}
			res, err := signer.Send(ctx, msg)
			if err != nil {
				return err
			}
			return p().print(res, func(w io.Writer) {
				fmt.Fprintf(w, "deal %d epoch %d proved in block %d (%d challenges): paid %s uagr, fee %d\n", id, ch.Epoch, res.Height, len(ch.Indices), res.Events["paid"], res.Fee)
			})
		}}
	prove.Flags().StringVar(&replicas, "replicas", "", "the replica store directory (default HOME/data/storer/replicas, provider start --storage's)")

	cancelDeal := &cobra.Command{Use: "cancel DEAL_ID", Short: "As the client, withdraw a deal no provider holds and get its escrow back", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return broadcast(cmd.Context(), g, f, func(a []string) (any, error) {
				id, err := u64(a[0], "deal id")
				return &types.MsgCancelDeal{DealId: id}, err
			}, a)
		}}

	var upProvider string
	var upWait time.Duration
	upload := &cobra.Command{Use: "upload DEAL_ID FILE", Short: "As the client, offer an open deal's file to a provider (a deal reopened after its provider was dropped)",
		Long: `Uploads FILE (it must hash to the deal's blob ID) to a storage provider
(--provider ADDR, or the first registered one the deal has not dropped),
which seals its own replica and accepts the deal; waits for the acceptance.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkOutput(f.output); err != nil {
				return err
			}
			id, err := u64(a[0], "deal id")
			if err != nil {
				return err
			}
			if f.from == "" {
				return errors.New("--from is required")
			}
			progress := g.errOut
			if f.output == "json" {
				progress = io.Discard
			}
			data, err := os.ReadFile(a[1])
			if err != nil {
				return err
			}
			priv, err := keyFrom(g.home, f.backend, f.from)
			if err != nil {
				return err
			}
			c, err := client.New(f.node)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctxOr(cmd.Context()), upWait)
			defer cancel()
			d, err := c.StorageDeal(ctx, id)
			if err != nil {
				return err
			}
			switch {
			case d.Status != "open":
				return fmt.Errorf("deal %d is %s: only an open deal takes a provider", id, d.Status)
			case blobtree.BlobID(uint64(len(data)), blobtree.Root(blobtree.SegmentLeaves(data))) != [32]byte(d.BlobID):
				return fmt.Errorf("%s is not deal %d's file (blob %s, %d bytes)", a[1], id, d.BlobID, d.Size)
			}
			named := upProvider
			if named == "" && len(d.NamedProvider) != 0 {
				named = d.NamedProvider.String()
			}
			pv, err := storageProvider(ctx, c, named, d.Dropped...)
			if err != nil {
				return err
			}
			fmt.Fprintf(progress, "uploading %d bytes of deal %d to %s at %s ...\n", len(data), id, pv.Address, pv.Endpoint)
			if d, err = uploadDeal(ctx, c, priv, id, data, pv, progress); err != nil {
				return err
			}
			return p().print(d, func(w io.Writer) { printDeal(w, d) })
		}}
	upload.Flags().StringVar(&upProvider, "provider", "", "the provider to offer it to (default: the first with the storage capability the deal has not dropped)")
	upload.Flags().DurationVar(&upWait, "wait", 5*time.Minute, "how long to wait for the upload and the acceptance")

	var outFile string
	get := &cobra.Command{Use: "get DEAL_ID -O FILE", Short: "As the client, fetch a deal's file back from its provider, checked against the blob ID",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := u64(a[0], "deal id")
			if err != nil {
				return err
			}
			if f.from == "" || outFile == "" {
				return errors.New("--from (the deal's client) and -O FILE are required")
			}
			priv, err := keyFrom(g.home, f.backend, f.from)
			if err != nil {
				return err
			}
			c, err := client.New(f.node)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctxOr(cmd.Context()), 10*time.Minute)
			defer cancel()
			d, err := c.StorageDeal(ctx, id)
			if err != nil {
				return err
			}
			if len(d.Provider) == 0 {
				return fmt.Errorf("deal %d (%s) has no provider holding it", id, d.Status)
			}
			pv, err := c.Provider(ctx, d.Provider)
			if err != nil {
				return err
			}
			chainID, err := c.ChainID(ctx)
			if err != nil {
				return err
			}
			n, err := getDeal(ctx, priv, chainID, pv.Endpoint, d, outFile)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "deal %d: %d bytes from %s → %s, blob %s checked\n", id, n, d.Provider, outFile, d.BlobID)
			return nil
		}}
	get.Flags().StringVarP(&outFile, "out-file", "O", "", "where to write the file")

	cmd.AddCommand(deal, status, prove, cancelDeal, upload, get)
	return cmd
}

// uploadDeal sends a deal's bytes to provider pv (signed by the deal's
// client), which seals and accepts it, and waits for the acceptance.
func uploadDeal(ctx context.Context, c *client.Client, priv ed25519.PrivateKey, dealID uint64, data []byte, pv api.ProviderView, progress io.Writer) (api.StorageDealView, error) {
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return api.StorageDealView{}, err
	}
	id := blobtree.BlobID(uint64(len(data)), blobtree.Root(blobtree.SegmentLeaves(data)))
	st, err := pstorage.Put(ctx, http.DefaultClient, pv.Endpoint, dealID, pstorage.SignUpload(priv, chainID, dealID, id[:]), data)
	if err != nil {
		return api.StorageDealView{}, err
	}
	fmt.Fprintf(progress, "provider sealed replica %s\n", st.ReplicaRoot)
	for {
		d, err := c.StorageDeal(ctx, dealID)
		if err == nil && d.Status != "open" {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return d, fmt.Errorf("deal %d not accepted: %w", dealID, ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// getDeal downloads deal d's bytes from the provider at endpoint into
// path (through a temp file, renamed once the bytes hash to the deal's
// blob ID) and returns their size.
func getDeal(ctx context.Context, priv ed25519.PrivateKey, chainID, endpoint string, d api.StorageDealView, path string) (int64, error) {
	route := pstorage.UploadPath(d.ID) // the same path: GET gives the bytes back
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(endpoint, "/")+route, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set(pdata.AuthHeader, pdata.SignAuth(priv, chainID, http.MethodGet, route, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("provider %s: %s: %s", d.Provider, resp.Status, strings.TrimSpace(string(b)))
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".agora-get-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(d.Size)+1))
	if err != nil {
		return 0, fmt.Errorf("provider %s: %w", d.Provider, err)
	}
	if got := blobtree.BlobID(uint64(len(data)), blobtree.Root(blobtree.SegmentLeaves(data))); got != [32]byte(d.BlobID) {
		return 0, fmt.Errorf("provider %s sent %d bytes hashing to blob %x, not the deal's %s", d.Provider, len(data), got[:], d.BlobID)
	}
	if _, err := tmp.Write(data); err != nil {
		return 0, err
	}
	if err := tmp.Sync(); err != nil {
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	return int64(len(data)), os.Rename(tmp.Name(), path)
}

// storageProvider is the provider named by addr, or the first registered
// provider with the storage capability.
func storageProvider(ctx context.Context, c *client.Client, addr string, skip ...types.Address) (api.ProviderView, error) {
	if addr != "" {
		a, err := types.ParseAddress(addr)
		if err != nil {
			return api.ProviderView{}, fmt.Errorf("--provider: %w", err)
		}
		pv, err := c.Provider(ctx, a)
		if err != nil {
			return pv, err
		}
		if !pv.Registered || !slices.Contains(pv.Capabilities, storage.Capability) {
			return pv, fmt.Errorf("provider %s is not registered with the storage capability", a)
		}
		return pv, nil
	}
	pvs, err := client.View[[]api.ProviderView](ctx, c, api.ProvidersPath, 0)
	if err != nil {
		return api.ProviderView{}, err
	}
	for _, pv := range pvs {
		if pv.Registered && !pv.Jailed && slices.Contains(pv.Capabilities, storage.Capability) &&
			!slices.ContainsFunc(skip, func(a types.Address) bool { return a.String() == pv.Address.String() }) {
			return pv, nil
		}
	}
	return api.ProviderView{}, errors.New("no registered provider has the storage capability (agora provider start --storage)")
}

func printDeal(w io.Writer, d api.StorageDealView) {
	fmt.Fprintf(w, "deal %d: %s, blob %s (%d bytes), k=%d\n", d.ID, d.Status, d.BlobID, d.Size, d.Challenges)
	fmt.Fprintf(w, "  client %s, provider %s, replica root %s\n", d.Client, d.Provider, d.ReplicaRoot)
	fmt.Fprintf(w, "  epochs %d/%d done: %d proved, %d missed (%d in a row); score %d bps\n", d.EpochsDone, d.Epochs, d.Proved, d.Missed, d.ConsecutiveMisses, d.Score)
	fmt.Fprintf(w, "  price %d per epoch; escrow %d, collateral locked %d; paid %d, fees %d, refunded %d, slashed %d\n",
		d.PricePerEpoch, d.Escrow, d.Locked, d.Paid, d.Fees, d.Refunded, d.Slashed)
	if d.Reopened > 0 {
		fmt.Fprintf(w, "  reopened %d time(s); dropped %v\n", d.Reopened, d.Dropped)
	}
}
