package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/chain/zk"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/keyring"
	"github.com/agoranet/agora/zkml"
)

// zkChainCmds are `agora zk register`, `agora zk submit` and `agora zk
// show`: the zkML registry on chain (chain/zk).
func zkChainCmds(g *globals) []*cobra.Command {
	f := &txFlags{}
	var dir, modelPath, name string
	var batch uint32
	var price uint64
	sendAndShow := func(cmd *cobra.Command, msg any, show func(c *client.Client, ctx context.Context, res *client.TxResult, w io.Writer) error) error {
		if err := checkOutput(f.output); err != nil {
			return err
		}
		if f.from == "" {
			return fmt.Errorf("--from is required")
		}
		priv, err := keyFrom(g.home, f.backend, f.from)
		if err != nil {
			return err
		}
		c, err := client.New(f.node)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctxOr(cmd.Context()), 60*time.Second)
		defer cancel()
		res, err := c.NewSigner(priv).Send(ctx, msg)
		if err != nil {
			return err
		}
		return show(c, ctx, res, g.out)
	}
	register := &cobra.Command{Use: "register --dir DIR --model model.json --name NAME --from KEY",
		Short: "Register a zk model on chain: its weights commitment and its circuit's verifying key (from --dir: a ceremony's, or a devnet's single-party setup)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := zkml.LoadModel(modelPath)
			if err != nil {
				return err
			}
			com, err := m.Commitment()
			if err != nil {
				return err
			}
			vk, err := os.ReadFile(filepath.Join(dir, "verifying.key"))
			if err != nil {
				return err
			}
			if batch == 0 {
				cs, err := readCircuit(dir)
				if err != nil {
					return err
				}
				per := m.InLen() + m.OutLen() + 1
				n := cs.GetNbPublicVariables() - 2
				if n <= 0 || n%per != 0 {
					return fmt.Errorf("the circuit in %s is not this model's (%d public values, %d per inference)", dir, n, per)
				}
				batch = uint32(n / per)
			}
			msg := &types.MsgRegisterZKModel{Name: name, Commitment: com.FillBytes(make([]byte, 32)), VerifyingKey: vk,
				Batch: batch, InLen: uint32(m.InLen()), OutLen: uint32(m.OutLen()), Price: price}
			if err := zk.ValidateRegister(msg); err != nil {
				return err
			}
			return sendAndShow(cmd, msg, func(c *client.Client, ctx context.Context, res *client.TxResult, w io.Writer) error {
				id, _ := strconv.ParseUint(res.Events["zk_model_id"], 10, 64)
				var v api.ZKModelView
				if err := c.Query(ctx, api.ZKModelPath(id), 0, &v); err != nil {
					return err
				}
				return printer{w: w, json: f.output == "json"}.print(v, func(w io.Writer) {
					fmt.Fprintf(w, "zk model %d (%s) registered in block %d: commitment %x, verifying key %x, batch %d, %d inputs → %d logits, %d uagr an inference\n",
						v.ID, v.Name, res.Height, []byte(v.Commitment), []byte(v.VKHash), v.Batch, v.InLen, v.OutLen, v.Price)
				})
			})
		}}
	register.Flags().StringVar(&dir, "dir", "zk", "circuit and keys directory (verifying.key, circuit.r1cs)")
	register.Flags().StringVar(&modelPath, "model", "model.json", "the int8 model (only its commitment leaves this machine)")
	register.Flags().StringVar(&name, "name", "", "the model's name")
	register.Flags().Uint32Var(&batch, "batch", 0, "inferences per proof (default: the circuit's)")
	register.Flags().Uint64Var(&price, "price", 0, "uagr per proven inference")

	var modelID uint64
	var proofPath string
	submit := &cobra.Command{Use: "submit --model-id ID --proof proof.json --from KEY",
		Short: "Have the chain verify a proof (from `agora zk prove`) of a registered model and record its statement",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var pf proofFile
			if err := readJSON(proofPath, &pf); err != nil {
				return err
			}
			msg := &types.MsgVerifyZKProof{ModelId: modelID, Proof: pf.Proof}
			for i := range pf.Statement.Inputs {
				for _, x := range pf.Statement.Inputs[i] {
					msg.Inputs = append(msg.Inputs, byte(x))
				}
			}
			for i := range pf.Statement.Logits {
				msg.Logits = append(msg.Logits, pf.Statement.Logits[i]...)
			}
			for _, c := range pf.Statement.Classes {
				msg.Classes = append(msg.Classes, uint32(c))
			}
			if err := zk.ValidateVerify(msg); err != nil {
				return err
			}
			return sendAndShow(cmd, msg, func(c *client.Client, ctx context.Context, res *client.TxResult, w io.Writer) error {
				rep := map[string]any{"model_id": modelID, "statement": res.Events["statement"], "height": res.Height, "fee": res.Fee}
				return printer{w: w, json: f.output == "json"}.print(rep, func(w io.Writer) {
					fmt.Fprintf(w, "verified on chain in block %d (fee %d uagr): %d inferences of zk model %d, classes %v; statement %s\n",
						res.Height, res.Fee, len(msg.Classes), modelID, pf.Statement.Classes, res.Events["statement"])
				})
			})
		}}
	submit.Flags().Uint64Var(&modelID, "model-id", 0, "the registered zk model")
	submit.Flags().StringVar(&proofPath, "proof", "proof.json", "proof and statement (from `agora zk prove`)")

	show := &cobra.Command{Use: "show ID", Short: "A registered zk model: commitment, verifying key hash, shape, price, proofs verified on chain",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := u64(a[0], "zk model id")
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
			var v api.ZKModelView
			if err := c.Query(ctx, api.ZKModelPath(id), 0, &v); err != nil {
				return err
			}
			return printer{w: g.out, json: f.output == "json"}.print(v, func(w io.Writer) {
				fmt.Fprintf(w, "zk model %d (%s), owner %s, registered at height %d\n  commitment %x\n  verifying key %x (%d bytes)\n  batch %d, %d inputs → %d logits, %d uagr an inference; %d proofs verified on chain\n",
					v.ID, v.Name, v.Owner, v.Height, []byte(v.Commitment), []byte(v.VKHash), len(v.VerifyingKey), v.Batch, v.InLen, v.OutLen, v.Price, v.Proofs)
			})
		}}
	for _, c := range []*cobra.Command{register, submit, show} {
		c.Flags().StringVar(&f.node, "node", defaultNode, "node RPC address")
		c.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	}
	for _, c := range []*cobra.Command{register, submit} {
		c.Flags().StringVar(&f.from, "from", "", "name of the signing key")
		c.Flags().StringVar(&f.backend, "keyring", keyring.BackendFile, "keyring backend: file or test")
	}
	return []*cobra.Command{register, submit, show}
}
