package app

import (
	"fmt"
	"log/slog"

	abci "github.com/cometbft/cometbft/abci/types"
	"sort"

	"github.com/agoranet/agora/chain/audit"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/channels"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/rewards"
	"github.com/agoranet/agora/chain/services"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// Ctx is what a message handler may know about its block.
type Ctx struct {
	ChainID  string
	Height   int64
	Params   types.Params
	Services services.Registry // the kinds of work the app's modules declare
}

// Handler executes one message against kv, a cache written only when the
// handler succeeds. tx.Msg is the message, already statelessly validated;
// the returned pairs become the attributes of the tx's "agora" event.
type Handler func(kv store.KV, ctx Ctx, tx *types.DecodedTx) ([][2]string, error)

// Module is one chain module's contribution to the message table: the
// messages it declares beyond the chain's own (types.Msgs declares those)
// and the handler of each message it executes, keyed by message name.
type Module struct {
	Name     string
	Msgs     []types.MsgSpec
	Handlers map[string]Handler
	// Queries answer the JSON query paths whose first segment is the key
	// (/account/<addr> → "account"); chain/api names each path's view.
	Queries map[string]QueryHandler
	// Services are the kinds of work the module declares (chain/services):
	// their commitments, fault kinds, slash params and refunds.
	Services []*services.Service
	// EndBlock, if set, runs at the end of every block, after the txs, in
	// the order of the module table; its events become the block's.
	EndBlock EndBlocker
}

// EndBlocker is a module's per-block work that no tx triggers.
type EndBlocker func(kv store.KV, b *BlockCtx) ([]abci.Event, error)

// BlockCtx is what an EndBlocker may know about its block.
type BlockCtx struct {
	Ctx
	Hash        []byte
	Misbehavior []abci.Misbehavior
	Log         *slog.Logger
	// Seeded is the app's record of an epoch seed drawn in this block
	// (metrics, log) and returns its event.
	Seeded func(e *types.Epoch) abci.Event
}

type endBlocker struct {
	module string
	run    EndBlocker
}

// DefaultModules are the chain's modules, which together execute every
// message of types.Msgs.
func DefaultModules() []Module {
	return []Module{bankModule(), stakeModule(), registryModule(), channelsModule(), epochsModule(), auditModule(), rewardsModule(), jobsModule(), dataModule(), storageModule(), modelsModule(), zkModule()}
}

// msgTable is what an app dispatches through: every declared message and
// exactly one handler for each.
type msgTable struct {
	msgs     *types.MsgRegistry
	handlers map[string]Handler
	queries  map[string]QueryHandler
	endBlock []endBlocker
	services services.Registry
}

// buildMsgTable joins modules onto the chain's own messages and checks that
// every message has one handler and every handler a message.
func buildMsgTable(mods []Module) (msgTable, error) {
	var extra []types.MsgSpec
	handlers := map[string]Handler{}
	queries := map[string]QueryHandler{}
	owner := map[string]string{}
	queryOwner := map[string]string{"params": "app"} // the app answers /params itself
	var ends []endBlocker
	var svcs services.Registry
	for _, m := range mods {
		extra = append(extra, m.Msgs...)
		for _, s := range m.Services {
			if _, err := svcs.Get(s.Name); err == nil {
				return msgTable{}, fmt.Errorf("service %q declared twice (module %q)", s.Name, m.Name)
			}
			svcs = append(svcs, s)
		}
		if m.EndBlock != nil {
			ends = append(ends, endBlocker{m.Name, m.EndBlock})
		}
		for name, q := range m.Queries {
			if prev, dup := queryOwner[name]; dup {
				return msgTable{}, fmt.Errorf("query %q answered by %q and %q", name, prev, m.Name)
			}
			if q == nil {
				return msgTable{}, fmt.Errorf("module %q: nil query %q", m.Name, name)
			}
			queryOwner[name] = m.Name
			queries[name] = q
		}
		for name, h := range m.Handlers {
			if prev, dup := owner[name]; dup {
				return msgTable{}, fmt.Errorf("message %q handled by modules %q and %q", name, prev, m.Name)
			}
			if h == nil {
				return msgTable{}, fmt.Errorf("module %q: nil handler for %q", m.Name, name)
			}
			owner[name] = m.Name
			handlers[name] = h
		}
	}
	reg, err := types.Msgs().With(extra...)
	if err != nil {
		return msgTable{}, err
	}
	for _, name := range reg.Names() {
		if handlers[name] == nil {
			return msgTable{}, fmt.Errorf("message %q has no handler", name)
		}
	}
	var orphans []string
	for name := range handlers {
		if _, ok := reg.Lookup(name); !ok {
			orphans = append(orphans, name)
		}
	}
	if len(orphans) > 0 {
		sort.Strings(orphans)
		return msgTable{}, fmt.Errorf("handlers for undeclared messages %v", orphans)
	}
	return msgTable{msgs: reg, handlers: handlers, queries: queries, endBlock: ends, services: svcs}, nil
}

func bankModule() Module {
	return Module{Name: "bank", Queries: bankQueries(), Handlers: map[string]Handler{
		"send": func(kv store.KV, _ Ctx, d *types.DecodedTx) ([][2]string, error) {
			m := d.Msg.(*types.MsgSend)
			if err := bank.Send(kv, d.Signer, m.To, m.Amount); err != nil {
				return nil, err
			}
			return [][2]string{{"to", types.Address(m.To).String()}}, nil
		},
	}}
}

func stakeModule() Module {
	return Module{Name: "stake", EndBlock: stakeEndBlock, Queries: stakeQueries(), Handlers: map[string]Handler{
		"bond_validator": func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
			m := d.Msg.(*types.MsgBondValidator)
			return nil, stake.BondValidator(kv, c.Params, d.Signer, m.ConsPubKey, m.Amount)
		},
		"unbond_validator": func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
			return nil, stake.UnbondValidator(kv, c.Params, c.Height, d.Signer, d.Msg.(*types.MsgUnbondValidator).Amount)
		},
		"unjail_validator": func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
			return nil, stake.Unjail(kv, c.Params, c.Height, d.Signer)
		},
		"bond_provider": func(kv store.KV, _ Ctx, d *types.DecodedTx) ([][2]string, error) {
			return nil, stake.BondProvider(kv, d.Signer, d.Msg.(*types.MsgBondProvider).Amount)
		},
		"unbond_provider": func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
			var keep uint64
			if registry.IsActive(kv, d.Signer) {
				keep = c.Params.MinProviderStake
			}
			return nil, stake.UnbondProvider(kv, c.Params, c.Height, d.Signer, d.Msg.(*types.MsgUnbondProvider).Amount, keep)
		},
	}}
}

func registryModule() Module {
	return Module{Name: "registry", Queries: registryQueries(), Handlers: map[string]Handler{
		"register_provider": func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
			return nil, registry.Register(kv, c.Params, c.Height, d.Signer, d.Msg.(*types.MsgRegisterProvider).Info)
		},
		"update_provider": func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
			return nil, registry.Update(kv, c.Height, d.Signer, d.Msg.(*types.MsgUpdateProvider).Info)
		},
		"deregister_provider": func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
			return nil, registry.Deregister(kv, c.Height, d.Signer)
		},
	}}
}

func channelsModule() Module {
	return Module{Name: "channels", Queries: channelsQueries(), Handlers: map[string]Handler{
		"open_channel": func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
			m := d.Msg.(*types.MsgOpenChannel)
			id, err := channels.Open(kv, c.Height, d.Signer, d.Tx.PubKey, m.Provider, m.Deposit, m.ExpiryHeight)
			if err != nil {
				return nil, err
			}
			return [][2]string{{"channel_id", itoa(id)}, {"provider", types.Address(m.Provider).String()}}, nil
		},
		"top_up_channel": func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
			m := d.Msg.(*types.MsgTopUpChannel)
			return [][2]string{{"channel_id", itoa(m.ChannelId)}},
				channels.TopUp(kv, c.Height, d.Signer, m.ChannelId, m.Amount, m.ExpiryHeight)
		},
		"redeem_voucher": func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
			m := d.Msg.(*types.MsgRedeemVoucher)
			paid, err := channels.Redeem(kv, c.ChainID, d.Signer, m.Voucher)
			if err != nil {
				return nil, err
			}
			return [][2]string{{"channel_id", itoa(m.Voucher.ChannelId)}, {"paid", itoa(paid)}}, nil
		},
		"close_channel": func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
			m := d.Msg.(*types.MsgCloseChannel)
			refund, err := channels.Close(kv, c.Height, d.Signer, m.ChannelId)
			if err != nil {
				return nil, err
			}
			return [][2]string{{"channel_id", itoa(m.ChannelId)}, {"refund", itoa(refund)}}, nil
		},
	}}
}

func epochsModule() Module {
	return Module{Name: "epochs", Services: []*services.Service{services.InferenceService()}, EndBlock: epochsEndBlock, Queries: epochsQueries(), Handlers: map[string]Handler{
		"commit_epoch": func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
			m := d.Msg.(*types.MsgCommitEpoch)
			return [][2]string{{"epoch", itoa(m.Epoch)}}, epochs.Commit(kv, c.Services, c.Height, d.Signer, m)
		},
	}}
}

func auditModule() Module {
	return Module{Name: "audit", EndBlock: auditEndBlock, Queries: auditQueries(), Handlers: map[string]Handler{
		"report_fault": func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
			m := d.Msg.(*types.MsgReportFault)
			r, err := audit.Report(kv, c.Params, c.Services, c.ChainID, c.Height, d.Signer, m)
			if err != nil {
				return nil, err
			}
			return [][2]string{{"provider", types.Address(m.Provider).String()}, {"votes", itoa(uint64(r.Votes))},
				{"applied", fmt.Sprint(r.Applied)}, {"slashed", itoa(r.Slashed)}, {"refund", itoa(r.Refund)}, {"reward", itoa(r.Reward)}}, nil
		},
		"report_omission": func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
			o, err := audit.ReportOmission(kv, c.Params, c.ChainID, c.Height, d.Signer, d.Msg.(*types.MsgReportOmission))
			if err != nil {
				return nil, err
			}
			return [][2]string{{"provider", types.Address(o.Provider).String()}, {"epoch", itoa(o.Epoch)}, {"index", itoa(o.Index)},
				{"challenged", fmt.Sprint(o.Challenged)}, {"applied", fmt.Sprint(o.Applied)}, {"slashed", itoa(o.Slashed)},
				{"refund", itoa(o.Refund)}, {"reward", itoa(o.Reward)}}, nil
		},
		"answer_omission": func(kv store.KV, _ Ctx, d *types.DecodedTx) ([][2]string, error) {
			m := d.Msg.(*types.MsgAnswerOmission)
			return [][2]string{{"epoch", itoa(m.Epoch)}, {"index", itoa(m.Index)}}, audit.AnswerOmission(kv, d.Signer, m)
		},
		"dispute_receipt": func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
			r, err := audit.DisputeReceipt(kv, c.Params, c.ChainID, c.Height, d.Signer, d.Msg.(*types.MsgDisputeReceipt))
			if err != nil {
				return nil, err
			}
			return [][2]string{{"provider", types.Address(r.Provider).String()}, {"epoch", itoa(r.Epoch)}, {"index", itoa(r.Index)},
				{"deadline", itoa(uint64(r.Deadline))}}, nil
		},
	}}
}

func rewardsModule() Module {
	return Module{Name: "rewards", EndBlock: rewardsEndBlock, Handlers: map[string]Handler{
		"submit_scores": func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
			m := d.Msg.(*types.MsgSubmitScores)
			return [][2]string{{"epoch", itoa(m.Epoch)}, {"scores", itoa(uint64(len(m.Scores)))}},
				rewards.SubmitScores(kv, c.Params, c.Height, d.Signer, m)
		},
	}}
}
