package client

import (
	"context"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
)

// View runs a query path (one of chain/api's builders) at height (0: the
// latest) and returns its answer decoded as T, the view the path names.
func View[T any](ctx context.Context, c *Client, path string, height int64) (T, error) {
	var v T
	err := c.Query(ctx, path, height, &v)
	return v, err
}

// Typed reads of the latest committed state; View reads at a height.

// Provider returns a provider's record (not found if it never registered).
func (c *Client) Provider(ctx context.Context, a types.Address) (api.ProviderView, error) {
	return View[api.ProviderView](ctx, c, api.ProviderPath(a), 0)
}

// Providers lists the registered providers.
func (c *Client) Providers(ctx context.Context) ([]api.ProviderView, error) {
	return View[[]api.ProviderView](ctx, c, api.ProvidersPath, 0)
}

// Channel returns a payment channel.
func (c *Client) Channel(ctx context.Context, id uint64) (api.ChannelView, error) {
	return View[api.ChannelView](ctx, c, api.ChannelPath(id), 0)
}

// Epoch returns an ended epoch (not found until it has ended).
func (c *Client) Epoch(ctx context.Context, n uint64) (api.EpochView, error) {
	return View[api.EpochView](ctx, c, api.EpochPath(n), 0)
}

// LatestEpoch returns the latest ended epoch.
func (c *Client) LatestEpoch(ctx context.Context) (api.EpochView, error) {
	return View[api.EpochView](ctx, c, api.LatestEpochPath, 0)
}

// Commitment returns a provider's inference commitment for an epoch.
func (c *Client) Commitment(ctx context.Context, epoch uint64, provider types.Address) (api.CommitmentView, error) {
	return View[api.CommitmentView](ctx, c, api.CommitmentPath(epoch, provider), 0)
}

// ServiceCommitment returns a provider's commitment to one service's
// records (chain/services) for an epoch.
func (c *Client) ServiceCommitment(ctx context.Context, epoch uint64, service string, provider types.Address) (api.CommitmentView, error) {
	return View[api.CommitmentView](ctx, c, api.ServiceCommitmentPath(epoch, service, provider), 0)
}

// Commitments lists an epoch's commitments.
func (c *Client) Commitments(ctx context.Context, epoch uint64) ([]api.CommitmentView, error) {
	return View[[]api.CommitmentView](ctx, c, api.CommitmentsPath(epoch), 0)
}

// ProviderChallenges lists the omission challenges open against a provider.
func (c *Client) ProviderChallenges(ctx context.Context, provider types.Address) ([]api.ChallengeView, error) {
	return View[[]api.ChallengeView](ctx, c, api.ProviderChallengesPath(provider), 0)
}

// Disputes lists the open client disputes.
func (c *Client) Disputes(ctx context.Context) ([]api.DisputeView, error) {
	return View[[]api.DisputeView](ctx, c, api.DisputesPath, 0)
}

// JobOrder returns a job order (chain/jobs).
func (c *Client) JobOrder(ctx context.Context, id uint64) (api.JobOrderView, error) {
	return View[api.JobOrderView](ctx, c, api.JobOrderPath(id), 0)
}

// JobBids lists a job order's open bids (empty once it is cleared).
func (c *Client) JobBids(ctx context.Context, order uint64) ([]api.JobBidView, error) {
	return View[[]api.JobBidView](ctx, c, api.JobBidsPath(order), 0)
}

// JobLease returns a job lease.
func (c *Client) JobLease(ctx context.Context, id uint64) (api.JobLeaseView, error) {
	return View[api.JobLeaseView](ctx, c, api.JobLeasePath(id), 0)
}

// JobCheckpoints lists a lease's committed checkpoints.
func (c *Client) JobCheckpoints(ctx context.Context, lease uint64) ([]api.JobCheckpointView, error) {
	return View[[]api.JobCheckpointView](ctx, c, api.JobCheckpointsPath(lease), 0)
}

// JobDispute returns a dispute over a job checkpoint.
func (c *Client) JobDispute(ctx context.Context, id uint64) (api.JobDisputeView, error) {
	return View[api.JobDisputeView](ctx, c, api.JobDisputePath(id), 0)
}

// JobOrdersByOwner lists an owner's orders, oldest first.
func (c *Client) JobOrdersByOwner(ctx context.Context, owner types.Address) ([]api.JobOrderView, error) {
	return View[[]api.JobOrderView](ctx, c, api.JobOrdersByOwnerPath(owner), 0)
}

// JobOrdersByStatus lists the orders in a status (api.JobStatusName).
func (c *Client) JobOrdersByStatus(ctx context.Context, status string) ([]api.JobOrderView, error) {
	return View[[]api.JobOrderView](ctx, c, api.JobOrdersByStatusPath(status), 0)
}

// JobLeasesByProvider lists a provider's leases, oldest first.
func (c *Client) JobLeasesByProvider(ctx context.Context, provider types.Address) ([]api.JobLeaseView, error) {
	return View[[]api.JobLeaseView](ctx, c, api.JobLeasesByProviderPath(provider), 0)
}

// JobSample lists the checkpoints of an epoch validators must audit (not
// found until the epoch's seed is drawn).
func (c *Client) JobSample(ctx context.Context, epoch uint64) ([]api.JobSampleView, error) {
	return View[[]api.JobSampleView](ctx, c, api.JobSamplePath(epoch), 0)
}

// JobLeaseDisputes lists the disputes over a lease's checkpoints.
func (c *Client) JobLeaseDisputes(ctx context.Context, lease uint64) ([]api.JobDisputeView, error) {
	return View[[]api.JobDisputeView](ctx, c, api.JobLeaseDisputesPath(lease), 0)
}

// JobOpenDisputes lists the unresolved job disputes, soonest deadline
// first (validators vote on those in the vote phase).
func (c *Client) JobOpenDisputes(ctx context.Context) ([]api.JobDisputeView, error) {
	return View[[]api.JobDisputeView](ctx, c, api.JobOpenDisputesPath, 0)
}

// JobOrdersByDataset lists the compute-to-data orders on a dataset, oldest
// first.
func (c *Client) JobOrdersByDataset(ctx context.Context, dataset uint64) ([]api.JobOrderView, error) {
	return View[[]api.JobOrderView](ctx, c, api.JobOrdersByDatasetPath(dataset), 0)
}

// Dataset returns a dataset (chain/data).
func (c *Client) Dataset(ctx context.Context, id uint64) (api.DatasetView, error) {
	return View[api.DatasetView](ctx, c, api.DatasetPath(id), 0)
}

// Datasets lists every dataset, oldest first (retired ones included).
func (c *Client) Datasets(ctx context.Context) ([]api.DatasetView, error) {
	return View[[]api.DatasetView](ctx, c, api.DatasetsPath(), 0)
}

// DatasetsByOwner lists an owner's datasets, oldest first.
func (c *Client) DatasetsByOwner(ctx context.Context, owner types.Address) ([]api.DatasetView, error) {
	return View[[]api.DatasetView](ctx, c, api.DatasetsByOwnerPath(owner), 0)
}

// DataGrant returns a download grant.
func (c *Client) DataGrant(ctx context.Context, id uint64) (api.DataGrantView, error) {
	return View[api.DataGrantView](ctx, c, api.DataGrantPath(id), 0)
}

// DataGrants lists a dataset's grants (only buyer's when buyer is not
// empty), oldest first.
func (c *Client) DataGrants(ctx context.Context, dataset uint64, buyer types.Address) ([]api.DataGrantView, error) {
	return View[[]api.DataGrantView](ctx, c, api.DataGrantsPath(dataset, buyer), 0)
}

// DataGrantsByBuyer lists a buyer's grants on every dataset, oldest first.
func (c *Client) DataGrantsByBuyer(ctx context.Context, buyer types.Address) ([]api.DataGrantView, error) {
	return View[[]api.DataGrantView](ctx, c, api.DataGrantsByBuyerPath(buyer), 0)
}

// HasGrant reports whether buyer holds a download grant on dataset (a
// dataset that does not exist has none).
func (c *Client) HasGrant(ctx context.Context, dataset uint64, buyer types.Address) (bool, error) {
	if len(buyer) == 0 {
		return false, nil
	}
	gs, err := c.DataGrants(ctx, dataset, buyer)
	if err != nil {
		return false, err
	}
	return len(gs) > 0, nil
}

// TrainedModelRecords lists the registry's records of the model whose file
// has sha256 hash (chain/models), one per lease that registered those
// bytes, the oldest lease first.
func (c *Client) TrainedModelRecords(ctx context.Context, hash []byte) ([]api.TrainedModelView, error) {
	return View[[]api.TrainedModelView](ctx, c, api.TrainedModelRecordsPath(hash), 0)
}

// TrainedModelRecord is the record of the model with sha256 hash
// registered from lease.
func (c *Client) TrainedModelRecord(ctx context.Context, hash []byte, lease uint64) (api.TrainedModelView, error) {
	return View[api.TrainedModelView](ctx, c, api.TrainedModelRecordPath(hash, lease), 0)
}

// TrainedModels lists every record, by hash and then lease.
func (c *Client) TrainedModels(ctx context.Context) ([]api.TrainedModelView, error) {
	return View[[]api.TrainedModelView](ctx, c, api.TrainedModelsPath(), 0)
}
