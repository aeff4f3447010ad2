package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/oai"
	"github.com/agoranet/agora/protocol/zkinfer"
	"github.com/agoranet/agora/zkml"
)

// zkInferCmd is `agora zk infer`: proven inference through a gateway, the
// answer checked again here against the chain's registration (the
// gateway is not trusted for that), written as a proof file that `agora
// zk verify` and `agora zk submit` take.
func zkInferCmd(g *globals) *cobra.Command {
	var gw, node, apiKey, model, inputPath, out string
	var n int
	var publish bool
	cmd := &cobra.Command{
		Use:   "infer --model ID|NAME --input digits.json",
		Short: "Proven inference of a registered zk model through a gateway: outputs, proof, checked here against the chain",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var d digitsFile
			if err := readJSON(inputPath, &d); err != nil {
				return err
			}
			if n > 0 && len(d.Inputs) > n {
				d.Inputs = d.Inputs[:n]
			}
			ctx, cancel := context.WithTimeout(ctxOr(cmd.Context()), 10*time.Minute)
			defer cancel()
			ref := json.RawMessage(strconv.Quote(model))
			body, _ := json.Marshal(zkinfer.GatewayRequest{Model: ref, Inputs: d.Inputs, Publish: publish})
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, gw+zkinfer.InferPath, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			if apiKey != "" {
				req.Header.Set("Authorization", "Bearer "+apiKey)
			}
			t0 := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("gateway: %w", err)
			}
			defer resp.Body.Close()
			rb, err := io.ReadAll(io.LimitReader(resp.Body, zkinfer.MaxAnswerBytes+1))
			if err != nil {
				return fmt.Errorf("gateway: %w", err)
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("gateway: %s", oai.ParseError(resp.StatusCode, rb).Message)
			}
			var a zkinfer.GatewayAnswer
			if err := json.Unmarshal(rb, &a); err != nil {
				return fmt.Errorf("gateway answer: %w", err)
			}
			took := time.Since(t0)
			// Check it again against the chain's registration.
			c, err := client.New(node)
			if err != nil {
				return err
			}
			var v api.ZKModelView
			if err := c.Query(ctx, api.ZKModelPath(a.Model), 0, &v); err != nil {
				return err
			}
			vk, err := zkml.ReadVerifyingKey(bytes.NewReader(v.VerifyingKey))
			if err != nil {
				return err
			}
			proof, err := zkml.ReadProof(a.Proof)
			if err != nil {
				return err
			}
			st := zkml.Statement{Commitment: new(big.Int).SetBytes(v.Commitment), Inputs: a.Inputs, Logits: a.Logits}
			for _, c := range a.Classes {
				st.Classes = append(st.Classes, int(c))
			}
			for i := range min(a.Count, len(d.Inputs)) {
				if !bytes.Equal(int8Bytes(a.Inputs[i]), int8Bytes(d.Inputs[i])) {
					return fmt.Errorf("the answer's input %d is not the one sent", i)
				}
			}
			if err := zkml.Verify(vk, proof, &st, int(v.InLen), int(v.OutLen)); err != nil {
				return fmt.Errorf("the gateway's answer does not verify against zk model %d's registration: %w", v.ID, err)
			}
			if out != "" {
				if err := writeJSON(out, proofFile{Statement: st, Proof: a.Proof}); err != nil {
					return err
				}
			}
			fmt.Fprintf(g.out, "zk model %d (%s) by provider %s: classes %v for %d inputs, proof of %d bytes verified against the chain's key, %d uagr, %v\n",
				v.ID, v.Name, a.Provider, a.Classes[:a.Count], a.Count, len(a.Proof), a.Amount, took.Round(time.Millisecond))
			if len(d.Labels) >= a.Count {
				right := 0
				for i := range a.Count {
					if int(a.Classes[i]) == d.Labels[i] {
						right++
					}
				}
				fmt.Fprintf(g.out, "  %d of %d match the labels in %s\n", right, a.Count, inputPath)
			}
			if a.PublishedHeight > 0 {
				fmt.Fprintf(g.out, "  verified and recorded on chain in block %d (tx %s)\n", a.PublishedHeight, a.PublishedTx)
			}
			if out != "" {
				fmt.Fprintf(g.out, "  proof and statement in %s (`agora zk verify --proof %s`, `agora zk submit`)\n", out, out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&gw, "gateway", "http://127.0.0.1:8080", "gateway base URL")
	cmd.Flags().StringVar(&node, "node", defaultNode, "node RPC address (the answer is checked against the chain's registration)")
	cmd.Flags().StringVar(&apiKey, "api-key", "", "gateway API key")
	cmd.Flags().StringVar(&model, "model", "", "registered zk model: id or name")
	cmd.Flags().StringVar(&inputPath, "input", "digits.json", `inputs: {"inputs": [[int8, ...], ...], "labels": [...]} (at most the model's batch)`)
	cmd.Flags().IntVar(&n, "n", 0, "use only the first N inputs")
	cmd.Flags().BoolVar(&publish, "publish", false, "also have the chain verify and record the proof (the gateway's account pays the fee)")
	cmd.Flags().StringVar(&out, "out", "proof.json", "where to write the proof and its statement (empty: nowhere)")
	cmd.MarkFlagRequired("model")
	return cmd
}

func int8Bytes(v []int8) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}
