// Package payment is how a client pays a provider over HTTP: the voucher of
// an on-chain payment channel (a signed cumulative amount), carried in the
// X-Agora-Voucher header of every paid request and posted alone to
// VouchersPath to top a channel up. Vouchers pay for any service on the
// channel, so this package knows nothing of what they pay for.
package payment

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/agoranet/agora/chain/types"
)

// VoucherHeader carries "<channel id>:<cumulative uagr>:<signature hex>"
// (FormatVoucher, ParseVoucher).
const VoucherHeader = "X-Agora-Voucher"

// VouchersPath is where a client posts a voucher alone (in VoucherHeader,
// empty body), to pay for receipts already given; VouchersRoute is the
// provider's ServeMux pattern for it.
const (
	VouchersPath  = "/v1/vouchers"
	VouchersRoute = "POST " + VouchersPath
)

// ParseVoucher parses the voucher header. It checks the form only (the
// signature's length included), not the signature.
func ParseVoucher(h string) (*types.Voucher, error) {
	parts := strings.Split(h, ":")
	if len(parts) != 3 {
		return nil, errors.New("voucher header must be <channel>:<cumulative>:<signature hex>")
	}
	id, err1 := strconv.ParseUint(parts[0], 10, 64)
	cum, err2 := strconv.ParseUint(parts[1], 10, 64)
	sig, err3 := hex.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || len(sig) != ed25519.SignatureSize {
		return nil, errors.New("voucher header is malformed")
	}
	return &types.Voucher{ChannelId: id, CumulativeAmount: cum, Signature: sig}, nil
}

// FormatVoucher renders a voucher for the header.
func FormatVoucher(v *types.Voucher) string {
	return fmt.Sprintf("%d:%d:%x", v.ChannelId, v.CumulativeAmount, v.Signature)
}
