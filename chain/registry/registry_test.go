package registry

import "testing"

func TestNextReputation(t *testing.T) {
	rep := uint64(0)
	for i := 1; i <= 12; i++ {
		rep = NextReputation(rep, 1000, false)
		if want := min(10000, uint64(i)*1000); rep != want {
			t.Fatalf("after %d clean epochs: %d, want %d", i, rep, want)
		}
	}
	if NextReputation(rep, 1000, true) != 0 {
		t.Fatal("a fault must reset the reputation")
	}
}
