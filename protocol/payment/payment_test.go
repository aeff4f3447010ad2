package payment

import (
	"bytes"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/types"
)

func TestVoucherRoundTrip(t *testing.T) {
	sig := bytes.Repeat([]byte{0xab}, 64)
	v := &types.Voucher{ChannelId: 7, CumulativeAmount: 18446744073709551615, Signature: sig}
	h := FormatVoucher(v)
	// the bytes on the wire: decimal, decimal, lower-case hex
	if want := "7:18446744073709551615:" + strings.Repeat("ab", 64); h != want {
		t.Fatalf("FormatVoucher = %q, want %q", h, want)
	}
	got, err := ParseVoucher(h)
	if err != nil {
		t.Fatal(err)
	}
	if got.ChannelId != 7 || got.CumulativeAmount != v.CumulativeAmount || !bytes.Equal(got.Signature, sig) {
		t.Fatalf("ParseVoucher(FormatVoucher(v)) = %+v, want %+v", got, v)
	}
}

func TestParseVoucherRefuses(t *testing.T) {
	sig := strings.Repeat("ab", 64)
	for _, c := range []struct{ name, h, want string }{
		{"empty", "", "must be <channel>:<cumulative>:<signature hex>"},
		{"two parts", "1:2", "must be <channel>:<cumulative>:<signature hex>"},
		{"four parts", "1:2:" + sig + ":3", "must be <channel>:<cumulative>:<signature hex>"},
		{"negative channel", "-1:2:" + sig, "malformed"},
		{"amount overflows", "1:18446744073709551616:" + sig, "malformed"},
		{"signature not hex", "1:2:" + strings.Repeat("zz", 64), "malformed"},
		{"signature short", "1:2:" + sig[:126], "malformed"},
		{"signature long", "1:2:" + sig + "ab", "malformed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := ParseVoucher(c.h)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseVoucher(%q) = %+v, %v; want an error containing %q", c.h, v, err, c.want)
			}
		})
	}
}
