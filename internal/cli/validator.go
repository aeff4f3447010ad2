package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/validator"
)

func validatorCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "validator", Short: "Verification work beside a validator node"}
	var nodeAddr, output, from, backend string
	var doReport bool
	var models []string
	var epoch uint64
	audit := &cobra.Command{
		Use:   "audit --epoch N --model FILE.gguf",
		Short: "Audit an epoch: fetch each provider's sampled openings, check them against the committed roots, re-execute them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := client.New(nodeAddr)
			if err != nil {
				return err
			}
			a, err := validator.NewAuditor(c, models)
			if err != nil {
				return err
			}
			defer a.Close()
			fs, err := a.AuditEpoch(ctxOr(cmd.Context()), epoch)
			if err != nil {
				return err
			}
			if doReport {
				if from == "" {
					return fmt.Errorf("--report needs --from (the validator operator's key)")
				}
				priv, err := keyFrom(g.home, backend, from)
				if err != nil {
					return err
				}
				n, err := validator.Report(ctxOr(cmd.Context()), c.NewSigner(priv), fs)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.errOut, "%d fault report(s) committed\n", n)
			}
			if fs == nil {
				fs = []validator.Finding{}
			}
			return printer{w: g.out, json: output == "json"}.print(fs, func(w io.Writer) {
				if len(fs) == 0 {
					fmt.Fprintf(w, "epoch %d: no commitments to audit\n", epoch)
				}
				for _, f := range fs {
					verdict := "ok"
					if !f.OK {
						verdict = f.Fault
					}
					fmt.Fprintf(w, "epoch %d provider %s receipt %d: %s %s\n", f.Epoch, f.Provider, f.Index, verdict, f.Reason)
				}
			})
		},
	}
	audit.Flags().StringVar(&nodeAddr, "node", defaultNode, "node RPC address")
	audit.Flags().Uint64Var(&epoch, "epoch", 0, "epoch to audit (its seed must exist)")
	audit.Flags().StringSliceVar(&models, "model", nil, "GGUF model files this auditor can re-execute (repeatable)")
	audit.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	audit.Flags().BoolVar(&doReport, "report", false, "submit fault verdicts on chain (MsgReportFault)")
	audit.Flags().StringVar(&from, "from", "", "validator operator key that signs the reports")
	audit.Flags().StringVar(&backend, "keyring", "file", "keyring backend: file or test")
	cmd.AddCommand(audit)
	return cmd
}
