package rewards

import "testing"

func TestEmission(t *testing.T) {
	for _, c := range []struct{ initial, interval, n, want uint64 }{
		{1000, 10, 0, 1000}, {1000, 10, 9, 1000}, {1000, 10, 10, 500}, {1000, 10, 25, 250},
		{1000, 10, 640, 0}, {^uint64(0), 1, 63, 1}, {^uint64(0), 1, 64, 0}, {7, 0, 3, 0},
	} {
		if got := Emission(c.initial, c.interval, c.n); got != c.want {
			t.Errorf("Emission(%d, %d, %d) = %d, want %d", c.initial, c.interval, c.n, got, c.want)
		}
	}
}
