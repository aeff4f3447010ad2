package models

import (
	"strings"
	"testing"
)

func TestParseDigest(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, c := range []struct {
		in, err string
	}{
		{h, ""},
		{h + "  model.gguf\n", ""},
		{h + "\n", ""},
		{h + "\tmodel.gguf", ""},
		{"", "digest of 0 bytes"},
		{h[:63], "digest of 63 bytes"},
		{strings.ToUpper(h), "want lowercase hex"},
		{strings.Repeat("zz", 32), "invalid byte"},
		{h + "x", `"x" after the hash`},
		{h + strings.Repeat(" ", MaxDigest), "want a sha256sum line"},
	} {
		sum, err := ParseDigest([]byte(c.in))
		if c.err == "" {
			if err != nil || len(sum) != 32 || sum[0] != 0xab || sum[31] != 0xab {
				t.Errorf("%q: %x %v", c.in, sum, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: got %v, want %q", c.in, err, c.err)
		}
	}
}
