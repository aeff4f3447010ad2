package provider

import "testing"

func TestNextPrice(t *testing.T) {
	pr := Pricing{Adaptive: true}
	cases := []struct{ cur, base, util, want uint64 }{
		{1000, 1000, 300, 1000}, // in band: unchanged
		{1000, 1000, 800, 1100}, // busy: +10 %
		{1000, 1000, 0, 900},    // idle: -10 %
		{520, 1000, 0, 500},     // floor 50 %
		{3900, 1000, 900, 4000}, // ceiling 400 %
		{5, 5, 900, 6},          // small prices still move up
	}
	for _, c := range cases {
		if got := pr.NextPrice(c.cur, c.base, c.util); got != c.want {
			t.Errorf("NextPrice(%d, %d, %d) = %d, want %d", c.cur, c.base, c.util, got, c.want)
		}
	}
	if got := (Pricing{}).NextPrice(1000, 1000, 900); got != 1000 {
		t.Errorf("fixed pricing moved to %d", got)
	}
}
