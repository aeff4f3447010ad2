package provider

import "testing"

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
