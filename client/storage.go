package client

import (
	"context"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
)

// StorageDeal returns a storage deal (chain/storage).
func (c *Client) StorageDeal(ctx context.Context, id uint64) (api.StorageDealView, error) {
	return View[api.StorageDealView](ctx, c, api.StorageDealPath(id), 0)
}

// StorageDeals lists every storage deal, newest first (at most
// api.MaxStorageDeals).
func (c *Client) StorageDeals(ctx context.Context) ([]api.StorageDealView, error) {
	return View[[]api.StorageDealView](ctx, c, api.StorageDealsPath, 0)
}

// StorageDealsByStatus lists the deals in a status (open, active, done,
// cancelled), oldest first.
func (c *Client) StorageDealsByStatus(ctx context.Context, status string) ([]api.StorageDealView, error) {
	return View[[]api.StorageDealView](ctx, c, api.StorageDealsByStatusPath(status), 0)
}

// StorageDealsByClient lists a client's deals, oldest first.
func (c *Client) StorageDealsByClient(ctx context.Context, a types.Address) ([]api.StorageDealView, error) {
	return View[[]api.StorageDealView](ctx, c, api.StorageDealsByClientPath(a), 0)
}

// StorageDealsByProvider lists every deal a provider accepted, oldest
// first (a dropped provider's too).
func (c *Client) StorageDealsByProvider(ctx context.Context, a types.Address) ([]api.StorageDealView, error) {
	return View[[]api.StorageDealView](ctx, c, api.StorageDealsByProviderPath(a), 0)
}

// StorageEpochs lists a deal's settled epochs (proved or missed).
func (c *Client) StorageEpochs(ctx context.Context, deal uint64) ([]api.StorageEpochView, error) {
	return View[[]api.StorageEpochView](ctx, c, api.StorageEpochsPath(deal), 0)
}

// StorageFaults lists a deal's missed epochs.
func (c *Client) StorageFaults(ctx context.Context, deal uint64) ([]api.StorageFaultView, error) {
	return View[[]api.StorageFaultView](ctx, c, api.StorageFaultsPath(deal), 0)
}

// StorageRecentFaults lists the latest faults of every deal, newest first.
func (c *Client) StorageRecentFaults(ctx context.Context) ([]api.StorageFaultView, error) {
	return View[[]api.StorageFaultView](ctx, c, api.StorageRecentFaultsPath, 0)
}

// StorageChallenge returns an active deal's open challenge.
func (c *Client) StorageChallenge(ctx context.Context, deal uint64) (api.StorageChallengeView, error) {
	return View[api.StorageChallengeView](ctx, c, api.StorageChallengePath(deal), 0)
}
