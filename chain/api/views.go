// Package api holds the JSON views of the chain's queries and the paths
// that ask for them: the API between the state machine and every client
// of it (roles, the CLI, the explorer). The state machine answers with
// these views; it does not define them.
package api

import (
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/services"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// The JSON shapes of query answers: addresses and hashes in hex, amounts in uagr.

type AccountView struct {
	Address types.Address  `json:"address"`
	Balance uint64         `json:"balance"`
	Nonce   uint64         `json:"nonce"`
	PubKey  types.HexBytes `json:"pub_key,omitempty"`
}

func AccountViewOf(a *types.Account) AccountView {
	return AccountView{Address: a.Address, Balance: a.Balance, Nonce: a.Nonce, PubKey: a.PubKey}
}

type ValidatorView struct {
	Operator    types.Address  `json:"operator"`
	ConsPubKey  types.HexBytes `json:"cons_pub_key"`
	ConsAddress types.HexBytes `json:"cons_address"`
	Bonded      uint64         `json:"bonded"`
	Power       int64          `json:"power"`
	Jailed      bool           `json:"jailed"`
	JailedUntil int64          `json:"jailed_until,omitempty"`
	Faults      uint64         `json:"faults"`
}

func ValidatorViewOf(p types.Params, v *types.Validator) ValidatorView {
	return ValidatorView{
		Operator: v.Operator, ConsPubKey: v.ConsPubKey, ConsAddress: stake.ConsAddress(v.ConsPubKey),
		Bonded: v.Bonded, Power: stake.Power(p, v), Jailed: v.Jailed, JailedUntil: v.JailedUntil, Faults: v.Faults,
	}
}

type UnbondingView struct {
	ID               uint64        `json:"id"`
	Owner            types.Address `json:"owner"`
	Kind             string        `json:"kind"`
	Amount           uint64        `json:"amount"`
	CreationHeight   int64         `json:"creation_height"`
	CompletionHeight int64         `json:"completion_height"`
}

func UnbondingViewOf(u *types.Unbonding) UnbondingView {
	kind := "validator"
	if u.Kind == types.BondKind_BOND_KIND_PROVIDER {
		kind = "provider"
	}
	return UnbondingView{ID: u.Id, Owner: u.Owner, Kind: kind, Amount: u.Amount, CreationHeight: u.CreationHeight, CompletionHeight: u.CompletionHeight}
}

type ModelView struct {
	Hash          types.HexBytes `json:"hash"`
	Name          string         `json:"name"`
	ContextLength uint32         `json:"context_length"`
}

type HardwareView struct {
	CPU         string `json:"cpu,omitempty"`
	GPU         string `json:"gpu,omitempty"`
	MemoryBytes uint64 `json:"memory_bytes,omitempty"`
}

type ProviderView struct {
	Address          types.Address `json:"address"`
	Registered       bool          `json:"registered"`
	Bonded           uint64        `json:"bonded"`
	Endpoint         string        `json:"endpoint"`
	Models           []ModelView   `json:"models"`
	PriceInputPer1K  uint64        `json:"price_input_per_1k"`
	PriceOutputPer1K uint64        `json:"price_output_per_1k"`
	Hardware         HardwareView  `json:"hardware"`
	Capabilities     []string      `json:"capabilities"`
	RegisteredHeight int64         `json:"registered_height"`
	UpdatedHeight    int64         `json:"updated_height"`
	Jailed           bool          `json:"jailed"`
	Faults           uint64        `json:"faults"`
	ReputationBps    uint64        `json:"reputation_bps"`
}

func ProviderViewOf(kv store.KV, p *types.Provider) ProviderView {
	v := ProviderView{
		Address: p.Address, Registered: p.Registered, Bonded: stake.ProviderBond(kv, p.Address),
		RegisteredHeight: p.RegisteredHeight, UpdatedHeight: p.UpdatedHeight, Jailed: p.Jailed, Faults: p.Faults,
		ReputationBps: p.ReputationBps,
		Models:        []ModelView{}, Capabilities: []string{},
	}
	if info := p.Info; info != nil {
		v.Endpoint = info.Endpoint
		v.PriceInputPer1K = info.PriceInputPer_1K
		v.PriceOutputPer1K = info.PriceOutputPer_1K
		for _, m := range info.Models {
			v.Models = append(v.Models, ModelView{Hash: m.Hash, Name: m.Name, ContextLength: m.ContextLength})
		}
		if info.Hardware != nil {
			v.Hardware = HardwareView{CPU: info.Hardware.Cpu, GPU: info.Hardware.Gpu, MemoryBytes: info.Hardware.MemoryBytes}
		}
		v.Capabilities = append(v.Capabilities, info.Capabilities...)
	}
	return v
}

type ChannelView struct {
	ID           uint64         `json:"id"`
	Client       types.Address  `json:"client"`
	ClientPubKey types.HexBytes `json:"client_pub_key"`
	Provider     types.Address  `json:"provider"`
	Deposit      uint64         `json:"deposit"`
	Redeemed     uint64         `json:"redeemed"`
	Remaining    uint64         `json:"remaining"`
	ExpiryHeight int64          `json:"expiry_height"`
	OpenedHeight int64          `json:"opened_height"`
	Closed       bool           `json:"closed"`
	Refunded     uint64         `json:"refunded"`
}

func ChannelViewOf(c *types.Channel) ChannelView {
	return ChannelView{
		ID: c.Id, Client: c.Client, ClientPubKey: c.ClientPubKey, Provider: c.Provider,
		Deposit: c.Deposit, Redeemed: c.Redeemed, Remaining: remaining(c), ExpiryHeight: c.ExpiryHeight,
		OpenedHeight: c.OpenedHeight, Closed: c.Closed, Refunded: c.Refunded,
	}
}

func remaining(c *types.Channel) uint64 {
	if c.Closed {
		return 0
	}
	return c.Deposit - c.Redeemed
}

type EpochView struct {
	Number         uint64         `json:"number"`
	StartHeight    int64          `json:"start_height"`
	EndHeight      int64          `json:"end_height"`
	CommitDeadline int64          `json:"commit_deadline"`
	SeedHeight     int64          `json:"seed_height"`
	Seed           types.HexBytes `json:"seed,omitempty"`
	// SeedSource is "vrf" (the validators' beacon) or "block_hash", once
	// the seed is drawn; SeedContributors counts the VRF outputs in it.
	SeedSource       string `json:"seed_source,omitempty"`
	SeedContributors uint32 `json:"seed_contributors,omitempty"`
	OpeningDeadline  int64  `json:"opening_deadline"`
	Commitments      uint32 `json:"commitments"`
	// Settlement (at the end of block settle_height).
	SettleHeight     int64  `json:"settle_height"`
	Settled          bool   `json:"settled"`
	Emission         uint64 `json:"emission"`
	Fees             uint64 `json:"fees"`
	ProviderRewards  uint64 `json:"provider_rewards"`
	ValidatorRewards uint64 `json:"validator_rewards"`
}

func EpochViewOf(e *types.Epoch) EpochView {
	source := e.SeedSource
	if source == "" && len(e.Seed) > 0 {
		source = epochs.SourceBlockHash // a chain without a beacon
	}
	return EpochView{
		SeedSource: source, SeedContributors: e.SeedContributors,
		Number: e.Number, StartHeight: e.StartHeight, EndHeight: e.EndHeight, CommitDeadline: e.CommitDeadline,
		SeedHeight: e.SeedHeight, Seed: e.Seed, OpeningDeadline: e.OpeningDeadline, Commitments: e.Commitments,
		SettleHeight: e.SettleHeight, Settled: e.Settled, Emission: e.Emission, Fees: e.Fees,
		ProviderRewards: e.ProviderRewards, ValidatorRewards: e.ValidatorRewards,
	}
}

type CommitmentView struct {
	Epoch    uint64        `json:"epoch"`
	Provider types.Address `json:"provider"`
	// Service is the kind of work committed (chain/services); RecordCount
	// counts its records (JSON receipt_count, the name the explorer UI and
	// recorded outcomes read), TotalBilled their billed total.
	Service     string         `json:"service"`
	Root        types.HexBytes `json:"root"`
	RecordCount uint64         `json:"receipt_count"`
	TotalBilled uint64         `json:"total_billed"`
	TotalTokens uint64         `json:"total_tokens"`
	Height      int64          `json:"height"`
	// ReputationBps is the provider's reputation when it committed: it sets
	// the epoch's audit rate.
	ReputationBps uint64 `json:"reputation_bps"`
	Settled       bool   `json:"settled"`
	Reward        uint64 `json:"reward"`
	QualityBps    uint32 `json:"quality_bps"` // set at settlement
}

func CommitmentViewOf(c *types.Commitment) CommitmentView {
	return CommitmentView{Epoch: c.Epoch, Provider: c.Provider, Service: services.Normalize(c.Service), Root: c.Root, RecordCount: c.RecordCount, TotalBilled: c.TotalBilled,
		TotalTokens: c.TotalTokens, Height: c.Height, ReputationBps: c.ReputationBps, Settled: c.Settled, Reward: c.Reward, QualityBps: c.QualityBps}
}

type ModuleBalance struct {
	Name    string        `json:"name"`
	Address types.Address `json:"address"`
	Balance uint64        `json:"balance"`
}

type SupplyView struct {
	ChainID string          `json:"chain_id"`
	Total   uint64          `json:"total"`
	Modules []ModuleBalance `json:"modules"`
}

// ChallengeView is an open omission challenge.
type ChallengeView struct {
	Epoch        uint64         `json:"epoch"`
	Provider     types.Address  `json:"provider"`
	Index        uint64         `json:"index"`
	ReceiptID    types.HexBytes `json:"receipt_id"`
	Reporter     types.Address  `json:"reporter"`
	Client       types.Address  `json:"client"`
	Amount       uint64         `json:"amount"`
	Bond         uint64         `json:"bond"`
	Deadline     int64          `json:"deadline"`
	OpenedHeight int64          `json:"opened_height"`
}

func ChallengeViewOf(c *types.Challenge) ChallengeView {
	return ChallengeView{Epoch: c.Epoch, Provider: c.Provider, Index: c.Index, ReceiptID: c.ReceiptId, Reporter: c.Reporter,
		Client: c.Client, Amount: c.Amount, Bond: c.Bond, Deadline: c.Deadline, OpenedHeight: c.OpenedHeight}
}

// DisputeView is a client's open dispute of a receipt.
type DisputeView struct {
	Epoch        uint64         `json:"epoch"`
	Provider     types.Address  `json:"provider"`
	Index        uint64         `json:"index"`
	ReceiptID    types.HexBytes `json:"receipt_id"`
	Client       types.Address  `json:"client"`
	Bond         uint64         `json:"bond"`
	Deadline     int64          `json:"deadline"`
	OpenedHeight int64          `json:"opened_height"`
}

// NonceView is an account's committed nonce and its pending one: the next
// nonce the mempool will admit (committed + the account's txs admitted to
// the mempool and not yet in a block).
type NonceView struct {
	Address   types.Address `json:"address"`
	Committed uint64        `json:"committed"`
	Pending   uint64        `json:"pending"`
	Height    int64         `json:"height"` // the committed height under the check state
}
