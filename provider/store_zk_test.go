package provider

import "testing"

// TestStoreZKAnswers: proven answers are kept per channel across a reopen
// (Start bills them again from here).
func TestStoreZKAnswers(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range []ZKAnswer{{Channel: 3, Amount: 21, Signature: []byte{1}}, {Channel: 3, Amount: 7, Signature: []byte{2}}, {Channel: 5, Amount: 14, Signature: []byte{3}}} {
		if err := s.AddZKAnswer(a); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
	}
	s.Close()
	if s, err = OpenStore(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	billed := map[uint64]uint64{}
	if err := s.ScanZK(func(a ZKAnswer) { billed[a.Channel] += a.Amount }); err != nil {
		t.Fatal(err)
	}
	if billed[3] != 28 || billed[5] != 14 || len(billed) != 2 {
		t.Fatalf("billed %v, want channel 3: 28, channel 5: 14", billed)
	}
}
