package app

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/api"
)

// TestAPIPathsAreRouted: every path chain/api builds is one the query
// router knows, and it answers with the view the builder names (decoded
// strictly, so a view that drifted from the app's answer fails here).
func TestAPIPathsAreRouted(t *testing.T) {
	h := newHarness(t, map[string]uint64{"alice": 1_000_000})
	mustOK(t, h.block())
	a := addrOf(key("alice"))
	for _, c := range []struct {
		path string
		into any
	}{
		{api.AccountPath(a), &api.AccountView{}},
		{api.NoncePath(a), &api.NonceView{}},
		{api.ValidatorPath(a), &api.ValidatorView{}},
		{api.UnbondingsPath(a), &[]api.UnbondingView{}},
		{api.ProviderPath(a), &api.ProviderView{}},
		{api.ProvidersForModelPath(make([]byte, 32)), &[]api.ProviderView{}},
		{api.ChannelPath(1), &api.ChannelView{}},
		{api.ClientChannelsPath(a), &[]api.ChannelView{}},
		{api.ProviderChannelsPath(a), &[]api.ChannelView{}},
		{api.EpochPath(0), &api.EpochView{}},
		{api.CommitmentsPath(0), &[]api.CommitmentView{}},
		{api.CommitmentPath(0, a), &api.CommitmentView{}},
		{api.ServiceCommitmentPath(0, "inference", a), &api.CommitmentView{}},
		{api.ProviderChallengesPath(a), &[]api.ChallengeView{}},
		{api.ValidatorsPath, &[]api.ValidatorView{}},
		{api.ProvidersPath, &[]api.ProviderView{}},
		{api.LatestEpochPath, &api.EpochView{}},
		{api.ChallengesPath, &[]api.ChallengeView{}},
		{api.DisputesPath, &[]api.DisputeView{}},
		{api.SupplyPath, &api.SupplyView{}},
		{api.JobOrderPath(1), &api.JobOrderView{}},
		{api.JobBidsPath(1), &[]api.JobBidView{}},
		{api.JobLeasePath(1), &api.JobLeaseView{}},
		{api.JobCheckpointsPath(1), &[]api.JobCheckpointView{}},
		{api.JobDisputePath(1), &api.JobDisputeView{}},
		{api.JobOrdersByOwnerPath(a), &[]api.JobOrderView{}},
		{api.JobOrdersByStatusPath("running"), &[]api.JobOrderView{}},
		{api.JobLeasesByProviderPath(a), &[]api.JobLeaseView{}},
		{api.JobSamplePath(0), &[]api.JobSampleView{}},
		{api.JobLeaseDisputesPath(1), &[]api.JobDisputeView{}},
		{api.JobOpenDisputesPath, &[]api.JobDisputeView{}},
		{api.JobOrdersByDatasetPath(1), &[]api.JobOrderView{}},
		{api.DatasetPath(1), &api.DatasetView{}},
		{api.DatasetsPath(), &[]api.DatasetView{}},
		{api.DatasetsByOwnerPath(a), &[]api.DatasetView{}},
		{api.DataGrantPath(1), &api.DataGrantView{}},
		{api.DataGrantsPath(1, nil), &[]api.DataGrantView{}},
		{api.DataGrantsPath(1, a), &[]api.DataGrantView{}},
		{api.DataGrantsByBuyerPath(a), &[]api.DataGrantView{}},
	} {
		v, _, err := h.app.QueryJSON(c.path, 0)
		if err != nil {
			// Not found is an answer of a known route (no such validator,
			// channel or epoch yet); an unknown path is not.
			if strings.Contains(err.Error(), "unknown query path") {
				t.Errorf("%s: %v", c.path, err)
			}
			continue
		}
		b, _ := json.Marshal(v)
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(c.into); err != nil {
			t.Errorf("%s: the answer does not decode as %T: %v", c.path, c.into, err)
		}
	}
	if _, _, err := h.app.QueryJSON("/no/such/path", 0); err == nil || !strings.Contains(err.Error(), "unknown query path") {
		t.Fatalf("an unknown path answered: %v", err)
	}
}
