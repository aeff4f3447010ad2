package cli

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine/wasm/examples"
	"github.com/agoranet/agora/internal/jobowner"
	"github.com/agoranet/agora/internal/keyring"
	"github.com/agoranet/agora/protocol/blob"
	pjobs "github.com/agoranet/agora/protocol/jobs"
	"github.com/agoranet/agora/train"
)

// jobSubmitFlags are `agora job submit`'s order terms.
type jobSubmitFlags struct {
	module, moduleHash   string
	inputs, inputHashes  []string
	args                 []string
	gas, maxPrice        uint64
	memoryPages          uint32
	deadline, deadlineIn int64
	collateral, escrow   uint64
	replicas             uint32
	bidWindow            int64
	interval             uint64
	liveness             int64
	example              string
	train                string
	noUpload             bool
	wait                 time.Duration
}

// msg builds the order; height is the chain's current height (for
// --deadline-in).
func (f *jobSubmitFlags) msg(height int64) (*types.MsgSubmitJob, error) {
	m := &types.MsgSubmitJob{GasLimit: f.gas, MemoryPages: f.memoryPages, MaxPrice: f.maxPrice, Collateral: f.collateral,
		Replication: f.replicas, BidWindow: f.bidWindow, CheckpointInterval: f.interval, Deadline: f.deadline,
		LivenessBlocks: f.liveness}
	var err error
	switch {
	case f.module != "" && f.moduleHash != "":
		return nil, fmt.Errorf("give --module or --module-hash, not both")
	case f.module != "":
		if m.ModuleHash, err = blobIDFile(f.module); err != nil {
			return nil, fmt.Errorf("--module: %w", err)
		}
	case f.moduleHash != "":
		if m.ModuleHash, err = hex32(f.moduleHash, "--module-hash"); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("--module FILE.wasm or --module-hash HEX is required")
	}
	for _, in := range f.inputs {
		name, file, ok := strings.Cut(in, "=")
		if !ok {
			name, file = filepath.Base(in), in
		}
		h, err := blobIDFile(file)
		if err != nil {
			return nil, fmt.Errorf("--input: %w", err)
		}
		m.InputHashes = append(m.InputHashes, h)
		m.InputNames = append(m.InputNames, name)
	}
	for i, in := range f.inputHashes {
		name, hx, ok := strings.Cut(in, "=")
		if !ok {
			name, hx = fmt.Sprint(len(f.inputs)+i), in
		}
		h, err := hex32(hx, "--input-hash")
		if err != nil {
			return nil, err
		}
		m.InputHashes = append(m.InputHashes, h)
		m.InputNames = append(m.InputNames, name)
	}
	m.Args = f.args
	if f.deadline == 0 {
		m.Deadline = height + f.deadlineIn
	}
	per, err := jobs.Budget(f.gas, f.maxPrice)
	if err != nil {
		return nil, err
	}
	m.Escrow = f.escrow
	if m.Escrow == 0 {
		m.Escrow = per * uint64(f.replicas) // what the chain requires, no more
	}
	return m, nil
}

func hex32(s, what string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil || len(b) != types.HashLen {
		return nil, fmt.Errorf("%s: want %d hex characters", what, 2*types.HashLen)
	}
	return b, nil
}

// jobCmd is `agora job`: the compute-job market (chain/jobs), for owners
// (submit, status, list, cancel, dispute) and providers (bid, checkpoint),
// and the dispute moves (bisect, pick, vote).
// tinyStepGas is the gas a step of the train example's tiny preset takes
// with margin (≈ 7.7 G measured, BENCHMARKS "Training").
const tinyStepGas = 10_000_000_000

// trainingOrder turns --train PRESET,STEPS[,SEED][,KEY=VALUE...] into the
// train example's order: its arguments (the key=value pairs override the
// preset's hyperparameters, train.RunHyper), and the defaults a training
// run needs for the flags not given (changed says which were).
func (sf *jobSubmitFlags) trainingOrder(changed func(string) bool) error {
	parts := strings.Split(sf.train, ",")
	if len(parts) < 2 {
		return fmt.Errorf("--train %q: want PRESET,STEPS[,SEED][,KEY=VALUE...]", sf.train)
	}
	p, ok := train.Presets[parts[0]]
	if !ok {
		return fmt.Errorf("--train: unknown preset %q (have %s)", parts[0], train.PresetNames)
	}
	steps, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil || steps == 0 {
		return fmt.Errorf("--train: steps %q: want a positive number", parts[1])
	}
	args, seed := []string{parts[0], parts[1], "1"}, uint64(1)
	rest := parts[2:]
	if len(rest) > 0 && !strings.Contains(rest[0], "=") {
		if seed, err = strconv.ParseUint(rest[0], 10, 64); err != nil {
			return fmt.Errorf("--train: seed %q: %w", rest[0], err)
		}
		args[2], rest = rest[0], rest[1:]
	}
	if _, err := train.RunHyper(p, int(steps), seed, rest); err != nil {
		return fmt.Errorf("--train: %w", err)
	}
	if sf.example != "" || sf.module != "" || sf.moduleHash != "" || changed("args") {
		return fmt.Errorf("--train builds the train example with its arguments: give no --example, --module, --module-hash or --args")
	}
	sf.example, sf.args = "train", append(args, rest...)
	if !changed("memory-pages") {
		sf.memoryPages = 2048
	}
	if !changed("checkpoint-interval") {
		sf.interval = 1
	}
	if !changed("gas") {
		if parts[0] != "tiny" {
			return fmt.Errorf("--train %s: give --gas (10 G a step is the tiny preset's budget; measure a few steps of yours)", parts[0])
		}
		sf.gas = (steps + 1) * tinyStepGas
	}
	return nil
}

func jobCmd(g *globals) *cobra.Command {
	f := &txFlags{}
	var height int64
	cmd := &cobra.Command{Use: "job", Short: "Compute jobs: submit sandboxed WebAssembly work, bid, commit checkpoints, dispute"}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.from, "from", "", "name of the signing key (transactions)")
	pf.StringVar(&f.node, "node", defaultNode, "node RPC address")
	pf.StringVar(&f.backend, "keyring", keyring.BackendFile, "keyring backend: file or test")
	pf.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	pf.StringVar(&f.memo, "memo", "", "tx memo")
	pf.BoolVar(&f.async, "async", false, "return after CheckTx instead of waiting for the block")
	pf.Int64Var(&height, "height", 0, "queries: state at this height (0: latest)")

	send := func(msgOf func(args []string) (any, error)) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error { return broadcast(cmd.Context(), g, f, msgOf, args) }
	}
	dial := func(cmd *cobra.Command) (*client.Client, context.Context, context.CancelFunc, error) {
		if err := checkOutput(f.output); err != nil {
			return nil, nil, nil, err
		}
		c, err := client.New(f.node)
		if err != nil {
			return nil, nil, nil, err
		}
		ctx, cancel := context.WithTimeout(ctxOr(cmd.Context()), 30*time.Second)
		return c, ctx, cancel, nil
	}
	p := func() printer { return printer{w: g.out, json: f.output == "json"} }

	sf := &jobSubmitFlags{}
	submit := &cobra.Command{Use: "submit", Short: "Post an order and escrow its price (r × gas limit × max price); providers bid, the chain clears it after the bid window, then the module and inputs are uploaded to the leased providers",
		Long: `Posts an order for a WebAssembly job (--module FILE, or --example NAME to build
one of the example jobs) with its input files, and escrows its price. Providers
bid during the bid window and the chain leases the order to the best of them.
Unless --no-upload, submit then waits for the clearing and uploads the module
and the inputs to each leased provider (signed with the --from key, which
owns the order); the providers run the job and commit its checkpoints. Then
'agora job result ORDER_ID' fetches the results.`,
		Example: `  agora job submit --example raytrace --from demo
  agora job submit --example ngram --input corpus.txt --replicas 2 --from demo
  agora job submit --module job.wasm --input data.bin --gas 5000000000 --from me
  agora job submit --train tiny,200,1 --input corpus.txt --from me`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("deadline") && cmd.Flags().Changed("deadline-in") {
				return fmt.Errorf("give --deadline or --deadline-in, not both")
			}
			if sf.train != "" {
				if err := sf.trainingOrder(cmd.Flags().Changed); err != nil {
					return err
				}
			}
			if sf.example != "" && (sf.module != "" || sf.moduleHash != "") {
				return fmt.Errorf("give --example or --module/--module-hash, not both")
			}
			if !sf.noUpload && (sf.moduleHash != "" || len(sf.inputHashes) > 0) {
				return fmt.Errorf("--module-hash and --input-hash name blobs this command cannot upload: give the files, or --no-upload")
			}
			ctx := ctxOr(cmd.Context())
			blobs := map[blob.ID][]byte{}
			if sf.example != "" {
				fmt.Fprintf(g.errOut, "building example %s (GOOS=wasip1 GOARCH=wasm) ...\n", sf.example)
				bin, err := examples.Build(ctx, sf.example)
				if err != nil {
					return err
				}
				id := blob.Of(bin)
				sf.moduleHash = id.String()
				blobs[id] = bin
			}
			var now int64
			if sf.deadline == 0 {
				c, ctx, cancel, err := dial(cmd)
				if err != nil {
					return err
				}
				defer cancel()
				st, err := c.Status(ctx)
				if err != nil {
					return err
				}
				now = st.SyncInfo.LatestBlockHeight
			}
			if sf.noUpload {
				return broadcast(cmd.Context(), g, f, func([]string) (any, error) { return sf.msg(now) }, nil)
			}
			for _, path := range append([]string{sf.module}, sf.inputs...) {
				if path == "" {
					continue
				}
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				blobs[blob.Of(data)] = data
			}
			return submitAndUpload(ctx, g, f, sf, now, blobs)
		}}
	fl := submit.Flags()
	fl.StringVar(&sf.module, "module", "", "the job's WebAssembly module (its blob ID goes on chain)")
	fl.StringVar(&sf.moduleHash, "module-hash", "", "or the module's blob ID, hex")
	fl.StringArrayVar(&sf.inputs, "input", nil, "an input file, NAME=FILE or FILE (named by its base name): read-only at /in/NAME; its blob ID goes on chain; repeatable")
	fl.StringArrayVar(&sf.inputHashes, "input-hash", nil, "or an input by blob ID, NAME=HEX or HEX (named by its position); repeatable")
	fl.StringSliceVar(&sf.args, "args", nil, "the job's arguments (comma-separated)")
	fl.Uint64Var(&sf.gas, "gas", 1_000_000_000, "gas limit per replica")
	fl.Uint32Var(&sf.memoryPages, "memory-pages", 256, "memory limit in 64 KiB pages")
	fl.Uint64Var(&sf.maxPrice, "max-price", 1_000, "the most you pay, uagr per million gas")
	fl.Int64Var(&sf.deadline, "deadline", 0, "height after which no work is paid")
	fl.Int64Var(&sf.deadlineIn, "deadline-in", 1000, "or: blocks from now")
	fl.Uint64Var(&sf.collateral, "collateral", 1_000_000, "collateral each provider must lock, uagr")
	fl.Uint32Var(&sf.replicas, "replicas", 1, "independent providers whose checkpoints must agree (1..4)")
	fl.Int64Var(&sf.bidWindow, "bid-window", 5, "blocks of bidding")
	fl.Uint64Var(&sf.interval, "checkpoint-interval", 1_000, "steps between checkpoints")
	fl.Int64Var(&sf.liveness, "liveness", 0, "blocks a provider may go without a checkpoint before its lease is abandoned and it is slashed (0: the chain's default, liveness_epochs × epoch_length; raise it when an interval takes long to compute)")
	fl.Uint64Var(&sf.escrow, "escrow", 0, "escrow deposit, uagr (default: exactly what the order requires)")
	fl.StringVar(&sf.example, "example", "", "build an example job as the module: "+strings.Join(append(examples.Names, examples.InModule...), ", ")+" (train: from inside an Agora checkout)")
	fl.StringVar(&sf.train, "train", "", "a training job: PRESET,STEPS[,SEED][,KEY=VALUE...] of Agora's trainer (key=value: hyperparameters, "+train.HyperKeys+") (the train example; corpus from --input files or the dataset) with a checkpoint every step, 2048 memory pages and, for the tiny preset, 10 G gas a step, unless given")
	fl.BoolVar(&sf.noUpload, "no-upload", false, "only post the order: do not wait for the clearing nor upload the module and inputs")
	fl.DurationVar(&sf.wait, "wait", 5*time.Minute, "how long to wait for the clearing")

	status := &cobra.Command{Use: "status ORDER_ID", Short: "An order, its bids, leases and checkpoints", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := u64(a[0], "order id")
			if err != nil {
				return err
			}
			c, ctx, cancel, err := dial(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			type leaseStatus struct {
				api.JobLeaseView
				CheckpointList []api.JobCheckpointView `json:"checkpoint_list"`
			}
			var out struct {
				Order  api.JobOrderView `json:"order"`
				Bids   []api.JobBidView `json:"bids"`
				Leases []leaseStatus    `json:"leases"`
			}
			if out.Order, err = client.View[api.JobOrderView](ctx, c, api.JobOrderPath(id), height); err != nil {
				return err
			}
			if out.Bids, err = client.View[[]api.JobBidView](ctx, c, api.JobBidsPath(id), height); err != nil {
				return err
			}
			for _, lid := range out.Order.LeaseIDs {
				l, err := client.View[api.JobLeaseView](ctx, c, api.JobLeasePath(lid), height)
				if err != nil {
					return err
				}
				cps, err := client.View[[]api.JobCheckpointView](ctx, c, api.JobCheckpointsPath(lid), height)
				if err != nil {
					return err
				}
				out.Leases = append(out.Leases, leaseStatus{l, cps})
			}
			return p().print(out, func(w io.Writer) {
				o := out.Order
				fmt.Fprintf(w, "order %d: %s", o.ID, o.Status)
				if o.Reason != "" {
					fmt.Fprintf(w, " (%s)", o.Reason)
				}
				fmt.Fprintf(w, "\n  module %s, gas limit %d, max price %d uagr/Mgas, %d replica(s), deadline %d\n", o.ModuleHash, o.GasLimit, o.MaxPrice, o.Replication, o.Deadline)
				if o.Status == "bidding" {
					fmt.Fprintf(w, "  bids until height %d: %d\n", o.BidWindowEnd, len(out.Bids))
				}
				if o.MismatchIndex != 0 {
					fmt.Fprintf(w, "  replicas disagree from checkpoint %d\n", o.MismatchIndex)
				}
				for _, l := range out.Leases {
					fmt.Fprintf(w, "  lease %d: %s, provider %s at %d uagr/Mgas; %d checkpoints, %d steps, %d gas; paid %d of %d", l.ID, l.Status, l.Provider, l.Price, l.Checkpoints, l.Steps, l.GasUsed, l.Paid, l.Budget)
					if l.OpenDispute != 0 {
						fmt.Fprintf(w, "; dispute %d open", l.OpenDispute)
					}
					if len(l.ResultHash) > 0 {
						fmt.Fprintf(w, "; result %s", l.ResultHash)
					}
					fmt.Fprintln(w)
				}
			})
		}}

	var owner, provider, st string
	list := &cobra.Command{Use: "list", Short: "List orders (by --owner, default the --from key, or --status) or a provider's leases (--provider)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var path string
			switch {
			case provider != "":
				ad, err := types.ParseAddress(provider)
				if err != nil {
					return err
				}
				path = api.JobLeasesByProviderPath(ad)
			case st != "":
				if _, ok := api.ParseJobStatus(st); !ok {
					return fmt.Errorf("--status: unknown job status %q", st)
				}
				path = api.JobOrdersByStatusPath(st)
			default:
				ad, err := ownerAddr(g, f, owner)
				if err != nil {
					return err
				}
				path = api.JobOrdersByOwnerPath(ad)
			}
			c, ctx, cancel, err := dial(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			if provider != "" {
				ls, err := client.View[[]api.JobLeaseView](ctx, c, path, height)
				if err != nil {
					return err
				}
				return p().print(ls, func(w io.Writer) {
					for _, l := range ls {
						fmt.Fprintf(w, "lease %d (order %d): %s, %d checkpoints, paid %d of %d\n", l.ID, l.OrderID, l.Status, l.Checkpoints, l.Paid, l.Budget)
					}
				})
			}
			ords, err := client.View[[]api.JobOrderView](ctx, c, path, height)
			if err != nil {
				return err
			}
			return p().print(ords, func(w io.Writer) {
				for _, o := range ords {
					fmt.Fprintf(w, "order %d: %s, %d replica(s), leases %v\n", o.ID, o.Status, o.Replication, o.LeaseIDs)
				}
			})
		}}
	list.Flags().StringVar(&owner, "owner", "", "orders of this address (default: the --from key's)")
	list.Flags().StringVar(&provider, "provider", "", "leases of this provider")
	list.Flags().StringVar(&st, "status", "", "orders in this status: bidding, running, done, unmatched, cancelled, ended")

	cancelCmd := &cobra.Command{Use: "cancel ORDER_ID", Short: "Cancel your order: committed work stays paid, the rest of the escrow comes back", Args: cobra.ExactArgs(1),
		RunE: send(func(a []string) (any, error) {
			id, err := u64(a[0], "order id")
			return &types.MsgCancelJob{OrderId: id}, err
		})}
	dispute := &cobra.Command{Use: "dispute LEASE_ID CHECKPOINT_INDEX", Short: "Challenge a checkpoint (as the owner, a validator or another replica's provider), escrowing the dispute bond", Args: cobra.ExactArgs(2),
		RunE: send(func(a []string) (any, error) {
			lease, err := u64(a[0], "lease id")
			if err != nil {
				return nil, err
			}
			idx, err := u64(a[1], "checkpoint index")
			return &types.MsgChallengeCheckpoint{LeaseId: lease, Index: idx}, err
		})}
	bid := &cobra.Command{Use: "bid ORDER_ID PRICE COLLATERAL", Short: "Bid on an order (as a provider with the wasm capability): price in uagr per million gas; the collateral is locked now", Args: cobra.ExactArgs(3),
		RunE: send(func(a []string) (any, error) {
			id, err := u64(a[0], "order id")
			if err != nil {
				return nil, err
			}
			price, err := u64(a[1], "price")
			if err != nil {
				return nil, err
			}
			coll, err := u64(a[2], "collateral")
			return &types.MsgBidJob{OrderId: id, Price: price, Collateral: coll}, err
		})}
	var done bool
	var result string
	checkpoint := &cobra.Command{Use: "checkpoint LEASE_ID INDEX STEPS GAS_USED STATE_HASH", Short: "Commit a lease's next checkpoint (as its provider); --done --result HASH for the last", Args: cobra.ExactArgs(5),
		RunE: send(func(a []string) (any, error) {
			var n [4]uint64
			for i, what := range []string{"lease id", "index", "steps", "gas used"} {
				v, err := u64(a[i], what)
				if err != nil {
					return nil, err
				}
				n[i] = v
			}
			state, err := hex32(a[4], "state hash")
			if err != nil {
				return nil, err
			}
			m := &types.MsgCommitCheckpoint{LeaseId: n[0], Index: n[1], Steps: n[2], GasUsed: n[3], StateHash: state, Done: done}
			if result != "" {
				if m.ResultHash, err = hex32(result, "--result"); err != nil {
					return nil, err
				}
			}
			return m, nil
		})}
	checkpoint.Flags().BoolVar(&done, "done", false, "the job finished: this is the last checkpoint")
	checkpoint.Flags().StringVar(&result, "result", "", "the result's hash (with --done)")
	bisect := &cobra.Command{Use: "bisect DISPUTE_ID HASH...", Short: "Post the k-1 inner state hashes of the disputed interval (as the defender)", Args: cobra.MinimumNArgs(2),
		RunE: send(func(a []string) (any, error) {
			id, err := u64(a[0], "dispute id")
			if err != nil {
				return nil, err
			}
			m := &types.MsgBisect{DisputeId: id}
			for _, s := range a[1:] {
				h, err := hex32(s, "hash")
				if err != nil {
					return nil, err
				}
				m.Hashes = append(m.Hashes, h)
			}
			return m, nil
		})}
	pick := &cobra.Command{Use: "pick DISPUTE_ID PART", Short: "Name the first part whose end state you dispute (as the challenger)", Args: cobra.ExactArgs(2),
		RunE: send(func(a []string) (any, error) {
			id, err := u64(a[0], "dispute id")
			if err != nil {
				return nil, err
			}
			part, err := u64(a[1], "part")
			if err == nil && part > jobs.MaxBisectHashes {
				err = fmt.Errorf("part %d: at most %d", part, jobs.MaxBisectHashes)
			}
			return &types.MsgPickInterval{DisputeId: id, Part: uint32(part)}, err
		})}
	vote := &cobra.Command{Use: "vote DISPUTE_ID POST_STATE_HASH", Short: "Vote the state you computed for a dispute's single step (as a bonded validator)", Args: cobra.ExactArgs(2),
		RunE: send(func(a []string) (any, error) {
			id, err := u64(a[0], "dispute id")
			if err != nil {
				return nil, err
			}
			h, err := hex32(a[1], "post-state hash")
			return &types.MsgVoteStep{DisputeId: id, PostStateHash: h}, err
		})}
	cmd.AddCommand(submit, status, list, cancelCmd, dispute, bid, checkpoint, bisect, pick, vote, newJobRunCmd(), jobResultCmd(f))
	return cmd
}

// ownerAddr is --owner, or the --from key's address.
func ownerAddr(g *globals, f *txFlags, owner string) (types.Address, error) {
	if owner != "" {
		return types.ParseAddress(owner)
	}
	if f.from == "" {
		return nil, fmt.Errorf("give --owner ADDRESS, --from KEY, --status or --provider")
	}
	priv, err := keyFrom(g.home, f.backend, f.from)
	if err != nil {
		return nil, err
	}
	return types.AddressFromPubKey(priv.Public().(ed25519.PublicKey)), nil
}

// blobIDFile is the protocol/blob ID of a file: what an order names its
// module and inputs by, and what providers check the bytes against.
func blobIDFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := blob.Compute(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	id := m.ID()
	return id[:], nil
}

// submitReport is what `agora job submit` prints once it uploaded.
type submitReport struct {
	*client.TxResult
	OrderID  uint64   `json:"order_id"`
	Leases   []uint64 `json:"leases"`
	Uploaded int      `json:"uploaded"` // blobs × providers
}

// submitAndUpload posts the order, waits for its clearing and uploads its
// blobs to every leased provider.
func submitAndUpload(ctx context.Context, g *globals, f *txFlags, sf *jobSubmitFlags, now int64, blobs map[blob.ID][]byte) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	if f.from == "" {
		return fmt.Errorf("--from is required")
	}
	msg, err := sf.msg(now)
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
	ctx, cancel := context.WithTimeout(ctx, sf.wait+90*time.Second)
	defer cancel()
	res, err := c.NewSigner(priv).Send(ctx, msg)
	if err != nil {
		return err
	}
	id, err := u64(res.Events["order_id"], "order id")
	if err != nil {
		return fmt.Errorf("the submit tx %s named no order: %w", res.Hash, err)
	}
	fmt.Fprintf(g.errOut, "order %d posted in block %d (fee %d uagr); bidding until height %d ...\n", id, res.Height, res.Fee, res.Height+sf.bidWindow)
	wctx, wcancel := context.WithTimeout(ctx, sf.wait)
	defer wcancel()
	_, leases, err := jobowner.WaitLeases(wctx, c, id, 300*time.Millisecond)
	if err != nil {
		return err
	}
	rep := submitReport{TxResult: res, OrderID: id}
	for _, l := range leases {
		rep.Leases = append(rep.Leases, l.ID)
		fmt.Fprintf(g.errOut, "lease %d: provider %s at %d uagr per million gas\n", l.ID, l.Provider, l.Price)
	}
	err = jobowner.Upload(ctx, c, priv, id, leases, blobs, func(ep string, bid blob.ID, done, total int64) {
		if done < total {
			fmt.Fprintf(g.errOut, "uploading %s to %s: %d%% of %d bytes\n", bid.String()[:16], ep, done*100/total, total)
			return
		}
		rep.Uploaded++
		fmt.Fprintf(g.errOut, "uploaded %s (%d bytes) to %s\n", bid, total, ep)
	})
	if err != nil {
		return err
	}
	return printer{w: g.out, json: f.output == "json"}.print(rep, func(w io.Writer) {
		fmt.Fprintf(w, "order %d: leased (%v), module and inputs uploaded; the job runs now.\n  agora job result %d --node %s\n", id, rep.Leases, id, f.node)
	})
}

// jobResultCmd is `agora job result`: wait for an order's final
// checkpoint, fetch its results from the provider and check them against
// the chain.
func jobResultCmd(f *txFlags) *cobra.Command {
	var out string
	var wait time.Duration
	cmd := &cobra.Command{Use: "result ORDER_ID", Short: "Wait for an order's result, fetch it from its provider (checked against the chain) and write the files",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := u64(a[0], "order id")
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
			ctx, cancel := context.WithTimeout(ctxOr(cmd.Context()), wait)
			defer cancel()
			start := time.Now()
			l, err := jobowner.WaitDone(ctx, c, id, 300*time.Millisecond)
			if err != nil {
				return err
			}
			if out == "" {
				out = fmt.Sprintf("job-%d", id)
			}
			res, err := jobowner.Fetch(ctx, c, l, out)
			if err != nil {
				return err
			}
			type file struct {
				Name string `json:"name"`
				Size uint64 `json:"size"`
				Blob string `json:"blob"`
				Path string `json:"path"`
			}
			rep := struct {
				Order   uint64 `json:"order"`
				Lease   uint64 `json:"lease"`
				Results string `json:"results"`
				Status  string `json:"status"`
				Failure string `json:"failure,omitempty"`
				GasUsed uint64 `json:"gas_used"`
				Steps   uint64 `json:"steps"`
				Files   []file `json:"files"`
			}{Order: id, Lease: l.ID, Results: res.List.ID().String(), Status: "done", GasUsed: l.GasUsed, Steps: l.Steps}
			if res.Failed {
				rep.Status, rep.Failure = "failed", string(res.Outputs[pjobs.FailureOutput])
			}
			for _, o := range res.List.Outputs {
				rep.Files = append(rep.Files, file{o.Name, o.Size, o.ID.String(), filepath.Join(out, filepath.FromSlash(o.Name))})
			}
			err = printer{w: cmd.OutOrStdout(), json: f.output == "json"}.print(rep, func(w io.Writer) {
				fmt.Fprintf(w, "order %d, lease %d: %s after %d steps, %d gas; result list %s (checked against the chain, %v)\n", id, l.ID, rep.Status, l.Steps, l.GasUsed, rep.Results, time.Since(start).Round(time.Millisecond))
				if rep.Failure != "" {
					fmt.Fprintf(w, "failure: %s\n", rep.Failure)
				}
				for _, fl := range rep.Files {
					fmt.Fprintf(w, "  %s  %d bytes → %s\n", fl.Name, fl.Size, fl.Path)
				}
			})
			if err == nil && res.Failed {
				return fmt.Errorf("order %d's job failed: %s", id, rep.Failure)
			}
			return err
		}}
	cmd.Flags().StringVar(&out, "out", "", "directory for the result files (default job-ORDER_ID)")
	cmd.Flags().DurationVar(&wait, "wait", 10*time.Minute, "how long to wait for the result")
	return cmd
}
