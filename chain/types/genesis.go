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
		},
		InitialEpochEmission:  10_000_000, // 10 AGR per epoch
		HalvingIntervalEpochs: 100_000,
		ProviderRewardBps:     7000,      // 70 % to providers, 30 % to validators
		OmissionBond:          1_000_000, // 1 AGR
		DisputeBond:           1_000_000, // 1 AGR
		GasPriceMilli:         1000,      // 1 uagr per gas
		GasPerByte:            1,
		Gas:                   Msgs().DefaultGas(),
	}
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
