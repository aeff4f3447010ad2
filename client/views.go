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
