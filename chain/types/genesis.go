package types

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Params are the chain's economic and timing parameters, fixed at genesis.
// Heights and periods are in blocks; amounts in uagr (1 AGR = 10^6 uagr);
// fractions in basis points (1/10,000). No floats anywhere in consensus state.
type Params struct {
	// EpochLength is the number of blocks per epoch. Epoch n covers heights
	// [n*EpochLength+1, (n+1)*EpochLength].
	EpochLength int64 `json:"epoch_length"`
	// CommitWindow is how many blocks after an epoch ends providers have to
	// commit its receipt root. The sampling seed comes from the block after it.
	CommitWindow int64 `json:"commit_window"`
	// BeaconWindow is how many heights after the commit deadline validators
	// reveal their VRF contributions to the epoch seed in vote extensions
	// (chain/epochs beacon.go); the seed is drawn at the end of block
	// commit_deadline + 1 + BeaconWindow. 0 (a genesis from before the
	// beacon) seeds from the hash of block commit_deadline + 1, which that
	// block's proposer can grind.
	BeaconWindow int64 `json:"beacon_window"`
	// OpeningWindow is how many blocks after the seed block sampled receipts must be opened.
	OpeningWindow int64 `json:"opening_window"`
	// UnbondingPeriod is how many blocks unbonded stake stays slashable before it is paid out.
	UnbondingPeriod int64 `json:"unbonding_period"`
	// JailDuration is how many blocks a jailed validator must wait before unjailing.
	JailDuration int64 `json:"jail_duration"`

	MinValidatorStake uint64 `json:"min_validator_stake"`
	MinProviderStake  uint64 `json:"min_provider_stake"`
	// PowerReduction converts bonded uagr into CometBFT voting power: power = bonded / PowerReduction.
	PowerReduction uint64 `json:"power_reduction"`

	// Audit rate bounds (basis points): a provider with no reputation has
	// AuditCeilingBps of its receipts sampled, a perfect one AuditFloorBps.
	AuditFloorBps   uint64 `json:"audit_floor_bps"`
	AuditCeilingBps uint64 `json:"audit_ceiling_bps"`
	// ReputationStepBps is what a provider's reputation (0..10000) gains with
	// each settled epoch it committed without a fault; a fault resets it to 0.
	ReputationStepBps uint64 `json:"reputation_step_bps"`

	// SlashDoubleSignBps is what a validator loses for signing twice.
	SlashDoubleSignBps uint64 `json:"slash_double_sign_bps"`
	// SlashBps is what a provider loses (basis points of its bond) for a
	// confirmed fault, per service and fault kind, keyed
	// "<service>/<fault>" (chain/services SlashKey): every fault kind the
	// chain's services declare must have one.
	SlashBps map[string]uint64 `json:"slash_bps"`

	// Emission: InitialEpochEmission uagr minted per epoch, halved every
	// HalvingIntervalEpochs epochs (the rewards module pays it out).
	InitialEpochEmission  uint64 `json:"initial_epoch_emission"`
	HalvingIntervalEpochs uint64 `json:"halving_interval_epochs"`
	// OmissionBond is what a reporter escrows with an omission report: lost
	// to the provider if it answers the challenge, returned on a fault.
	OmissionBond uint64 `json:"omission_bond"`
	// DisputeBond is what a client escrows to dispute a receipt: returned
	// when validators confirm a fault, the provider's otherwise.
	DisputeBond uint64 `json:"dispute_bond"`
	// ProviderRewardBps of each epoch's rewards (emission + fees) go to
	// providers by verified billed work; the rest to validators by stake.
	ProviderRewardBps uint64 `json:"provider_reward_bps"`

	// Fees: a tx must pay at least ceil(gas * GasPriceMilli / 1000) uagr, where
	// gas = Gas[msg type] + GasPerByte * len(tx). Fees go to the fee pool.
	GasPriceMilli uint64            `json:"gas_price_milli"`
	GasPerByte    uint64            `json:"gas_per_byte"`
	Gas           map[string]uint64 `json:"gas"`

	// Jobs are the compute-job market's parameters (chain/jobs). A genesis
	// without them (chains from before the market) has no job market: its
	// messages are refused, and its params encode exactly as before.
	Jobs *JobsParams `json:"jobs,omitempty"`

	// Data are the data market's parameters (chain/data). A genesis
	// without them has no data market: its messages are refused, and
	// compute-to-data orders too.
	Data *DataParams `json:"data,omitempty"`
	// Storage are the storage-deal market's parameters (chain/storage). A
	// genesis without them has no storage market: its messages are
	// refused, and its params encode exactly as before.
	Storage *StorageParams `json:"storage,omitempty"`
}

// DataParams are the data market's parameters (chain/data).
type DataParams struct {
	// FeeBps of every grant and every paid run goes to the fee pool; the
	// rest to the dataset's owner.
	FeeBps uint64 `json:"fee_bps"`
	// MaxAggregateOutput bounds the output cap of a dataset that lets any
	// module run on it (no allow-list): only aggregates can leave.
	MaxAggregateOutput uint64 `json:"max_aggregate_output"`
}

// DefaultDataParams are the data market's devnet parameters.
func DefaultDataParams() *DataParams {
	return &DataParams{FeeBps: 500, MaxAggregateOutput: 4096}
}

// Validate checks that the data market's params are usable.
func (d *DataParams) Validate() error {
	switch {
	case d.FeeBps > 10000:
		return errors.New("data: fee_bps must be at most 10000")
	case d.MaxAggregateOutput == 0:
		return errors.New("data: max_aggregate_output must be positive")
	}
	return nil
}

// StorageParams are the storage-deal market's parameters (chain/storage).
type StorageParams struct {
	// FeeBps of every epoch's payment goes to the fee pool.
	FeeBps uint64 `json:"fee_bps"`
	// ProofWindow is how many blocks after an epoch's seed is drawn a
	// deal's provider has to prove that epoch's challenges; a window of
	// epoch_length blocks or more counts as epoch_length − 1, so a deal has
	// at most one open challenge.
	ProofWindow int64 `json:"proof_window"`
	// MissSlashBps of the provider's remaining collateral goes to the
	// client for each missed epoch: a short outage costs little.
	MissSlashBps uint64 `json:"miss_slash_bps"`
	// MaxMisses consecutive misses drop the provider: the rest of its
	// collateral goes to the client and the deal reopens.
	MaxMisses uint32 `json:"max_misses"`
	// ScoreMissBps is what a miss takes from the deal's score (0..10000),
	// ScoreProofBps what a proved epoch gives back.
	ScoreMissBps  uint64 `json:"score_miss_bps"`
	ScoreProofBps uint64 `json:"score_proof_bps"`
}

// DefaultStorageParams are the storage market's devnet parameters.
func DefaultStorageParams() *StorageParams {
	return &StorageParams{FeeBps: 500, ProofWindow: 10, MissSlashBps: 1000, MaxMisses: 3, ScoreMissBps: 2500, ScoreProofBps: 500}
}

// Validate checks that the storage market's params are usable.
func (s *StorageParams) Validate() error {
	switch {
	case s.FeeBps > 10000 || s.MissSlashBps > 10000 || s.ScoreMissBps > 10000 || s.ScoreProofBps > 10000:
		return errors.New("storage: fee_bps, miss_slash_bps, score_miss_bps and score_proof_bps must be at most 10000")
	case s.ProofWindow < 1:
		return errors.New("storage: proof_window must be at least 1 block")
	case s.MaxMisses < 1:
		return errors.New("storage: max_misses must be at least 1")
	}
	return nil
}

// DataDefaultGas is the default gas of the data market's messages
// (declared by chain/data with WithGas; a test in chain/app keeps the two
// equal), merged into DefaultParams' gas table.
var DataDefaultGas = map[string]uint64{
	"publish_dataset": 20_000, "update_dataset": 20_000, "retire_dataset": 10_000, "buy_access": 20_000,
}

// StorageDefaultGas is the default gas of the storage market's messages
// (declared by chain/storage with WithGas; a test in chain/app keeps the
// two equal), merged into DefaultParams' gas table. A proof's bytes are
// paid by gas_per_byte besides.
var StorageDefaultGas = map[string]uint64{
	"create_deal": 20_000, "accept_deal": 20_000, "prove_storage": 30_000, "cancel_deal": 10_000,
}

// ModelsDefaultGas is the default gas of the trained-model registry's
// message (declared by chain/models with WithGas; a test in chain/app
// keeps the two equal), merged into DefaultParams' gas table. The carried
// result list is paid by gas_per_byte besides.
var ModelsDefaultGas = map[string]uint64{"register_model": 20_000}

// ZKDefaultGas is the default gas of the zkML registry's messages
// (declared by chain/zk with WithGas; a test in chain/app keeps the two
// equal), merged into DefaultParams' gas table. verify_zk_proof is priced
// by its measured cost: a B = 1 MNIST proof verifies in ≈ 2.55 ms on the
// reference machine, where the chain commits ≈ 5,100 sends/s of ≈ 350
// gas each (≈ 0.56 µs a gas unit), so ≈ 4,600 gas; a batch's statement
// (≈ 800 bytes an inference) pays gas_per_byte besides.
var ZKDefaultGas = map[string]uint64{"register_zk_model": 20_000, "verify_zk_proof": 5_000, "report_zk_fault": 5_000}

// JobsParams are the compute-job market's parameters (chain/jobs).
type JobsParams struct {
	// FeeBps of every checkpoint payment goes to the fee pool.
	FeeBps uint64 `json:"fee_bps"`
	// LivenessEpochs (M): a lease with no checkpoint for M epochs of blocks
	// is closed, its owner refunded, its provider's collateral forfeited.
	LivenessEpochs uint64 `json:"liveness_epochs"`
	// DisputeBond is what a challenger escrows with a challenge.
	DisputeBond uint64 `json:"dispute_bond"`
	// BisectionK is the arity of a dispute's bisection (2..16).
	BisectionK uint32 `json:"bisection_k"`
	// MoveWindow is how many blocks each party has for its move in a
	// dispute; silence loses.
	MoveWindow int64 `json:"move_window"`
	// VoteWindow is how many blocks validators have to reach a 2/3 quorum
	// on a dispute's single step; without one the dispute is void.
	VoteWindow int64 `json:"vote_window"`
	// ChallengeWindow is how many blocks a lease's collateral stays locked
	// (and its checkpoints challengeable) after the lease ends.
	ChallengeWindow int64 `json:"challenge_window"`
	// MaxBidWindow bounds an order's bid window in blocks.
	MaxBidWindow int64 `json:"max_bid_window"`
	// MaxBids bounds the bids one order takes (clearing's work per order).
	MaxBids uint32 `json:"max_bids"`
	// RewardBps of a losing provider's forfeited collateral (after the
	// owner's refund) goes to the winning challenger; the rest is burned.
	RewardBps uint64 `json:"reward_bps"`
}

// DefaultJobsParams are the job market's devnet parameters.
func DefaultJobsParams() *JobsParams {
	return &JobsParams{FeeBps: 500, LivenessEpochs: 2, DisputeBond: 1_000_000, BisectionK: 8,
		MoveWindow: 10, VoteWindow: 20, ChallengeWindow: 20, MaxBidWindow: 100, MaxBids: 64, RewardBps: 5000}
}

// Validate checks that the job market's params are usable.
func (j *JobsParams) Validate() error {
	switch {
	case j.FeeBps > 10000 || j.RewardBps > 10000:
		return errors.New("jobs: fee_bps and reward_bps must be at most 10000")
	case j.LivenessEpochs < 1:
		return errors.New("jobs: liveness_epochs must be at least 1")
	case j.BisectionK < 2 || j.BisectionK > 16:
		return errors.New("jobs: bisection_k must be between 2 and 16")
	case j.MoveWindow < 1 || j.VoteWindow < 1 || j.ChallengeWindow < 1 || j.MaxBidWindow < 1:
		return errors.New("jobs: move_window, vote_window, challenge_window and max_bid_window must be at least 1 block")
	case j.MaxBids < 1 || j.MaxBids > 256:
		return errors.New("jobs: max_bids must be between 1 and 256")
	}
	return nil
}

// JobsDefaultGas is the default gas of the job market's messages
// (declared by chain/jobs with WithGas; a test in chain/app keeps the two
// equal), merged into DefaultParams' gas table.
var JobsDefaultGas = map[string]uint64{
	"submit_job": 20_000, "bid_job": 10_000, "commit_checkpoint": 10_000, "cancel_job": 20_000,
	"challenge_checkpoint": 20_000, "bisect_dispute": 10_000, "pick_interval": 10_000, "vote_step": 10_000,
}

// legacySlash maps the flat provider slash params of genesis files written
// before services existed onto their SlashBps keys.
var legacySlash = []struct{ json, key string }{
	{"slash_provider_fraud_bps", "inference/fabricated"},
	{"slash_provider_refusal_bps", "inference/refused"},
	{"slash_provider_omit_bps", "inference/omitted"},
}

// UnmarshalJSON decodes params, reading the flat provider slash fractions
// of older genesis files into SlashBps when slash_bps is absent, so a chain
// started from one keeps its numbers.
func (p *Params) UnmarshalJSON(bz []byte) error {
	type plain Params
	if err := json.Unmarshal(bz, (*plain)(p)); err != nil {
		return err
	}
	if p.SlashBps != nil {
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(bz, &raw); err != nil {
		return err
	}
	for _, l := range legacySlash {
		v, ok := raw[l.json]
		if !ok {
			continue
		}
		var bps uint64
		if err := json.Unmarshal(v, &bps); err != nil {
			return fmt.Errorf("%s: %w", l.json, err)
		}
		if p.SlashBps == nil {
			p.SlashBps = map[string]uint64{}
		}
		p.SlashBps[l.key] = bps
	}
	return nil
}

// DefaultParams are the devnet parameters `agora init` writes.
func DefaultParams() Params {
	return Params{
		EpochLength:        20,
		CommitWindow:       5,
		BeaconWindow:       4,
		OpeningWindow:      10,
		UnbondingPeriod:    100,
		JailDuration:       50,
		MinValidatorStake:  1_000_000_000, // 1,000 AGR
		MinProviderStake:   100_000_000,   // 100 AGR
		PowerReduction:     1_000_000,     // 1 power per AGR
		AuditFloorBps:      300,           // 3 %
		AuditCeilingBps:    2000,          // 20 %
		ReputationStepBps:  1000,          // full reputation after 10 clean epochs
		SlashDoubleSignBps: 500,           // 5 %
		// The defaults chain/services declares (a test there keeps them equal).
		SlashBps: map[string]uint64{
			"inference/fabricated": 1000, // 10 %
			"inference/refused":    500,  // 5 %
			"inference/omitted":    1000, // 10 %
			"jobs/wrong_step":      1000, // 10 %
			"jobs/abandoned":       500,  // 5 %
			"zk/bad_proof":         1000, // 10 %
		},
		InitialEpochEmission:  10_000_000, // 10 AGR per epoch
		HalvingIntervalEpochs: 100_000,
		ProviderRewardBps:     7000,      // 70 % to providers, 30 % to validators
		OmissionBond:          1_000_000, // 1 AGR
		DisputeBond:           1_000_000, // 1 AGR
		GasPriceMilli:         1000,      // 1 uagr per gas
		GasPerByte:            1,
		Gas:                   defaultGas(),
		Jobs:                  DefaultJobsParams(),
		Data:                  DefaultDataParams(),
		Storage:               DefaultStorageParams(),
	}
}

func defaultGas() map[string]uint64 {
	g := Msgs().DefaultGas()
	for name, gas := range JobsDefaultGas {
		g[name] = gas
	}
	for name, gas := range DataDefaultGas {
		g[name] = gas
	}
	for name, gas := range StorageDefaultGas {
		g[name] = gas
	}
	for name, gas := range ModelsDefaultGas {
		g[name] = gas
	}
	for name, gas := range ZKDefaultGas {
		g[name] = gas
	}
	return g
}

// Validate checks that params are usable.
func (p Params) Validate() error {
	switch {
	case p.EpochLength < 2:
		return errors.New("epoch_length must be at least 2 blocks")
	case p.CommitWindow < 1 || p.CommitWindow >= p.EpochLength*10:
		return errors.New("commit_window must be at least 1 block")
	case p.BeaconWindow < 0 || p.BeaconWindow > p.EpochLength:
		return errors.New("beacon_window must be between 0 and epoch_length blocks (consecutive epochs' windows must not overlap)")
	case p.OpeningWindow < 1:
		return errors.New("opening_window must be at least 1 block")
	case p.UnbondingPeriod < 1:
		return errors.New("unbonding_period must be at least 1 block")
	case p.JailDuration < 0:
		return errors.New("jail_duration must not be negative")
	case p.PowerReduction == 0:
		return errors.New("power_reduction must be positive")
	case p.MinValidatorStake < p.PowerReduction:
		return errors.New("min_validator_stake must be at least power_reduction (one unit of voting power)")
	case p.SlashDoubleSignBps > 10000:
		return errors.New("slash fractions must be at most 10000 bps")
	case p.AuditFloorBps > p.AuditCeilingBps || p.AuditCeilingBps > 10000:
		return errors.New("audit rates must satisfy floor <= ceiling <= 10000 bps")
	case p.ReputationStepBps > 10000 || p.ProviderRewardBps > 10000:
		return errors.New("reputation_step_bps and provider_reward_bps must be at most 10000")
	case p.HalvingIntervalEpochs == 0:
		return errors.New("halving_interval_epochs must be positive")
	}
	for k, bps := range p.SlashBps { // the error names one key; which one does not reach state
		if bps > 10000 {
			return fmt.Errorf("slash_bps: %q must be at most 10000 bps, got %d", k, bps)
		}
	}
	if p.Jobs != nil {
		if err := p.Jobs.Validate(); err != nil {
			return err
		}
	}
	if p.Data != nil {
		if p.Jobs == nil {
			return errors.New("data: the data market needs the job market (compute-to-data runs are jobs)")
		}
		if err := p.Data.Validate(); err != nil {
			return err
		}
	}
	if p.Storage != nil {
		if err := p.Storage.Validate(); err != nil {
			return err
		}
	}
	for _, name := range MsgNames {
		if _, ok := p.Gas[name]; !ok {
			return fmt.Errorf("gas: missing cost for message %q", name)
		}
	}
	return nil
}

// MsgNames lists every message name of the chain's own modules, in the
// order of their table (msgs.go).
var MsgNames = defaultMsgs.Names()

// MinFee returns the minimum fee for a tx of txLen bytes carrying msgName.
func (p Params) MinFee(msgName string, txLen int) uint64 {
	gas := p.Gas[msgName] + p.GasPerByte*uint64(txLen)
	return (gas*p.GasPriceMilli + 999) / 1000
}

// GenesisAccount is an initial balance.
type GenesisAccount struct {
	Address Address `json:"address"`
	Balance uint64  `json:"balance"`
}

// GenesisValidator is an initial validator with stake bonded from its operator.
type GenesisValidator struct {
	Operator   Address  `json:"operator"`
	ConsPubKey HexBytes `json:"cons_pub_key"`
	Bonded     uint64   `json:"bonded"`
	Name       string   `json:"name,omitempty"`
}

// Genesis is the app_state of CometBFT's genesis.json.
type Genesis struct {
	Params     Params             `json:"params"`
	Accounts   []GenesisAccount   `json:"accounts"`
	Validators []GenesisValidator `json:"validators"`
}

// Validate checks a genesis state.
func (g *Genesis) Validate() error {
	if err := g.Params.Validate(); err != nil {
		return fmt.Errorf("params: %w", err)
	}
	seen := map[string]bool{}
	for i, a := range g.Accounts {
		if err := ValidAddress(a.Address); err != nil {
			return fmt.Errorf("account %d: %w", i, err)
		}
		if seen[string(a.Address)] {
			return fmt.Errorf("account %d: duplicate address %s", i, a.Address)
		}
		seen[string(a.Address)] = true
	}
	if len(g.Validators) == 0 {
		return errors.New("genesis needs at least one validator")
	}
	seenVal := map[string]bool{}
	for i, v := range g.Validators {
		if err := ValidAddress(v.Operator); err != nil {
			return fmt.Errorf("validator %d: operator %w", i, err)
		}
		if err := ValidPubKey(v.ConsPubKey); err != nil {
			return fmt.Errorf("validator %d: consensus %w", i, err)
		}
		if v.Bonded < g.Params.MinValidatorStake {
			return fmt.Errorf("validator %d: bonded %d below min_validator_stake %d", i, v.Bonded, g.Params.MinValidatorStake)
		}
		if seenVal[string(v.Operator)] || seenVal[string(v.ConsPubKey)] {
			return fmt.Errorf("validator %d: duplicate operator or consensus key", i)
		}
		seenVal[string(v.Operator)] = true
		seenVal[string(v.ConsPubKey)] = true
	}
	return nil
}

// UnmarshalGenesis decodes and validates an app_state document.
func UnmarshalGenesis(bz []byte) (*Genesis, error) {
	var g Genesis
	if err := json.Unmarshal(bz, &g); err != nil {
		return nil, fmt.Errorf("decode app_state: %w", err)
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return &g, nil
}
