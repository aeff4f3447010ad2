package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/dataclient"
	"github.com/agoranet/agora/internal/jobowner"
	"github.com/agoranet/agora/internal/keyring"
	"github.com/agoranet/agora/protocol/blob"
)

// modelRegistryCmds are `agora model register` and `agora model
// provenance`: the trained-model registry (chain/models).
func modelRegistryCmds(g *globals) []*cobra.Command {
	f := &txFlags{}
	var output, name string
	var wait time.Duration
	register := &cobra.Command{Use: "register ORDER_ID",
		Short: "Register the model a finished job wrote (e.g. a training job's out/model.gguf) on chain with its provenance: order, lease, trainer, module, inputs or dataset, checkpoint chain",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := u64(a[0], "order id")
			if err != nil {
				return err
			}
			if err := checkOutput(f.output); err != nil {
				return err
			}
			if f.from == "" {
				return fmt.Errorf("--from is required (the order's owner)")
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
			o, err := c.JobOrder(ctx, id)
			if err != nil {
				return fmt.Errorf("order %d: %w", id, err)
			}
			l, err := jobowner.WaitDone(ctx, c, id, 300*time.Millisecond)
			if err != nil {
				return err
			}
			// A compute-to-data run's results come sealed to the owner's key.
			var res *jobowner.Result
			if o.DatasetID != 0 {
				res, err = dataclient.FetchSealed(ctx, c, priv, l, "")
			} else {
				res, err = jobowner.Fetch(ctx, c, l, "")
			}
			if err != nil {
				return err
			}
			msg, err := res.ModelRegistration(output, name)
			if err != nil {
				return err
			}
			tx, err := c.NewSigner(priv).Send(ctx, msg)
			if err != nil {
				return err
			}
			m, err := c.TrainedModel(ctx, mustHex(tx.Events["model"]))
			if err != nil {
				return err
			}
			return printer{w: g.out, json: f.output == "json"}.print(m, func(w io.Writer) {
				fmt.Fprintf(w, "registered in block %d (fee %d uagr):\n", tx.Height, tx.Fee)
				printTrainedModel(w, m)
			})
		}}
	rf := register.Flags()
	rf.StringVar(&output, "job-output", "out/model.gguf", "the job's output holding the model (the job must also write it with .sha256 appended: its sha256sum line)")
	rf.StringVar(&name, "name", "", "display name")
	rf.DurationVar(&wait, "wait", 10*time.Minute, "how long to wait for the job to finish")

	provenance := &cobra.Command{Use: "provenance HASH|FILE",
		Short: "Show where a registered model came from; given a file, check its sha256 and blob ID against the registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkOutput(f.output); err != nil {
				return err
			}
			c, err := client.New(f.node)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctxOr(cmd.Context()), 30*time.Second)
			defer cancel()
			var file []byte
			hash, err := hex.DecodeString(a[0])
			if err != nil || len(hash) != sha256.Size {
				if file, err = os.ReadFile(a[0]); err != nil {
					return fmt.Errorf("%q is neither a model's sha256 (64 hex digits) nor a readable file: %w", a[0], err)
				}
				sum := sha256.Sum256(file)
				hash = sum[:]
			}
			m, err := c.TrainedModel(ctx, hash)
			if err != nil {
				return err
			}
			if file != nil {
				if id := blob.Of(file); string(id[:]) != string(m.BlobID) || uint64(len(file)) != m.Size {
					return fmt.Errorf("%s has the registered sha256 but not the registered blob ID (%s, %d bytes; registered %x, %d bytes)", a[0], id, len(file), m.BlobID, m.Size)
				}
			}
			return printer{w: g.out, json: f.output == "json"}.print(m, func(w io.Writer) {
				if file != nil {
					fmt.Fprintf(w, "%s matches the registered model (sha256 and blob ID)\n", a[0])
				}
				printTrainedModel(w, m)
			})
		}}
	for _, cmd := range []*cobra.Command{register, provenance} {
		pf := cmd.Flags()
		pf.StringVar(&f.node, "node", defaultNode, "node RPC address")
		pf.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	}
	rf.StringVar(&f.from, "from", "", "name of the signing key (the order's owner)")
	rf.StringVar(&f.backend, "keyring", keyring.BackendFile, "keyring backend: file or test")
	return []*cobra.Command{register, provenance}
}

func mustHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}

func printTrainedModel(w io.Writer, m api.TrainedModelView) {
	fmt.Fprintf(w, "model %x", []byte(m.Hash))
	if m.Name != "" {
		fmt.Fprintf(w, " (%s)", m.Name)
	}
	fmt.Fprintf(w, ": %d bytes, blob %x, registered at height %d by %s\n", m.Size, []byte(m.BlobID), m.Height, m.Owner)
	fmt.Fprintf(w, "  trained by %s: order %d, lease %d (now %s), output %s\n", m.Trainer, m.OrderID, m.LeaseID, m.LeaseStatus, m.Output)
	fmt.Fprintf(w, "  module %x, args [%s]\n", []byte(m.ModuleHash), strings.Join(m.Args, " "))
	for i, h := range m.InputHashes {
		n := fmt.Sprint(i)
		if i < len(m.InputNames) && m.InputNames[i] != "" {
			n = m.InputNames[i]
		}
		fmt.Fprintf(w, "  input %s: %x\n", n, []byte(h))
	}
	if m.DatasetID != 0 {
		fmt.Fprintf(w, "  dataset %d, root %x\n", m.DatasetID, []byte(m.DatasetRoot))
	}
	fmt.Fprintf(w, "  checkpoint chain: %d checkpoints over %d steps, final state %x, result list %x\n", m.Checkpoints, m.Steps, []byte(m.StateHash), []byte(m.ResultHash))
}
