package cli

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/receipt"
)

func receiptCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "receipt", Short: "Check the receipts a gateway holds"}
	var gw, nodeAddr, output string
	verifyCmd := &cobra.Command{
		Use:   "verify RECEIPT_ID",
		Short: "Check a receipt: the provider's signature, and its inclusion under the root the provider committed on chain",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			id := strings.ToLower(args[0])
			if b, err := hex.DecodeString(id); err != nil || len(b) != 32 {
				return fmt.Errorf("receipt id must be 64 hex characters")
			}
			ctx := ctxOr(cmd.Context())
			httpc := &http.Client{Timeout: 30 * time.Second}
			getJSON := func(url string, out any) error {
				resp, err := httpc.Get(url)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				if resp.StatusCode != 200 {
					return fmt.Errorf("%s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
				}
				return json.Unmarshal(body, out)
			}
			var held gateway.StoredReceipt
			if err := getJSON(strings.TrimSuffix(gw, "/")+"/v1/receipts/"+id, &held); err != nil {
				return fmt.Errorf("gateway: %w", err)
			}
			sr, err := receipt.Decode(held.Encoded)
			if err != nil {
				return err
			}
			if sr.IDHex() != id {
				return fmt.Errorf("the gateway returned receipt %s for %s", sr.IDHex(), id)
			}
			c, err := client.New(nodeAddr)
			if err != nil {
				return err
			}
			var acc api.AccountView
			var pv api.ProviderView
			var cm api.CommitmentView
			prov, err := types.ParseAddress(held.Provider)
			if err != nil {
				return fmt.Errorf("the gateway's record of receipt %s: provider: %w", id, err)
			}
			if err := c.Query(ctx, api.AccountPath(prov), 0, &acc); err != nil {
				return err
			}
			if err := sr.Verify(acc.PubKey); err != nil {
				return fmt.Errorf("receipt %s: %w", id, err)
			}
			if err := c.Query(ctx, api.ProviderPath(prov), 0, &pv); err != nil {
				return err
			}
			r := sr.Receipt
			if err := c.Query(ctx, api.CommitmentPath(r.Epoch, prov), 0, &cm); err != nil {
				if client.IsNotFound(err) {
					return fmt.Errorf("receipt %s is signed by its provider, but epoch %d is not committed on chain yet: try again after the epoch ends", id, r.Epoch)
				}
				return err
			}
			var pj receipt.ProofJSON
			if err := getJSON(fmt.Sprintf("%s/v1/receipts/%s/proof", strings.TrimSuffix(pv.Endpoint, "/"), id), &pj); err != nil {
				return fmt.Errorf("provider proof: %w", err)
			}
			if pj.Count != cm.RecordCount {
				return fmt.Errorf("the provider's proof is for %d receipts, it committed %d", pj.Count, cm.RecordCount)
			}
			if _, err := pj.VerifyAgainst(cm.Root); err != nil {
				return fmt.Errorf("receipt %s: %w", id, err)
			}
			out := map[string]any{"id": id, "provider": held.Provider, "epoch": r.Epoch, "index": r.Index, "amount": r.Amount,
				"committed_root": hex.EncodeToString(cm.Root), "committed_at_height": cm.Height, "receipts_in_epoch": cm.RecordCount, "verified": true}
			return printer{w: g.out, json: output == "json"}.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "receipt %s\n  signed by provider %s: ok\n  included (index %d of %d) under the root %s committed for epoch %d at height %d: ok\n  billed %d uagr (%d prompt + %d completion tokens)\n",
					id, held.Provider, r.Index, cm.RecordCount, hex.EncodeToString(cm.Root), r.Epoch, cm.Height, r.Amount, r.PromptTokens, r.CompletionTokens)
			})
		},
	}
	verifyCmd.Flags().StringVar(&gw, "gateway", "http://127.0.0.1:8080", "gateway holding the receipt")
	verifyCmd.Flags().StringVar(&nodeAddr, "node", defaultNode, "chain node RPC address")
	verifyCmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	var dgw, apiKey string
	disputeCmd := &cobra.Command{
		Use:   "dispute RECEIPT_ID",
		Short: "Dispute a committed receipt through the gateway that holds it: its account escrows the dispute bond and validators re-execute the request",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := strings.ToLower(args[0])
			if b, err := hex.DecodeString(id); err != nil || len(b) != 32 {
				return fmt.Errorf("receipt id must be 64 hex characters")
			}
			req, err := http.NewRequestWithContext(ctxOr(cmd.Context()), http.MethodPost, strings.TrimSuffix(dgw, "/")+"/v1/receipts/"+id+"/dispute", nil)
			if err != nil {
				return err
			}
			if apiKey != "" {
				req.Header.Set("Authorization", "Bearer "+apiKey)
			}
			resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
			if err != nil {
				return fmt.Errorf("gateway: %w", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if resp.StatusCode != http.StatusOK {
				var e struct {
					Error struct {
						Message string `json:"message"`
					} `json:"error"`
				}
				if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
					return fmt.Errorf("dispute refused (%d): %s", resp.StatusCode, e.Error.Message)
				}
				return fmt.Errorf("dispute refused (%d): %s", resp.StatusCode, strings.TrimSpace(string(body)))
			}
			var out map[string]any
			if err := json.Unmarshal(body, &out); err != nil {
				return err
			}
			return printer{w: g.out, json: output == "json"}.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "receipt %s disputed (tx %v at height %v): validators re-execute it until height %v; a confirmed fault refunds you and returns the bond\n",
					id, out["tx"], out["height"], out["deadline"])
			})
		},
	}
	disputeCmd.Flags().StringVar(&dgw, "gateway", "http://127.0.0.1:8080", "gateway holding the receipt")
	disputeCmd.Flags().StringVar(&apiKey, "api-key", "", "the gateway API key of the account that paid")
	disputeCmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.AddCommand(verifyCmd, disputeCmd)
	return cmd
}
