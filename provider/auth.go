package provider

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/agoranet/agora/internal/oai"
	"github.com/agoranet/agora/protocol/payment"
	"github.com/agoranet/agora/reqauth"
)

// authenticate checks a paid request's X-Agora-Auth: a MAC of the request
// under the key only the channel's client and this provider can compute
// (package reqauth), fresh and not seen before. A voucher is readable by
// anyone once redeemed on chain; this is what makes a request the
// channel owner's. It runs before anything is reserved, billed or
// credited: a refused request changes nothing but the metrics.
func (p *Provider) authenticate(r *http.Request, channel uint64, body []byte) *oai.Error {
	var keyErr *oai.Error // an answer other than 401 (an unknown channel)
	err := p.guard.Check(r.Header.Get(reqauth.Header), channel, func(id uint64) (*reqauth.Key, error) {
		k, e := p.requestKey(r.Context(), id)
		if e != nil && !errors.Is(e, reqauth.ErrKey) {
			keyErr = oai.Errorf(http.StatusPaymentRequired, "payment_required", payment.VoucherHeader, "%v", e)
		}
		return k, e
	}, r.Method, r.URL.Path, body, r.Header.Get(payment.VoucherHeader), time.Now())
	switch {
	case err == nil:
		return nil
	case keyErr != nil:
		return keyErr
	case errors.Is(err, reqauth.ErrFull):
		p.metrics.authRefused.WithLabelValues(reqauth.Reason(err)).Inc()
		return oai.Errorf(http.StatusTooManyRequests, "rate_limit_error", "", "provider overloaded: %v", err)
	}
	p.metrics.authRefused.WithLabelValues(reqauth.Reason(err)).Inc()
	return oai.Errorf(http.StatusUnauthorized, "invalid_request_error", reqauth.Header, "channel %d: %v", channel, err)
}

// requestKey is the channel's request key, derived once per channel from
// this provider's key and the channel's client key on chain.
func (p *Provider) requestKey(ctx context.Context, id uint64) (*reqauth.Key, error) {
	p.mu.Lock()
	k, ok := p.authKeys[id]
	p.mu.Unlock()
	if ok {
		return k, nil
	}
	ch, err := p.channel(ctx, id, 0)
	if err != nil {
		return nil, fmt.Errorf("channel %d: %w", id, err)
	}
	if string(ch.Provider) != string(p.addr) {
		return nil, fmt.Errorf("channel %d is not a channel to this provider", id)
	}
	key, err := reqauth.ProviderKey(p.cfg.Key, ed25519.PublicKey(ch.ClientPubKey), p.chainID, id)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.authKeys[id] = &key
	p.mu.Unlock()
	return &key, nil
}

// InFlight is the maximum cost reserved for a channel's requests being
// served (for tools and tests).
func (p *Provider) InFlight(channel uint64) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reserved[channel]
}
