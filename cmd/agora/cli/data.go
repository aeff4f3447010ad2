package cli

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
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/keyring"
	"github.com/agoranet/agora/protocol/blob"
	pdata "github.com/agoranet/agora/protocol/data"
)

// datasetSource is the bytes a dataset publishes: a file as it is, or the
// deterministic tar (protocol/data) of a directory, made again on each
// Open (it depends on names and bytes only, so each Open gives the same
// blob).
type datasetSource struct {
	Path    string
	Members []pdata.Member // a directory's files, in tar order; nil for a file
	Size    uint64
	ID      blob.ID
}

// Open streams the dataset's bytes.
func (s *datasetSource) Open() (io.ReadCloser, error) {
	if s.Members == nil {
		return os.Open(s.Path)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(pdata.WriteTar(pw, s.Members)) }()
	return pr, nil
}

// loadDatasetSource reads path (a file or a directory) and computes its
// blob ID and size.
func loadDatasetSource(path string) (*datasetSource, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	s := &datasetSource{Path: path}
	if st.IsDir() {
		if s.Members, err = pdata.Members(path); err != nil {
			return nil, err
		}
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file or a directory", path)
	}
	r, err := s.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	m, err := blob.Compute(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if m.Size == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	s.ID, s.Size = m.ID(), m.Size
	return s, nil
}

// publishUpload, when set, sends a just-published dataset's bytes to its
// host (signed with the owner's key): the data-host part of `agora data
// publish`. Unset, publish only puts the dataset on chain.
var publishUpload func(ctx context.Context, g *globals, c *client.Client, owner ed25519.PrivateKey, ds api.DatasetView, src *datasetSource) error

// dataTerms are the terms flags publish and update share.
type dataTerms struct {
	description, licence string
	download             bool
	downloadPrice        uint64
	runPrice             uint64
	modules              []string
	anyModule            bool
	outputCap            uint64
	buyers, auditors     []string
	anyone, noAuditors   bool
}

func (t *dataTerms) register(cmd *cobra.Command, update bool) {
	fl := cmd.Flags()
	fl.StringVar(&t.description, "description", "", "what the data is")
	fl.StringVar(&t.licence, "licence", "", "the licence it is sold under")
	fl.BoolVar(&t.download, "download", false, "sell raw downloads (grants) at --download-price")
	fl.Uint64Var(&t.downloadPrice, "download-price", 0, "uagr per download grant (with --download)")
	fl.Uint64Var(&t.runPrice, "run-price", 0, "uagr per compute-to-data run, paid to you when a run succeeds")
	fl.StringArrayVar(&t.modules, "allow-module", nil, "a module that may run on the data: its blob ID (hex) or its .wasm file; repeatable (none: any module, aggregate output only)")
	fl.Uint64Var(&t.outputCap, "output-cap", 0, "bytes of output a run may deliver (default: 1 MiB with --allow-module, else the chain's max_aggregate_output)")
	fl.StringArrayVar(&t.buyers, "buyer", nil, "an address allowed to buy; repeatable (none: anyone)")
	fl.StringArrayVar(&t.auditors, "auditor", nil, "a validator (operator address) allowed to read the data to audit runs; repeatable")
	if update {
		fl.BoolVar(&t.anyModule, "any-module", false, "clear the allow-list: any module may run (aggregate output only)")
		fl.BoolVar(&t.anyone, "anyone", false, "clear the buyer list: anyone may buy")
		fl.BoolVar(&t.noAuditors, "no-auditors", false, "clear the auditor list")
	}
}

func parseAddrs(list []string, what string) ([][]byte, error) {
	var out [][]byte
	for _, s := range list {
		a, err := types.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", what, s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// moduleIDs reads --allow-module values: a 64-hex blob ID, or a file whose
// blob ID is computed.
func moduleIDs(list []string) ([][]byte, error) {
	var out [][]byte
	for _, s := range list {
		if h, err := hex32(s, "--allow-module"); err == nil {
			out = append(out, h)
			continue
		}
		if _, err := os.Stat(s); err != nil {
			return nil, fmt.Errorf("--allow-module %q: neither a 64-hex blob ID nor a readable file", s)
		}
		h, err := blobIDFile(s)
		if err != nil {
			return nil, fmt.Errorf("--allow-module: %w", err)
		}
		out = append(out, h)
	}
	return out, nil
}

// defaultOutputCap: 1 MiB for an allow-listed module, an aggregate's
// bound for any module.
func defaultOutputCap(modules [][]byte, p types.Params) uint64 {
	if len(modules) > 0 {
		return 1 << 20
	}
	if p.Data != nil {
		return p.Data.MaxAggregateOutput
	}
	return 0
}

// dataReport is what publish and buy print: the tx and what it made.
type dataReport struct {
	*client.TxResult
	DatasetID uint64 `json:"dataset_id"`
	Root      string `json:"root,omitempty"`
	Size      uint64 `json:"size,omitempty"`
	Name      string `json:"name,omitempty"`
	GrantID   uint64 `json:"grant_id,omitempty"`
	Price     uint64 `json:"price,omitempty"`
}

// dataCmd is `agora data`: the data market (chain/data) — publish
// datasets, change or retire them, list and show them, buy download
// grants.
func dataCmd(g *globals) *cobra.Command {
	f := &txFlags{}
	var height int64
	cmd := &cobra.Command{Use: "data", Short: "Data market: publish datasets kept by a host, sell download grants and compute-to-data runs"}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.from, "from", "", "name of the signing key (transactions)")
	pf.StringVar(&f.node, "node", defaultNode, "node RPC address")
	pf.StringVar(&f.backend, "keyring", keyring.BackendFile, "keyring backend: file or test")
	pf.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	pf.StringVar(&f.memo, "memo", "", "tx memo")
	pf.Int64Var(&height, "height", 0, "queries: state at this height (0: latest)")

	dial := func(cmd *cobra.Command, timeout time.Duration) (*client.Client, context.Context, context.CancelFunc, error) {
		if err := checkOutput(f.output); err != nil {
			return nil, nil, nil, err
		}
		c, err := client.New(f.node)
		if err != nil {
			return nil, nil, nil, err
		}
		ctx, cancel := context.WithTimeout(ctxOr(cmd.Context()), timeout)
		return c, ctx, cancel, nil
	}
	p := func() printer { return printer{w: g.out, json: f.output == "json"} }
	// signer dials and loads the --from key.
	signer := func(cmd *cobra.Command, timeout time.Duration) (*client.Client, *client.Signer, context.Context, context.CancelFunc, error) {
		if f.from == "" {
			return nil, nil, nil, nil, fmt.Errorf("--from is required")
		}
		priv, err := keyFrom(g.home, f.backend, f.from)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		c, ctx, cancel, err := dial(cmd, timeout)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		return c, c.NewSigner(priv), ctx, cancel, nil
	}

	var host, name string
	var noUpload bool
	pt := &dataTerms{}
	publish := &cobra.Command{Use: "publish PATH", Short: "Publish a dataset (a file, or a directory packed as a deterministic tar) kept by a host provider; prints its root",
		Long: `Publishes a dataset: its blob ID (root) and size go on chain with its terms,
owned by the --from key. PATH is a file, published as is, or a directory,
published as the deterministic tar of its regular files (sorted by name, mode
0644, uid/gid 0, mtime 0), which runs see under /data/<member>. The --host
provider (registered, with the wasm capability) keeps the bytes and runs the
compute-to-data jobs on them; a run pays --run-price to you when it succeeds,
a download grant --download-price (both minus the data market's fee).`,
		Example: `  agora data publish ./corpus --host PROVIDER --run-price 2000000 --allow-module wordcount.wasm --output-cap 65536 --from owner
  agora data publish mnist.json --host PROVIDER --run-price 500000 --download --download-price 9000000 --from owner`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if host == "" {
				return fmt.Errorf("--host PROVIDER_ADDRESS is required")
			}
			hostAddr, err := types.ParseAddress(host)
			if err != nil {
				return fmt.Errorf("--host: %w", err)
			}
			mods, err := moduleIDs(pt.modules)
			if err != nil {
				return err
			}
			buyers, err := parseAddrs(pt.buyers, "--buyer")
			if err != nil {
				return err
			}
			auditors, err := parseAddrs(pt.auditors, "--auditor")
			if err != nil {
				return err
			}
			src, err := loadDatasetSource(a[0])
			if err != nil {
				return err
			}
			if name == "" {
				name = filepath.Base(filepath.Clean(a[0]))
			}
			c, s, ctx, cancel, err := signer(cmd, 30*time.Minute)
			if err != nil {
				return err
			}
			defer cancel()
			if pt.outputCap == 0 {
				params, err := c.Params(ctx)
				if err != nil {
					return err
				}
				pt.outputCap = defaultOutputCap(mods, params)
			}
			m := &types.MsgPublishDataset{Root: src.ID[:], Size: src.Size, Name: name, Description: pt.description,
				Licence: pt.licence, Host: hostAddr, Download: pt.download, DownloadPrice: pt.downloadPrice, RunPrice: pt.runPrice,
				AllowedModules: mods, OutputCap: pt.outputCap, Buyers: buyers, Auditors: auditors}
			res, err := s.Send(ctx, m)
			if err != nil {
				return err
			}
			id, err := u64(res.Events["dataset_id"], "dataset id")
			if err != nil {
				return fmt.Errorf("the publish tx %s named no dataset: %w", res.Hash, err)
			}
			fmt.Fprintf(g.errOut, "dataset %d published in block %d (fee %d uagr): root %s, %d bytes\n", id, res.Height, res.Fee, src.ID, src.Size)
			// The bytes go to the host next (the data-host part, publishUpload).
			if publishUpload != nil && !noUpload {
				ds, err := c.Dataset(ctx, id)
				if err != nil {
					return err
				}
				if err := publishUpload(ctx, g, c, s.PrivKey(), ds, src); err != nil {
					return fmt.Errorf("dataset %d is on chain, but its upload to host %s failed: %w", id, hostAddr, err)
				}
			}
			rep := dataReport{TxResult: res, DatasetID: id, Root: src.ID.String(), Size: src.Size, Name: name}
			return p().print(rep, func(w io.Writer) {
				fmt.Fprintf(w, "dataset %d: root %s (%d bytes), host %s\n", id, src.ID, src.Size, hostAddr)
			})
		}}
	publish.Flags().StringVar(&host, "host", "", "the provider that keeps the data and runs jobs on it")
	publish.Flags().StringVar(&name, "name", "", "the dataset's name (default: PATH's base name)")
	publish.Flags().BoolVar(&noUpload, "no-upload", false, "only put the dataset on chain; send the bytes later with agora data upload")
	pt.register(publish, false)

	ut := &dataTerms{}
	update := &cobra.Command{Use: "update DATASET_ID", Short: "Change your dataset's terms: the flags given replace those terms, the rest stay", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := u64(a[0], "dataset id")
			if err != nil {
				return err
			}
			c, s, ctx, cancel, err := signer(cmd, 90*time.Second)
			if err != nil {
				return err
			}
			defer cancel()
			d, err := c.Dataset(ctx, id)
			if err != nil {
				return err
			}
			m := updateFrom(d)
			fl := cmd.Flags()
			if fl.Changed("description") {
				m.Description = ut.description
			}
			if fl.Changed("licence") {
				m.Licence = ut.licence
			}
			if fl.Changed("download") {
				m.Download = ut.download
				if !ut.download && !fl.Changed("download-price") {
					m.DownloadPrice = 0
				}
			}
			if fl.Changed("download-price") {
				m.DownloadPrice = ut.downloadPrice
			}
			if fl.Changed("run-price") {
				m.RunPrice = ut.runPrice
			}
			if fl.Changed("output-cap") {
				m.OutputCap = ut.outputCap
			}
			switch {
			case ut.anyModule && len(ut.modules) > 0:
				return fmt.Errorf("give --allow-module or --any-module, not both")
			case ut.anyModule:
				m.AllowedModules = nil
			case len(ut.modules) > 0:
				if m.AllowedModules, err = moduleIDs(ut.modules); err != nil {
					return err
				}
			}
			switch {
			case ut.anyone && len(ut.buyers) > 0:
				return fmt.Errorf("give --buyer or --anyone, not both")
			case ut.anyone:
				m.Buyers = nil
			case len(ut.buyers) > 0:
				if m.Buyers, err = parseAddrs(ut.buyers, "--buyer"); err != nil {
					return err
				}
			}
			switch {
			case ut.noAuditors && len(ut.auditors) > 0:
				return fmt.Errorf("give --auditor or --no-auditors, not both")
			case ut.noAuditors:
				m.Auditors = nil
			case len(ut.auditors) > 0:
				if m.Auditors, err = parseAddrs(ut.auditors, "--auditor"); err != nil {
					return err
				}
			}
			res, err := s.Send(ctx, m)
			if err != nil {
				return err
			}
			return p().print(res, func(w io.Writer) {
				fmt.Fprintf(w, "dataset %d updated in block %d (fee %d uagr)\n", id, res.Height, res.Fee)
			})
		}}
	ut.register(update, true)

	retire := &cobra.Command{Use: "retire DATASET_ID", Short: "Stop selling your dataset: grants already bought stay, runs already ordered finish", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return broadcast(cmd.Context(), g, f, func(a []string) (any, error) {
				id, err := u64(a[0], "dataset id")
				return &types.MsgRetireDataset{Id: id}, err
			}, a)
		}}

	var owner string
	list := &cobra.Command{Use: "list", Short: "List datasets (all, or --owner's)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := api.DatasetsPath()
			if owner != "" {
				ad, err := types.ParseAddress(owner)
				if err != nil {
					return fmt.Errorf("--owner: %w", err)
				}
				path = api.DatasetsByOwnerPath(ad)
			}
			c, ctx, cancel, err := dial(cmd, 30*time.Second)
			if err != nil {
				return err
			}
			defer cancel()
			ds, err := client.View[[]api.DatasetView](ctx, c, path, height)
			if err != nil {
				return err
			}
			return p().print(ds, func(w io.Writer) {
				for _, d := range ds {
					fmt.Fprintf(w, "dataset %d: %s, %d bytes, host %s, run %d uagr, %s%s\n", d.ID, d.Name, d.Size, d.Host, d.RunPrice, downloadTerm(d), retiredTerm(d))
				}
			})
		}}
	list.Flags().StringVar(&owner, "owner", "", "datasets of this address")

	show := &cobra.Command{Use: "show DATASET_ID", Short: "A dataset: terms, grants and compute-to-data runs", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := u64(a[0], "dataset id")
			if err != nil {
				return err
			}
			c, ctx, cancel, err := dial(cmd, 30*time.Second)
			if err != nil {
				return err
			}
			defer cancel()
			var out struct {
				Dataset api.DatasetView     `json:"dataset"`
				Grants  []api.DataGrantView `json:"grants"`
				Runs    []api.JobOrderView  `json:"runs"`
			}
			if out.Dataset, err = client.View[api.DatasetView](ctx, c, api.DatasetPath(id), height); err != nil {
				return err
			}
			if out.Grants, err = client.View[[]api.DataGrantView](ctx, c, api.DataGrantsPath(id, nil), height); err != nil {
				return err
			}
			if out.Runs, err = client.View[[]api.JobOrderView](ctx, c, api.JobOrdersByDatasetPath(id), height); err != nil {
				return err
			}
			return p().print(out, func(w io.Writer) {
				d := out.Dataset
				fmt.Fprintf(w, "dataset %d: %s%s\n  owner %s, host %s\n  root %s, %d bytes\n", d.ID, d.Name, retiredTerm(d), d.Owner, d.Host, d.Root, d.Size)
				if d.Description != "" || d.Licence != "" {
					fmt.Fprintf(w, "  %s (licence: %s)\n", d.Description, d.Licence)
				}
				fmt.Fprintf(w, "  run %d uagr, output cap %d bytes, %s\n", d.RunPrice, d.OutputCap, downloadTerm(d))
				if len(d.AllowedModules) == 0 {
					fmt.Fprintln(w, "  modules: any (aggregate output only)")
				}
				for _, m := range d.AllowedModules {
					fmt.Fprintf(w, "  module %s\n", m)
				}
				fmt.Fprintf(w, "  buyers: %s\n  auditors: %s\n", addrList(d.Buyers, "anyone"), addrList(d.Auditors, "none"))
				fmt.Fprintf(w, "  %d grants, %d paid runs, earned %d uagr\n", d.Grants, d.Runs, d.Earned)
				for _, gr := range out.Grants {
					fmt.Fprintf(w, "  grant %d: %s paid %d at height %d\n", gr.ID, gr.Buyer, gr.Price, gr.Height)
				}
				for _, o := range out.Runs {
					fmt.Fprintf(w, "  run (order %d): %s, buyer %s, module %s\n", o.ID, o.Status, o.Owner, o.ModuleHash)
				}
			})
		}}

	var maxPrice uint64
	buy := &cobra.Command{Use: "buy DATASET_ID", Short: "Buy a download grant: pays the dataset's download price (at most --max-price; default the price shown now)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := u64(a[0], "dataset id")
			if err != nil {
				return err
			}
			c, s, ctx, cancel, err := signer(cmd, 90*time.Second)
			if err != nil {
				return err
			}
			defer cancel()
			if !cmd.Flags().Changed("max-price") {
				d, err := c.Dataset(ctx, id)
				if err != nil {
					return err
				}
				maxPrice = d.DownloadPrice
			}
			res, err := s.Send(ctx, &types.MsgBuyAccess{DatasetId: id, MaxPrice: maxPrice})
			if err != nil {
				return err
			}
			gid, err := u64(res.Events["grant_id"], "grant id")
			if err != nil {
				return fmt.Errorf("the buy tx %s named no grant: %w", res.Hash, err)
			}
			price, _ := u64(res.Events["price"], "price")
			rep := dataReport{TxResult: res, DatasetID: id, GrantID: gid, Price: price}
			return p().print(rep, func(w io.Writer) {
				fmt.Fprintf(w, "grant %d on dataset %d: paid %d uagr (block %d, fee %d uagr)\n", gid, id, price, res.Height, res.Fee)
			})
		}}
	buy.Flags().Uint64Var(&maxPrice, "max-price", 0, "the most you pay, uagr (default: the dataset's download price now)")

	cmd.AddCommand(publish, update, retire, list, show, buy, dataUploadCmd(g, f), dataRunCmd(g, f), dataDownloadCmd(g, f))
	return cmd
}

// updateFrom is an update that keeps every term of d.
func updateFrom(d api.DatasetView) *types.MsgUpdateDataset {
	m := &types.MsgUpdateDataset{Id: d.ID, Description: d.Description, Licence: d.Licence, Download: d.Download,
		DownloadPrice: d.DownloadPrice, RunPrice: d.RunPrice, OutputCap: d.OutputCap}
	for _, x := range d.AllowedModules {
		m.AllowedModules = append(m.AllowedModules, x)
	}
	for _, x := range d.Buyers {
		m.Buyers = append(m.Buyers, x)
	}
	for _, x := range d.Auditors {
		m.Auditors = append(m.Auditors, x)
	}
	return m
}

func downloadTerm(d api.DatasetView) string {
	if !d.Download {
		return "no downloads"
	}
	return fmt.Sprintf("download %d uagr", d.DownloadPrice)
}

func retiredTerm(d api.DatasetView) string {
	if d.Retired {
		return " (retired)"
	}
	return ""
}

func addrList(as []types.Address, empty string) string {
	if len(as) == 0 {
		return empty
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
