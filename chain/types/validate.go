package types

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
)

// Stateless limits on message fields.
const (
	MaxMemoLen         = 256
	MaxEndpointLen     = 512
	MaxModels          = 64
	MaxNameLen         = 128
	MaxCapabilities    = 16
	MaxCapabilityLen   = 32
	MaxHardwareTextLen = 128
	HashLen            = 32
)

func validateSend(m *MsgSend) error {
	if m == nil {
		return errors.New("send: empty message")
	}
	if err := ValidAddress(m.To); err != nil {
		return fmt.Errorf("send: recipient %w", err)
	}
	if m.Amount == 0 {
		return errors.New("send: amount must be positive")
	}
	return nil
}

func validateBondValidator(m *MsgBondValidator) error {
	if m == nil {
		return errors.New("bond_validator: empty message")
	}
	if err := ValidPubKey(m.ConsPubKey); err != nil {
		return fmt.Errorf("bond_validator: consensus %w", err)
	}
	if m.Amount == 0 {
		return errors.New("bond_validator: amount must be positive")
	}
	return nil
}

func validateOpenChannel(m *MsgOpenChannel) error {
	if m == nil {
		return errors.New("open_channel: empty message")
	}
	if err := ValidAddress(m.Provider); err != nil {
		return fmt.Errorf("open_channel: provider %w", err)
	}
	if m.Deposit == 0 {
		return errors.New("open_channel: deposit must be positive")
	}
	if m.ExpiryHeight <= 0 {
		return errors.New("open_channel: expiry height must be positive")
	}
	return nil
}

func validateTopUpChannel(m *MsgTopUpChannel) error {
	if m == nil {
		return errors.New("top_up_channel: empty message")
	}
	if m.Amount == 0 && m.ExpiryHeight == 0 {
		return errors.New("top_up_channel: nothing to do (amount and expiry both zero)")
	}
	if m.ExpiryHeight < 0 {
		return errors.New("top_up_channel: negative expiry height")
	}
	return nil
}

func validateCommitEpoch(m *MsgCommitEpoch) error {
	if m == nil {
		return errors.New("commit_epoch: empty message")
	}
	if len(m.Root) != HashLen {
		return fmt.Errorf("commit_epoch: root must be %d bytes, got %d", HashLen, len(m.Root))
	}
	if m.RecordCount == 0 {
		return errors.New("commit_epoch: receipt count must be positive")
	}
	return nil
}

func validateReportFault(rf *MsgReportFault) error {
	if rf == nil {
		return errors.New("report_fault: empty message")
	}
	if err := ValidAddress(rf.Provider); err != nil {
		return fmt.Errorf("report_fault: provider %w", err)
	}
	switch rf.Fault {
	case FaultFabricated:
		if len(rf.Receipt) == 0 || !ReceiptSignatureWellFormed(rf.ReceiptSignature) || len(rf.Proof) != len(rf.ProofLeft) || len(rf.Proof) > 64 {
			return errors.New("report_fault: a fabricated-output report needs the receipt, its signature and its proof")
		}
		for _, h := range rf.Proof {
			if len(h) != HashLen {
				return fmt.Errorf("report_fault: proof hashes must be %d bytes", HashLen)
			}
		}
	case FaultRefused:
	default:
		return fmt.Errorf("report_fault: unknown fault %d", rf.Fault)
	}
	return nil
}

func validateSubmitScores(ss *MsgSubmitScores) error {
	if ss == nil || len(ss.Scores) == 0 || len(ss.Scores) > MaxScores {
		return fmt.Errorf("submit_scores: between 1 and %d scores", MaxScores)
	}
	for i, sc := range ss.Scores {
		if err := ValidAddress(sc.GetProvider()); err != nil {
			return fmt.Errorf("submit_scores: provider %d: %w", i, err)
		}
		if sc.ScoreBps > 10000 {
			return fmt.Errorf("submit_scores: score %d is above 10000 bps", sc.ScoreBps)
		}
		if i > 0 && string(ss.Scores[i-1].Provider) >= string(sc.Provider) {
			return errors.New("submit_scores: providers must be in strictly ascending address order")
		}
	}
	return nil
}

func validateAnswerOmission(ao *MsgAnswerOmission) error {
	if ao == nil || len(ao.Proof) != len(ao.ProofLeft) || len(ao.Proof) > 64 {
		return errors.New("answer_omission: proof and proof_left must have the same length (at most 64)")
	}
	for _, h := range ao.Proof {
		if len(h) != HashLen {
			return fmt.Errorf("answer_omission: proof hashes must be %d bytes", HashLen)
		}
	}
	return nil
}

// MaxScores bounds the providers one MsgSubmitScores may score.
const MaxScores = 1000

// Fault codes of MsgReportFault.
const (
	FaultFabricated uint32 = 1 // re-execution disagrees with the opened transcript
	FaultRefused    uint32 = 2 // a sampled receipt was not opened
	FaultOmitted    uint32 = 3 // a signed receipt left out of the commitment (MsgReportOmission)
	FaultWrongStep  uint32 = 4 // a job checkpoint a dispute's quorum found wrong (chain/jobs)
	FaultAbandoned  uint32 = 5 // a job lease left without checkpoints (chain/jobs)
	FaultBadProof   uint32 = 6 // a provider signed a zk answer whose proof does not verify (chain/zk)
)

// ValidateProviderInfo checks a provider's self-description.
func ValidateProviderInfo(info *ProviderInfo) error {
	if info == nil {
		return errors.New("missing provider info")
	}
	if info.Endpoint == "" || len(info.Endpoint) > MaxEndpointLen {
		return fmt.Errorf("endpoint missing or longer than %d bytes", MaxEndpointLen)
	}
	u, err := url.Parse(info.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("endpoint %q is not an http(s) URL", info.Endpoint)
	}
	// A provider of compute jobs, storage or zk proofs only (the "wasm",
	// "storage" or "zk" capability) may serve no model; every other
	// provider offers at least one.
	modelless := slices.Contains(info.Capabilities, "wasm") || slices.Contains(info.Capabilities, "storage") || slices.Contains(info.Capabilities, "zk")
	if (len(info.Models) == 0 && !modelless) || len(info.Models) > MaxModels {
		return fmt.Errorf("must offer between 1 and %d models (none only with the wasm, storage or zk capability)", MaxModels)
	}
	seen := make(map[string]bool, len(info.Models))
	for i, m := range info.Models {
		if m == nil || len(m.Hash) != HashLen {
			return fmt.Errorf("model %d: hash must be %d bytes", i, HashLen)
		}
		if m.Name == "" || len(m.Name) > MaxNameLen {
			return fmt.Errorf("model %d: name missing or longer than %d bytes", i, MaxNameLen)
		}
		if m.ContextLength == 0 {
			return fmt.Errorf("model %d: context length must be positive", i)
		}
		if seen[string(m.Hash)] {
			return fmt.Errorf("model %d: duplicate model hash", i)
		}
		seen[string(m.Hash)] = true
	}
	if info.Hardware != nil && (len(info.Hardware.Cpu) > MaxHardwareTextLen || len(info.Hardware.Gpu) > MaxHardwareTextLen) {
		return fmt.Errorf("hardware description longer than %d bytes", MaxHardwareTextLen)
	}
	if len(info.Capabilities) > MaxCapabilities {
		return fmt.Errorf("more than %d capabilities", MaxCapabilities)
	}
	for _, c := range info.Capabilities {
		if c == "" || len(c) > MaxCapabilityLen {
			return fmt.Errorf("capability %q empty or longer than %d bytes", c, MaxCapabilityLen)
		}
	}
	return nil
}
