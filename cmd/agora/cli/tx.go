package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/keyring"
)

type txFlags struct {
	from, node, backend, output, memo string
	async                             bool
}

const defaultNode = "tcp://127.0.0.1:26657"

func txCmd(g *globals) *cobra.Command {
	f := &txFlags{}
	cmd := &cobra.Command{Use: "tx", Short: "Sign and broadcast a transaction"}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.from, "from", "", "name of the signing key")
	pf.StringVar(&f.node, "node", defaultNode, "node RPC address")
	pf.StringVar(&f.backend, "keyring", keyring.BackendFile, "keyring backend: file or test")
	pf.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	pf.StringVar(&f.memo, "memo", "", "tx memo")
	pf.BoolVar(&f.async, "async", false, "return after CheckTx instead of waiting for the block")

	send := func(msgOf func(args []string) (any, error)) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error { return broadcast(cmd.Context(), g, f, msgOf, args) }
	}
	amount := func(s string) (uint64, error) {
		v, err := strconv.ParseUint(strings.TrimSuffix(s, "uagr"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("amount %q: want an integer number of uagr", s)
		}
		return v, nil
	}
	cmd.AddCommand(&cobra.Command{
		Use: "send TO AMOUNT", Short: "Send uagr to an address", Args: cobra.ExactArgs(2),
		RunE: send(func(a []string) (any, error) {
			to, err := types.ParseAddress(a[0])
			if err != nil {
				return nil, err
			}
			amt, err := amount(a[1])
			return &types.MsgSend{To: to, Amount: amt}, err
		}),
	})

	val := &cobra.Command{Use: "validator", Short: "Validator bonding"}
	val.AddCommand(
		&cobra.Command{Use: "bond CONS_PUBKEY_HEX AMOUNT", Short: "Bond stake to a validator consensus key (see priv_validator_key.json)", Args: cobra.ExactArgs(2),
			RunE: send(func(a []string) (any, error) {
				pk, err := hex.DecodeString(a[0])
				if err != nil {
					return nil, fmt.Errorf("consensus key: %w", err)
				}
				amt, err := amount(a[1])
				return &types.MsgBondValidator{ConsPubKey: pk, Amount: amt}, err
			})},
		&cobra.Command{Use: "unbond AMOUNT", Short: "Start unbonding validator stake", Args: cobra.ExactArgs(1),
			RunE: send(func(a []string) (any, error) {
				amt, err := amount(a[0])
				return &types.MsgUnbondValidator{Amount: amt}, err
			})},
		&cobra.Command{Use: "unjail", Short: "Rejoin the validator set after the jail period", Args: cobra.NoArgs,
			RunE: send(func([]string) (any, error) { return &types.MsgUnjailValidator{}, nil })},
	)

	var pi providerInfoFlags
	prov := &cobra.Command{Use: "provider", Short: "Provider bond and registry entry"}
	register := &cobra.Command{Use: "register", Short: "Register as a provider (bond at least min_provider_stake first)", Args: cobra.NoArgs,
		RunE: send(func([]string) (any, error) {
			info, err := pi.info()
			return &types.MsgRegisterProvider{Info: info}, err
		})}
	update := &cobra.Command{Use: "update", Short: "Replace the provider's registry entry", Args: cobra.NoArgs,
		RunE: send(func([]string) (any, error) {
			info, err := pi.info()
			return &types.MsgUpdateProvider{Info: info}, err
		})}
	pi.register(register)
	pi.register(update)
	prov.AddCommand(
		&cobra.Command{Use: "bond AMOUNT", Short: "Bond provider stake", Args: cobra.ExactArgs(1),
			RunE: send(func(a []string) (any, error) {
				amt, err := amount(a[0])
				return &types.MsgBondProvider{Amount: amt}, err
			})},
		&cobra.Command{Use: "unbond AMOUNT", Short: "Start unbonding provider stake", Args: cobra.ExactArgs(1),
			RunE: send(func(a []string) (any, error) {
				amt, err := amount(a[0])
				return &types.MsgUnbondProvider{Amount: amt}, err
			})},
		register, update,
		&cobra.Command{Use: "deregister", Short: "Leave the registry", Args: cobra.NoArgs,
			RunE: send(func([]string) (any, error) { return &types.MsgDeregisterProvider{}, nil })},
	)

	ch := &cobra.Command{Use: "channel", Short: "Payment channels (client → provider)"}
	ch.AddCommand(
		&cobra.Command{Use: "open PROVIDER DEPOSIT EXPIRY_HEIGHT", Short: "Open a channel to a provider", Args: cobra.ExactArgs(3),
			RunE: send(func(a []string) (any, error) {
				p, err := types.ParseAddress(a[0])
				if err != nil {
					return nil, err
				}
				dep, err := amount(a[1])
				if err != nil {
					return nil, err
				}
				exp, err := u64(a[2], "expiry height")
				return &types.MsgOpenChannel{Provider: p, Deposit: dep, ExpiryHeight: int64(exp)}, err
			})},
		&cobra.Command{Use: "topup CHANNEL_ID AMOUNT [NEW_EXPIRY_HEIGHT]", Short: "Add to a channel's deposit and/or extend its expiry", Args: cobra.RangeArgs(2, 3),
			RunE: send(func(a []string) (any, error) {
				id, err := u64(a[0], "channel id")
				if err != nil {
					return nil, err
				}
				amt, err := amount(a[1])
				if err != nil {
					return nil, err
				}
				var exp uint64
				if len(a) == 3 {
					if exp, err = u64(a[2], "expiry height"); err != nil {
						return nil, err
					}
				}
				return &types.MsgTopUpChannel{ChannelId: id, Amount: amt, ExpiryHeight: int64(exp)}, nil
			})},
		&cobra.Command{Use: "redeem CHANNEL_ID CUMULATIVE SIGNATURE_HEX", Short: "Redeem a client's voucher (as the provider)", Args: cobra.ExactArgs(3),
			RunE: send(func(a []string) (any, error) {
				id, err := u64(a[0], "channel id")
				if err != nil {
					return nil, err
				}
				cum, err := amount(a[1])
				if err != nil {
					return nil, err
				}
				sig, err := hex.DecodeString(a[2])
				if err != nil {
					return nil, fmt.Errorf("signature: %w", err)
				}
				return &types.MsgRedeemVoucher{Voucher: &types.Voucher{ChannelId: id, CumulativeAmount: cum, Signature: sig}}, nil
			})},
		&cobra.Command{Use: "close CHANNEL_ID", Short: "Close an expired channel and take back the rest (as the client)", Args: cobra.ExactArgs(1),
			RunE: send(func(a []string) (any, error) {
				id, err := u64(a[0], "channel id")
				return &types.MsgCloseChannel{ChannelId: id}, err
			})},
	)

	epoch := &cobra.Command{Use: "epoch", Short: "Epoch commitments"}
	var service string
	commit := &cobra.Command{Use: "commit EPOCH ROOT_HEX RECORDS TOTAL_BILLED", Short: "Commit the Merkle root of an epoch's records of a service (as a provider; default inference: receipts)", Args: cobra.ExactArgs(4),
		RunE: send(func(a []string) (any, error) {
			n, err := u64(a[0], "epoch")
			if err != nil {
				return nil, err
			}
			root, err := hex.DecodeString(a[1])
			if err != nil {
				return nil, fmt.Errorf("root: %w", err)
			}
			cnt, err := u64(a[2], "record count")
			if err != nil {
				return nil, err
			}
			tot, err := amount(a[3])
			return &types.MsgCommitEpoch{Service: service, Epoch: n, Root: root, RecordCount: cnt, TotalBilled: tot}, err
		})}
	commit.Flags().StringVar(&service, "service", "", "the kind of work the records are of (default: inference)")
	epoch.AddCommand(commit)

	cmd.AddCommand(val, prov, ch, epoch, voucherCmd(g, f))
	return cmd
}

// voucherCmd signs a voucher off chain (the client's side of a payment).
func voucherCmd(g *globals, f *txFlags) *cobra.Command {
	var chainID string
	c := &cobra.Command{
		Use: "voucher CHANNEL_ID CUMULATIVE", Short: "Sign a payment voucher off chain (as the client); prints it, broadcasts nothing",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, a []string) error {
			if f.from == "" {
				return fmt.Errorf("--from is required")
			}
			id, err := strconv.ParseUint(a[0], 10, 64)
			if err != nil {
				return fmt.Errorf("channel id %q: %w", a[0], err)
			}
			cum, err := strconv.ParseUint(a[1], 10, 64)
			if err != nil {
				return fmt.Errorf("cumulative %q: %w", a[1], err)
			}
			if chainID == "" {
				c, err := client.New(f.node)
				if err != nil {
					return err
				}
				if chainID, err = c.ChainID(ctxOr(cmd.Context())); err != nil {
					return err
				}
			}
			priv, err := keyFrom(g.home, f.backend, f.from)
			if err != nil {
				return err
			}
			v := types.SignVoucher(priv, chainID, id, cum)
			out := map[string]any{"chain_id": chainID, "channel_id": id, "cumulative_amount": cum, "signature": hex.EncodeToString(v.Signature)}
			return printer{w: g.out, json: f.output == "json"}.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "channel %d, cumulative %d uagr\nsignature: %x\n", id, cum, v.Signature)
			})
		},
	}
	c.Flags().StringVar(&chainID, "chain-id", "", "chain id (default: asked from --node)")
	return c
}

func ctxOr(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}

func broadcast(ctx context.Context, g *globals, f *txFlags, msgOf func([]string) (any, error), args []string) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	if f.from == "" {
		return fmt.Errorf("--from is required")
	}
	msg, err := msgOf(args)
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
	ctx, cancel := context.WithTimeout(ctxOr(ctx), 90*time.Second)
	defer cancel()
	s := c.NewSigner(priv)
	p := printer{w: g.out, json: f.output == "json"}
	// Submit signs on the node's pending nonce (so a second tx sent before the
	// first commits gets the next one) and resubmits while the mempool is full.
	hash, nonce, err := s.Submit(ctx, msg, f.memo)
	if err != nil {
		return err
	}
	if f.async {
		return p.print(map[string]any{"hash": hash, "nonce": nonce}, func(w io.Writer) {
			fmt.Fprintf(w, "accepted into the mempool: %s (nonce %d)\n", hash, nonce)
		})
	}
	res, err := c.WaitTx(ctx, hash)
	if err != nil {
		return err
	}
	return p.print(res, func(w io.Writer) {
		fmt.Fprintf(w, "committed in block %d: %s (fee %d uagr)\n", res.Height, res.Hash, res.Fee)
		for k, v := range res.Events {
			if k != "fee" && k != "signer" && k != "msg" {
				fmt.Fprintf(w, "  %s: %s\n", k, v)
			}
		}
	})
}

type providerInfoFlags struct {
	endpoint      string
	models        []string
	modelFiles    []string
	priceIn       uint64
	priceOut      uint64
	cpu, gpu      string
	memory        uint64
	capabilities  []string
	contextLength uint32
}

func (p *providerInfoFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&p.endpoint, "endpoint", "", "base URL gateways call (http or https)")
	fs.StringSliceVar(&p.models, "model", nil, "model offered as NAME:SHA256_HEX[:CONTEXT_LENGTH] (repeatable)")
	fs.StringSliceVar(&p.modelFiles, "model-file", nil, "model file to hash and offer, named after the file (repeatable)")
	fs.Uint32Var(&p.contextLength, "context-length", 4096, "context length for --model-file models")
	fs.Uint64Var(&p.priceIn, "price-input", 0, "uagr per 1,000 input tokens")
	fs.Uint64Var(&p.priceOut, "price-output", 0, "uagr per 1,000 output tokens")
	fs.StringVar(&p.cpu, "cpu", "", "CPU model")
	fs.StringVar(&p.gpu, "gpu", "", "GPU model")
	fs.Uint64Var(&p.memory, "memory", 0, "memory in bytes")
	fs.StringSliceVar(&p.capabilities, "capability", []string{"chat"}, "capabilities (repeatable), e.g. chat, wasm")
}

func (p *providerInfoFlags) info() (*types.ProviderInfo, error) {
	info := &types.ProviderInfo{
		Endpoint: p.endpoint, PriceInputPer_1K: p.priceIn, PriceOutputPer_1K: p.priceOut,
		Hardware: &types.Hardware{Cpu: p.cpu, Gpu: p.gpu, MemoryBytes: p.memory}, Capabilities: p.capabilities,
	}
	for _, m := range p.models {
		parts := strings.Split(m, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return nil, fmt.Errorf("--model %q: want NAME:SHA256_HEX[:CONTEXT_LENGTH]", m)
		}
		h, err := hex.DecodeString(parts[1])
		if err != nil {
			return nil, fmt.Errorf("--model %q: hash: %w", m, err)
		}
		ctxLen := uint64(p.contextLength)
		if len(parts) == 3 {
			if ctxLen, err = strconv.ParseUint(parts[2], 10, 32); err != nil {
				return nil, fmt.Errorf("--model %q: context length: %w", m, err)
			}
		}
		info.Models = append(info.Models, &types.ModelOffer{Name: parts[0], Hash: h, ContextLength: uint32(ctxLen)})
	}
	for _, path := range p.modelFiles {
		h, err := hashFile(path)
		if err != nil {
			return nil, err
		}
		name := path[strings.LastIndex(path, "/")+1:]
		info.Models = append(info.Models, &types.ModelOffer{Name: name, Hash: h, ContextLength: p.contextLength})
	}
	return info, types.ValidateProviderInfo(info)
}

func hashFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("model file: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("hash %s: %w", path, err)
	}
	return h.Sum(nil), nil
}

// u64 parses a command argument as a non-negative integer, naming it.
func u64(s, what string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a non-negative integer", what, s)
	}
	return v, nil
}
