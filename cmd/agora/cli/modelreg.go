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
	"github.com/agoranet/agora/chain/types"
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
			hash := mustHex(tx.Events["model"])
			m, err := c.TrainedModelRecord(ctx, hash, msg.LeaseId)
			if err != nil {
				return err
			}
			recs, err := c.TrainedModelRecords(ctx, hash)
			if err != nil {
				return err
			}
			return printer{w: g.out, json: f.output == "json"}.print(m, func(w io.Writer) {
				fmt.Fprintf(w, "registered in block %d (fee %d uagr):\n", tx.Height, tx.Fee)
				printTrainedModel(w, m)
				if len(recs) > 1 {
					fmt.Fprintf(w, "note: these bytes have %d records: other leases registered them too (agora model provenance %x lists them)\n", len(recs), hash)
					printModules(w, recs)
				}
			})
		}}
	rf := register.Flags()
	rf.StringVar(&output, "job-output", "out/model.gguf", "the job's output holding the model (the job must also write it with .sha256 appended: its sha256sum line)")
	rf.StringVar(&name, "name", "", "display name")
	rf.DurationVar(&wait, "wait", 10*time.Minute, "how long to wait for the job to finish")

	provenance := &cobra.Command{Use: "provenance HASH|FILE",
		Short: "Show every record of a registered model (one per lease that registered the bytes); given a file, check its sha256 and blob ID against them",
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
			recs, err := c.TrainedModelRecords(ctx, hash)
			if err != nil {
				return err
			}
			p := provenanceOf(recs)
			if file != nil {
				if err := p.check(a[0], file); err != nil {
					return err
				}
			}
			return printer{w: g.out, json: f.output == "json"}.print(p, p.write)
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

// provenance is what `agora model provenance` shows: every record of one
// sha256, by lease (the oldest first). The registry keys records by
// (sha256, lease), so the same bytes registered from several leases have
// several records, each naming the module that wrote them: anyone may run
// a job that copies a public file and register it, and only the module
// (and inputs, checkpoint chain) tells the trainer from a copier.
type provenance struct {
	Records []api.TrainedModelView `json:"records"`
	// Given a file: its path, blob ID and the leases whose record has
	// that blob ID and size (a record of the same sha256 with another
	// blob ID says its lease wrote other bytes under that hash).
	File       string         `json:"file,omitempty"`
	FileBlobID types.HexBytes `json:"file_blob_id,omitempty"`
	Matching   []uint64       `json:"matching_leases,omitempty"`
}

func provenanceOf(recs []api.TrainedModelView) *provenance {
	return &provenance{Records: recs}
}

// check matches file (whose sha256 is the records') against each record's
// blob ID and size; at least one must match.
func (p *provenance) check(name string, file []byte) error {
	id := blob.Of(file)
	p.File, p.FileBlobID = name, id[:]
	for _, m := range p.Records {
		if string(m.BlobID) == string(id[:]) && m.Size == uint64(len(file)) {
			p.Matching = append(p.Matching, m.LeaseID)
		}
	}
	if len(p.Matching) == 0 {
		return fmt.Errorf("%s has a registered sha256 but none of its %d record(s) has its blob ID (%s, %d bytes; registered %s)", name, len(p.Records), id, len(file), blobIDs(p.Records))
	}
	return nil
}

func (p *provenance) matches(lease uint64) bool {
	for _, l := range p.Matching {
		if l == lease {
			return true
		}
	}
	return false
}

func (p *provenance) write(w io.Writer) {
	if len(p.Records) == 0 {
		return
	}
	n := len(p.Records)
	if p.File != "" {
		fmt.Fprintf(w, "%s matches %d of the %d record(s) of its sha256 (sha256 and blob ID)\n", p.File, len(p.Matching), n)
	}
	fmt.Fprintf(w, "model %x has %d record(s), by lease:\n", []byte(p.Records[0].Hash), n)
	for i, m := range p.Records {
		fmt.Fprintf(w, "[%d/%d] ", i+1, n)
		printTrainedModel(w, m)
		if p.File != "" && !p.matches(m.LeaseID) {
			fmt.Fprintf(w, "  ! this record's blob ID %x (%d bytes) is not %s's: lease %d wrote other bytes under this sha256\n", []byte(m.BlobID), m.Size, p.File, m.LeaseID)
		}
	}
	if n > 1 {
		fmt.Fprintf(w, "the same bytes were registered by %d leases; the registry does not say which one trained them: each record names the module that wrote the file. A job that only copies a public file registers it too, so tell the trainer (e.g. the train example) from a copier by its module, inputs and checkpoint chain:\n", n)
		printModules(w, p.Records)
	}
}

// printModules names each record's lease, module and work, one a line.
func printModules(w io.Writer, recs []api.TrainedModelView) {
	for _, m := range recs {
		fmt.Fprintf(w, "  lease %d (order %d, registered by %s at height %d): module %x, args [%s], %d checkpoint(s) over %d step(s)\n",
			m.LeaseID, m.OrderID, m.Owner, m.Height, []byte(m.ModuleHash), strings.Join(m.Args, " "), m.Checkpoints, m.Steps)
	}
}

func blobIDs(recs []api.TrainedModelView) string {
	var out []string
	for _, m := range recs {
		out = append(out, fmt.Sprintf("lease %d: %x, %d bytes", m.LeaseID, []byte(m.BlobID), m.Size))
	}
	return strings.Join(out, "; ")
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
