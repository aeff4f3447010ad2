package reqauth

import "testing"

// FuzzParse: no input panics the header parser, and whatever it accepts
// renders back to a header that parses to the same value. Seeds are in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, h string) {
		a, err := Parse(h)
		if err != nil {
			if Reason(err) == "other" {
				t.Fatalf("%q: refused without a reason: %v", h, err)
			}
			return
		}
		b, err := Parse(a.String())
		if err != nil || b != a {
			t.Fatalf("%q parsed to %+v, which renders to %q, which parses to %+v (%v)", h, a, a.String(), b, err)
		}
	})
}
