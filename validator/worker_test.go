package validator

import (
	"strings"
	"testing"
)

func TestScoresFromFindings(t *testing.T) {
	a, b, c := strings.Repeat("bb", 20), strings.Repeat("aa", 20), strings.Repeat("cc", 20)
	fs := []Finding{
		{Provider: a, OK: true}, {Provider: a, OK: true}, {Provider: a, OK: false, Fault: FaultFabricated}, {Provider: a, Fault: Unverifiable},
		{Provider: b, OK: true},
		{Provider: c, Fault: Unverifiable},
	}
	m := Scores(7, fs)
	if m == nil || m.Epoch != 7 || len(m.Scores) != 2 {
		t.Fatalf("scores: %+v", m)
	}
	// b sorts before a; c (nothing verifiable) is not scored.
	if got := m.Scores[0]; got.ScoreBps != 10000 || strings.Repeat("aa", 20) != addrHex(got.Provider) {
		t.Fatalf("first score %+v", got)
	}
	if got := m.Scores[1]; got.ScoreBps != 6666 || a != addrHex(got.Provider) {
		t.Fatalf("second score %+v (2 of 3 verifiable receipts passed)", got)
	}
	if Scores(1, []Finding{{Provider: c, Fault: Unverifiable}}) != nil {
		t.Fatal("nothing verifiable must give no scores")
	}
}

func addrHex(b []byte) string {
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, hexdigits[x>>4], hexdigits[x&15])
	}
	return string(out)
}
