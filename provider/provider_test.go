package provider

import (
	"crypto/ed25519"
	"crypto/sha256"
	"math"
	"testing"

	"github.com/agoranet/agora/chain/types"
)

func TestCost(t *testing.T) {
	cases := []struct {
		p, c    int
		in, out uint64
		want    uint64
	}{
		{0, 0, 100, 200, 0},
		{1, 0, 1, 1, 1},          // rounds up
		{1000, 1000, 10, 20, 30}, // exact
		{1500, 10, 10, 20, 16},   // 15 + 0.2 → 16
		{math.MaxInt32, math.MaxInt32, math.MaxUint64, 1, math.MaxUint64}, // saturates
	}
	for _, c := range cases {
		if got := Cost(c.p, c.c, c.in, c.out); got != c.want {
			t.Errorf("Cost(%d, %d, %d, %d) = %d, want %d", c.p, c.c, c.in, c.out, got, c.want)
		}
	}
}

func TestVoucherHeader(t *testing.T) {
	seed := sha256.Sum256([]byte("c"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	v := types.SignVoucher(priv, "chain", 7, 1234)
	got, err := ParseVoucher(FormatVoucher(v))
	if err != nil || got.ChannelId != 7 || got.CumulativeAmount != 1234 || string(got.Signature) != string(v.Signature) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range []string{"", "1:2", "a:2:00", "1:b:00", "1:2:zz", "1:2:00ff", "1:2:3:4"} {
		if _, err := ParseVoucher(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestCompleteUTF8(t *testing.T) {
	euro := []byte("€") // 3 bytes
	cases := []struct {
		b    []byte
		want int
	}{
		{[]byte("abc"), 3},
		{append([]byte("a"), euro[:1]...), 1},
		{append([]byte("a"), euro[:2]...), 1},
		{append([]byte("a"), euro...), 4},
		{[]byte{0xff}, 1}, // invalid byte: not held back forever
	}
	for _, c := range cases {
		if got := completeUTF8(c.b); got != c.want {
			t.Errorf("completeUTF8(%x) = %d, want %d", c.b, got, c.want)
		}
	}
}
