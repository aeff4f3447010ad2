package api

import (
	"encoding/hex"
	"strconv"

	"github.com/agoranet/agora/chain/types"
)

// The query paths the app answers (chain/app Query), one builder each, so
// no caller assembles a path by hand. Each answers with the view named.
func AccountPath(a types.Address) string   { return "/account/" + a.String() }   // AccountView
func NoncePath(a types.Address) string     { return "/nonce/" + a.String() }     // NonceView
func ValidatorPath(a types.Address) string { return "/validator/" + a.String() } // ValidatorView
func UnbondingsPath(a types.Address) string {
	return "/unbondings/" + a.String() // []UnbondingView
}
func ProviderPath(a types.Address) string { return "/provider/" + a.String() } // ProviderView
func ProvidersForModelPath(modelHash []byte) string {
	return "/providers/model/" + hex.EncodeToString(modelHash) // []ProviderView
}
func ChannelPath(id uint64) string { return "/channel/" + strconv.FormatUint(id, 10) } // ChannelView
func ClientChannelsPath(a types.Address) string {
	return "/channels/client/" + a.String() // []ChannelView
}
func ProviderChannelsPath(a types.Address) string {
	return "/channels/provider/" + a.String() // []ChannelView
}
func EpochPath(n uint64) string       { return "/epoch/" + strconv.FormatUint(n, 10) }       // EpochView
func CommitmentsPath(n uint64) string { return "/commitments/" + strconv.FormatUint(n, 10) } // []CommitmentView
func CommitmentPath(n uint64, provider types.Address) string {
	return "/commitment/" + strconv.FormatUint(n, 10) + "/" + provider.String() // CommitmentView (inference)
}
func ServiceCommitmentPath(n uint64, service string, provider types.Address) string {
	return CommitmentPath(n, provider) + "/" + service // CommitmentView
}
func ProviderChallengesPath(a types.Address) string {
	return "/challenges/provider/" + a.String() // []ChallengeView
}

// Paths without arguments.
const (
	ValidatorsPath  = "/validators"   // []ValidatorView
	ProvidersPath   = "/providers"    // []ProviderView
	LatestEpochPath = "/epoch/latest" // EpochView
	ChallengesPath  = "/challenges"   // []ChallengeView
	DisputesPath    = "/disputes"     // []DisputeView
	ParamsPath      = "/params"       // types.Params
	SupplyPath      = "/supply"       // SupplyView
)
