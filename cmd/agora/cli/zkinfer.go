package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/consensys/gnark/backend/groth16"

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
			if len(d.Inputs) == 0 {
				return fmt.Errorf("%s has no inputs", inputPath)
			}
			ctx, cancel := context.WithTimeout(ctxOr(cmd.Context()), 30*time.Minute)
			defer cancel()
			c, err := client.New(node)
			if err != nil {
				return err
			}
			v, err := findZKModel(ctx, c, model)
			if err != nil {
				return err
			}
			vk, err := zkml.ReadVerifyingKey(bytes.NewReader(v.VerifyingKey))
			if err != nil {
				return err
			}
			batch := int(v.Batch)
			chunks := (len(d.Inputs) + batch - 1) / batch
			var classes []uint32
			var paid uint64
			t0 := time.Now()
			for k := range chunks {
				in := d.Inputs[k*batch : min((k+1)*batch, len(d.Inputs))]
				a, took, err := askGatewayZK(ctx, gw, apiKey, v.ID, in, publish)
				if err != nil {
					return fmt.Errorf("inputs %d..%d: %w", k*batch, k*batch+len(in)-1, err)
				}
				// Check it again against the chain's registration: the
				// gateway is not trusted for that.
				st, err := checkZKAnswer(vk, v, in, a)
				if err != nil {
					return fmt.Errorf("inputs %d..%d: the gateway's answer does not hold against zk model %d's registration: %w", k*batch, k*batch+len(in)-1, v.ID, err)
				}
				classes = append(classes, a.Classes[:a.Count]...)
				paid += a.Amount
				file := ""
				if out != "" {
					file = out
					if k > 0 {
						ext := filepath.Ext(out)
						file = fmt.Sprintf("%s-%d%s", strings.TrimSuffix(out, ext), k+1, ext)
					}
					if err := writeJSON(file, proofFile{Statement: *st, Proof: a.Proof}); err != nil {
						return err
					}
				}
				fmt.Fprintf(g.out, "inputs %d..%d: classes %v, proof of %d bytes verified against the chain's key, %d uagr, %v",
					k*batch, k*batch+len(in)-1, a.Classes[:a.Count], len(a.Proof), a.Amount, took.Round(time.Millisecond))
				if file != "" {
					fmt.Fprintf(g.out, ", %s", file)
				}
				if a.PublishedHeight > 0 {
					fmt.Fprintf(g.out, ", recorded on chain in block %d", a.PublishedHeight)
				}
				if a.PublishError != "" {
					fmt.Fprintf(g.out, ", NOT recorded on chain: %s", a.PublishError)
				}
				fmt.Fprintln(g.out)
			}
			fmt.Fprintf(g.out, "zk model %d (%s) by provider %s: classes %v for %d inputs in %d proofs, all verified against the chain's key, %d uagr, %v\n",
				v.ID, v.Name, v.Owner, classes, len(classes), chunks, paid, time.Since(t0).Round(time.Millisecond))
			if len(d.Labels) >= len(classes) {
				right := 0
				for i, c := range classes {
					if int(c) == d.Labels[i] {
						right++
					}
				}
				fmt.Fprintf(g.out, "%d of %d match the labels in %s\n", right, len(classes), inputPath)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&gw, "gateway", "http://127.0.0.1:8080", "gateway base URL")
	cmd.Flags().StringVar(&node, "node", defaultNode, "node RPC address (the answer is checked against the chain's registration)")
	cmd.Flags().StringVar(&apiKey, "api-key", "", "gateway API key")
	cmd.Flags().StringVar(&model, "model", "", "registered zk model: id or name")
	cmd.Flags().StringVar(&inputPath, "input", "digits.json", `inputs: {"inputs": [[int8, ...], ...], "labels": [...]}: one proof per batch of them`)
	cmd.Flags().IntVar(&n, "n", 0, "use only the first N inputs")
	cmd.Flags().BoolVar(&publish, "publish", false, "also have the chain verify and record the proof (the gateway's account pays the fee)")
	cmd.Flags().StringVar(&out, "out", "proof.json", "where to write the proof and its statement (the k-th batch's: proof-k.json; empty: nowhere)")
	cmd.MarkFlagRequired("model")
	return cmd
}

// findZKModel reads a registered zk model by id or by its name.
func findZKModel(ctx context.Context, c *client.Client, ref string) (api.ZKModelView, error) {
	var v api.ZKModelView
	if id, err := strconv.ParseUint(ref, 10, 64); err == nil {
		return v, c.Query(ctx, api.ZKModelPath(id), 0, &v)
	}
	var all []api.ZKModelView
	if err := c.Query(ctx, api.ZKModelsPath(), 0, &all); err != nil {
		return v, err
	}
	var found []api.ZKModelView
	for _, m := range all {
		if m.Name == ref {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return v, fmt.Errorf("no zk model is registered as %q", ref)
	case 1:
		return found[0], nil
	}
	return v, fmt.Errorf("%d zk models are registered as %q: give an id", len(found), ref)
}

// askGatewayZK posts one batch to the gateway.
func askGatewayZK(ctx context.Context, gw, apiKey string, model uint64, inputs [][]int8, publish bool) (*zkinfer.GatewayAnswer, time.Duration, error) {
	body, _ := json.Marshal(zkinfer.GatewayRequest{Model: json.RawMessage(strconv.FormatUint(model, 10)), Inputs: inputs, Publish: publish})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, gw+zkinfer.InferPath, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("gateway: %w", err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, zkinfer.MaxAnswerBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("gateway: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("gateway: %s", oai.ParseError(resp.StatusCode, rb).Message)
	}
	var a zkinfer.GatewayAnswer
	if err := json.Unmarshal(rb, &a); err != nil {
		return nil, 0, fmt.Errorf("gateway answer: %w", err)
	}
	return &a, time.Since(t0), nil
}

// checkZKAnswer checks an answer against the inputs sent and the model's
// registration (its key and commitment), and returns its statement.
func checkZKAnswer(vk groth16.VerifyingKey, v api.ZKModelView, inputs [][]int8, a *zkinfer.GatewayAnswer) (*zkml.Statement, error) {
	if a.Model != v.ID || a.Count != len(inputs) || len(a.Inputs) < a.Count || len(a.Classes) < a.Count {
		return nil, fmt.Errorf("an answer for model %d, %d inputs, asked model %d, %d inputs", a.Model, a.Count, v.ID, len(inputs))
	}
	for i := range inputs {
		if !bytes.Equal(int8Bytes(a.Inputs[i]), int8Bytes(inputs[i])) {
			return nil, fmt.Errorf("the answer's input %d is not the one sent", i)
		}
	}
	proof, err := zkml.ReadProof(a.Proof)
	if err != nil {
		return nil, err
	}
	st := zkml.Statement{Commitment: new(big.Int).SetBytes(v.Commitment), Inputs: a.Inputs, Logits: a.Logits}
	for _, c := range a.Classes {
		st.Classes = append(st.Classes, int(c))
	}
	if err := zkml.Verify(vk, proof, &st, int(v.InLen), int(v.OutLen)); err != nil {
		return nil, err
	}
	return &st, nil
}

func int8Bytes(v []int8) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}
