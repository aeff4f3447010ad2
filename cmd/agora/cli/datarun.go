package cli

// `agora data run` and `agora data download`, and the upload step of
// `agora data publish`: the data market's off-chain side
// (internal/dataclient).

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine/wasm/examples"
	"github.com/agoranet/agora/internal/dataclient"
	"github.com/agoranet/agora/protocol/blob"
	pjobs "github.com/agoranet/agora/protocol/jobs"
)

func init() { publishUpload = uploadDataset }

// uploadDataset sends a just-published dataset's bytes to its host.
func uploadDataset(ctx context.Context, g *globals, c *client.Client, owner ed25519.PrivateKey, ds api.DatasetView, src *datasetSource) error {
	r, err := src.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	fmt.Fprintf(g.errOut, "uploading dataset %d (%d bytes) to its host %s ...\n", ds.ID, ds.Size, ds.Host)
	if err := dataclient.Upload(ctx, c, owner, ds, r, int64(src.Size)); err != nil {
		return err
	}
	fmt.Fprintf(g.errOut, "dataset %d uploaded to its host\n", ds.ID)
	return nil
}

// dataRunCmd is `agora data run`: a compute-to-data order on a dataset.
func dataRunCmd(g *globals, f *txFlags) *cobra.Command {
	s := &dataclient.RunSpec{}
	var module, example, out string
	var wait time.Duration
	cmd := &cobra.Command{Use: "run DATASET_ID --module FILE|BLOB_ID", Short: "Run a module on a dataset where it lives (compute-to-data); the results come back sealed to your key, checked against the chain",
		Long: `Posts a compute-to-data order: the module runs on the dataset's host with the
dataset's files read-only under /data, no network, its output capped by the
dataset's terms. The order escrows the gas budget (--gas × --max-price) and the
dataset's run price, paid to its owner only if the run succeeds. The results
are sealed to the --from key (X25519 of its ed25519 key): run decrypts them,
checks the plaintext result list against the hash the chain committed, and
writes the outputs under --out.`,
		Example: `  agora data run 1 --module ngram.wasm --args 20 --from buyer
  agora data run 1 --module 5f3c...e1 --gas 20000000000 --max-price 1000 --from buyer
  agora data run 2 --example train --args tiny,200,1 --gas 2010000000000 --memory-pages 2048 --checkpoint-interval 1 --from buyer`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := u64(a[0], "dataset id")
			if err != nil {
				return err
			}
			if err := checkOutput(f.output); err != nil {
				return err
			}
			if f.from == "" {
				return fmt.Errorf("--from is required")
			}
			if (module == "") == (example == "") {
				return fmt.Errorf("give --module FILE.wasm, --module BLOB_ID or --example NAME")
			}
			s.Dataset = id
			if example != "" {
				fmt.Fprintf(g.errOut, "building example %s (GOOS=wasip1 GOARCH=wasm) ...\n", example)
				if s.Module, err = examples.Build(ctxOr(cmd.Context()), example); err != nil {
					return err
				}
			} else if h, err := hex32(module, "--module"); err == nil {
				copy(s.ModuleID[:], h)
			} else if s.Module, err = os.ReadFile(module); err != nil {
				return fmt.Errorf("--module %q: neither a 64-hex blob ID nor a readable file: %w", module, err)
			}
			key, err := keyFrom(g.home, f.backend, f.from)
			if err != nil {
				return err
			}
			c, err := client.New(f.node)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctxOr(cmd.Context()), wait)
			defer cancel()
			start := time.Now()
			sub, err := dataclient.Submit(ctx, c, key, s)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.errOut, "order %d on dataset %d leased to its host (lease %d); running ...\n", sub.Order, id, sub.Lease.ID)
			if out == "" {
				out = fmt.Sprintf("run-%d", sub.Order)
			}
			res, l, err := dataclient.Wait(ctx, c, key, sub.Order, out, 0)
			if err != nil {
				return err
			}
			type file struct {
				Name string `json:"name"`
				Size uint64 `json:"size"`
				Path string `json:"path"`
			}
			rep := struct {
				Dataset uint64 `json:"dataset"`
				Order   uint64 `json:"order"`
				Lease   uint64 `json:"lease"`
				Results string `json:"results"`
				Status  string `json:"status"`
				Failure string `json:"failure,omitempty"`
				GasUsed uint64 `json:"gas_used"`
				Files   []file `json:"files"`
			}{Dataset: id, Order: sub.Order, Lease: l.ID, Results: res.List.ID().String(), Status: "done", GasUsed: l.GasUsed}
			if res.Failed {
				rep.Status, rep.Failure = "failed", string(res.Outputs[pjobs.FailureOutput])
			}
			for _, o := range res.List.Outputs {
				rep.Files = append(rep.Files, file{o.Name, o.Size, filepath.Join(out, filepath.FromSlash(o.Name))})
			}
			err = printer{w: cmd.OutOrStdout(), json: f.output == "json"}.print(rep, func(w io.Writer) {
				fmt.Fprintf(w, "dataset %d, order %d, lease %d: %s, %d gas; sealed results decrypted, result list %s matches the chain (%v)\n",
					id, sub.Order, l.ID, rep.Status, l.GasUsed, rep.Results, time.Since(start).Round(time.Millisecond))
				if rep.Failure != "" {
					fmt.Fprintf(w, "failure: %s\n", rep.Failure)
				}
				for _, fl := range rep.Files {
					fmt.Fprintf(w, "  %s  %d bytes → %s\n", fl.Name, fl.Size, fl.Path)
				}
			})
			if err == nil && res.Failed {
				return fmt.Errorf("the run on dataset %d failed: %s", id, rep.Failure)
			}
			return err
		}}
	fl := cmd.Flags()
	fl.StringVar(&module, "module", "", "the module: a .wasm file (uploaded to the host) or its blob ID (the host must hold it)")
	fl.StringVar(&example, "example", "", "or build an example job as the module: "+strings.Join(append(examples.Names, examples.InModule...), ", ")+" (train: from inside an Agora checkout)")
	fl.StringSliceVar(&s.Args, "args", nil, "the module's arguments (comma-separated)")
	fl.Uint64Var(&s.Gas, "gas", 20_000_000_000, "gas limit")
	fl.Uint64Var(&s.MaxPrice, "max-price", 1_000, "the most you pay for gas, uagr per million gas")
	fl.Uint64Var(&s.MaxRunPrice, "max-run-price", 0, "refuse if the dataset's run price is above this, uagr (0: any)")
	fl.Uint32Var(&s.MemoryPages, "memory-pages", 1024, "memory limit in 64 KiB pages")
	fl.Uint64Var(&s.Collateral, "collateral", 1_000_000, "collateral the host locks, uagr")
	fl.Int64Var(&s.BidWindow, "bid-window", 5, "blocks of bidding (the host polls the chain every half second)")
	fl.Int64Var(&s.DeadlineIn, "deadline-in", 1000, "blocks from now after which no work is paid")
	fl.Uint64Var(&s.Interval, "checkpoint-interval", 1_000, "steps between checkpoints")
	fl.Int64Var(&s.Liveness, "liveness", 0, "blocks the host may go without a checkpoint before the run is abandoned (0: the chain's default; raise it when an interval takes long to compute)")
	fl.StringVar(&out, "out", "", "directory for the decrypted outputs (default run-ORDER_ID)")
	fl.DurationVar(&wait, "wait", 10*time.Minute, "how long to wait for the result")
	return cmd
}

// dataDownloadCmd is `agora data download`: a dataset's raw bytes, for a
// grant's holder (or its owner or auditors).
func dataDownloadCmd(g *globals, f *txFlags) *cobra.Command {
	var out string
	var wait time.Duration
	cmd := &cobra.Command{Use: "download DATASET_ID -O FILE", Short: "Download a dataset's bytes from its host (needs a grant: agora data buy), every chunk checked against its root on chain",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := u64(a[0], "dataset id")
			if err != nil {
				return err
			}
			if err := checkOutput(f.output); err != nil {
				return err
			}
			if f.from == "" {
				return fmt.Errorf("--from is required (the key holding the grant)")
			}
			key, err := keyFrom(g.home, f.backend, f.from)
			if err != nil {
				return err
			}
			c, err := client.New(f.node)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctxOr(cmd.Context()), wait)
			defer cancel()
			if out == "" {
				out = fmt.Sprintf("dataset-%d", id)
			}
			start := time.Now()
			d, err := dataclient.Download(ctx, c, key, id, out, nil)
			if err != nil {
				return err
			}
			rep := struct {
				Dataset uint64 `json:"dataset"`
				Root    string `json:"root"`
				Size    uint64 `json:"size"`
				Path    string `json:"path"`
			}{id, blob.ID(d.Root).String(), d.Size, out}
			return printer{w: cmd.OutOrStdout(), json: f.output == "json"}.print(rep, func(w io.Writer) {
				fmt.Fprintf(w, "dataset %d: %d bytes → %s, every chunk checked against root %s (%v)\n", id, d.Size, out, rep.Root, time.Since(start).Round(time.Millisecond))
			})
		}}
	cmd.Flags().StringVarP(&out, "out-file", "O", "", "where to write the bytes (default dataset-ID)")
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Minute, "how long the download may take")
	return cmd
}

// dataUploadCmd is `agora data upload`: (re)send a published dataset's
// bytes to its host, as the owner.
func dataUploadCmd(g *globals, f *txFlags) *cobra.Command {
	return &cobra.Command{Use: "upload DATASET_ID PATH", Short: "Send your published dataset's bytes (the file or directory published) to its host",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := u64(a[0], "dataset id")
			if err != nil {
				return err
			}
			if f.from == "" {
				return fmt.Errorf("--from is required (the dataset's owner)")
			}
			key, err := keyFrom(g.home, f.backend, f.from)
			if err != nil {
				return err
			}
			src, err := loadDatasetSource(a[1])
			if err != nil {
				return err
			}
			c, err := client.New(f.node)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctxOr(cmd.Context()), 30*time.Minute)
			defer cancel()
			ds, err := c.Dataset(ctx, id)
			if err != nil {
				return err
			}
			if blob.ID(ds.Root) != src.ID || ds.Size != src.Size {
				return fmt.Errorf("%s is %s (%d bytes), dataset %d is %s (%d bytes)", a[1], src.ID, src.Size, id, blob.ID(ds.Root), ds.Size)
			}
			if err := uploadDataset(ctx, g, c, key, ds, src); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "dataset %d: %d bytes stored by its host %s\n", id, ds.Size, ds.Host)
			return nil
		}}
}
