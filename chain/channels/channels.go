// Package channels implements unidirectional payment channels from a client
// to a provider. The client escrows a deposit; off chain it signs vouchers
// for a growing cumulative amount; the provider redeems the latest voucher
// and is paid only the increase over what it already redeemed; after expiry
// the client closes the channel and gets the rest back.
package channels

import (
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

var (
	prefixChannel  = []byte("chan/")
	prefixByClient = []byte("chancli/")  // chancli/<client>/<id>
	prefixByProv   = []byte("chanprov/") // chanprov/<provider>/<id>
	keyChannelSeq  = []byte("seq/channel")
)

// Get returns channel id, or nil.
func Get(kv store.KV, id uint64) *types.Channel {
	bz := kv.Get(codec.Key(prefixChannel, codec.U64(id)))
	if bz == nil {
		return nil
	}
	c := &types.Channel{}
	codec.MustUnmarshal(bz, c)
	return c
}

func set(kv store.KV, c *types.Channel) {
	kv.Set(codec.Key(prefixChannel, codec.U64(c.Id)), codec.Marshal(c))
}

// Remaining is what is still escrowed in an open channel.
func Remaining(c *types.Channel) uint64 {
	if c.Closed {
		return 0
	}
	return c.Deposit - c.Redeemed
}

// Open escrows deposit from client into a new channel to provider and returns its id.
func Open(kv store.KV, height int64, client, clientPub, provider []byte, deposit uint64, expiry int64) (uint64, error) {
	if !registry.IsActive(kv, provider) {
		return 0, types.Errorf(types.CodeNotFound, "provider %s is not registered", types.Address(provider))
	}
	if expiry <= height {
		return 0, types.Errorf(types.CodeInvalid, "expiry height %d must be above the current height %d", expiry, height)
	}
	if err := bank.Send(kv, client, bank.ChannelEscrow, deposit); err != nil {
		return 0, err
	}
	id := codec.ReadU64(kv.Get(keyChannelSeq)) + 1
	kv.Set(keyChannelSeq, codec.U64(id))
	c := &types.Channel{
		Id: id, Client: client, ClientPubKey: clientPub, Provider: provider,
		Deposit: deposit, ExpiryHeight: expiry, OpenedHeight: height,
	}
	set(kv, c)
	kv.Set(codec.Key(prefixByClient, client, codec.U64(id)), []byte{1})
	kv.Set(codec.Key(prefixByProv, provider, codec.U64(id)), []byte{1})
	return id, nil
}

func getOpen(kv store.KV, id uint64) (*types.Channel, error) {
	c := Get(kv, id)
	if c == nil {
		return nil, types.Errorf(types.CodeNotFound, "channel %d does not exist", id)
	}
	if c.Closed {
		return nil, types.Errorf(types.CodeChannelClosed, "channel %d is closed", id)
	}
	return c, nil
}

// TopUp adds amount to a channel's deposit and/or extends its expiry.
func TopUp(kv store.KV, height int64, signer []byte, id, amount uint64, expiry int64) error {
	c, err := getOpen(kv, id)
	if err != nil {
		return err
	}
	if string(signer) != string(c.Client) {
		return types.Errorf(types.CodeUnauthorized, "only the channel's client %s may top it up", types.Address(c.Client))
	}
	if expiry != 0 {
		if expiry < c.ExpiryHeight {
			return types.Errorf(types.CodeInvalid, "expiry height %d would shorten the channel (now %d)", expiry, c.ExpiryHeight)
		}
		if expiry <= height {
			return types.Errorf(types.CodeInvalid, "expiry height %d must be above the current height %d", expiry, height)
		}
		c.ExpiryHeight = expiry
	}
	if amount > 0 {
		nd, err := types.AddU64(c.Deposit, amount)
		if err != nil {
			return err
		}
		if err := bank.Send(kv, signer, bank.ChannelEscrow, amount); err != nil {
			return err
		}
		c.Deposit = nd
	}
	set(kv, c)
	return nil
}

// Redeem pays the provider the increase of voucher v over what it already redeemed.
// It returns the amount paid.
func Redeem(kv store.KV, chainID string, signer []byte, v *types.Voucher) (uint64, error) {
	c, err := getOpen(kv, v.ChannelId)
	if err != nil {
		return 0, err
	}
	if string(signer) != string(c.Provider) {
		return 0, types.Errorf(types.CodeUnauthorized, "only the channel's provider %s may redeem its vouchers", types.Address(c.Provider))
	}
	if err := types.VerifyVoucher(c.ClientPubKey, chainID, v); err != nil {
		return 0, types.Errorf(types.CodeVoucher, "channel %d: %v", c.Id, err)
	}
	if v.CumulativeAmount <= c.Redeemed {
		return 0, types.Errorf(types.CodeVoucher, "voucher amount %d is not above the %d already redeemed on channel %d", v.CumulativeAmount, c.Redeemed, c.Id)
	}
	if v.CumulativeAmount > c.Deposit {
		return 0, types.Errorf(types.CodeVoucher, "voucher amount %d exceeds channel %d deposit %d", v.CumulativeAmount, c.Id, c.Deposit)
	}
	pay := v.CumulativeAmount - c.Redeemed
	if err := bank.Send(kv, bank.ChannelEscrow, c.Provider, pay); err != nil {
		return 0, err
	}
	c.Redeemed = v.CumulativeAmount
	set(kv, c)
	return pay, nil
}

// Close refunds the unredeemed deposit to the client once the channel expired.
// It returns the refund.
func Close(kv store.KV, height int64, signer []byte, id uint64) (uint64, error) {
	c, err := getOpen(kv, id)
	if err != nil {
		return 0, err
	}
	if string(signer) != string(c.Client) {
		return 0, types.Errorf(types.CodeUnauthorized, "only the channel's client %s may close it", types.Address(c.Client))
	}
	if height <= c.ExpiryHeight {
		return 0, types.Errorf(types.CodeInvalid, "channel %d expires at height %d; it can be closed from height %d", id, c.ExpiryHeight, c.ExpiryHeight+1)
	}
	refund := c.Deposit - c.Redeemed
	if err := bank.Send(kv, bank.ChannelEscrow, c.Client, refund); err != nil {
		return 0, err
	}
	c.Closed = true
	c.Refunded = refund
	set(kv, c)
	return refund, nil
}

// ByClient lists a client's channels in id order.
func ByClient(kv store.KV, client []byte) []*types.Channel {
	return list(kv, codec.Key(prefixByClient, client))
}

// ByProvider lists a provider's channels in id order.
func ByProvider(kv store.KV, provider []byte) []*types.Channel {
	return list(kv, codec.Key(prefixByProv, provider))
}

func list(kv store.KV, prefix []byte) []*types.Channel {
	var ids []uint64
	kv.Iterate(prefix, func(k, _ []byte) bool {
		ids = append(ids, codec.ReadU64(k[len(prefix):]))
		return true
	})
	out := make([]*types.Channel, 0, len(ids))
	for _, id := range ids {
		out = append(out, Get(kv, id))
	}
	return out
}

// TotalEscrowed sums the remaining deposits of open channels: the escrow
// account must hold exactly this much.
func TotalEscrowed(kv store.KV) (uint64, error) {
	var sum uint64
	var err error
	kv.Iterate(prefixChannel, func(_, bz []byte) bool {
		c := &types.Channel{}
		codec.MustUnmarshal(bz, c)
		sum, err = types.AddU64(sum, Remaining(c))
		return err == nil
	})
	return sum, err
}
