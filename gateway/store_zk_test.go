package gateway

import "testing"

// TestStoreZKAnswersBilledAfterRestart: a verified proven answer is billed
// to its channel from the store, across a reopen, beside receipts, and
// sequence numbers continue.
func TestStoreZKAnswersBilledAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddReceipt(&StoredReceipt{ID: "r1", Provider: "p", Payer: "a", Channel: 4, Amount: 100}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkVerified(1); err != nil {
		t.Fatal(err)
	}
	for _, amt := range []uint64{21, 14} {
		if err := s.AddZKAnswer(&StoredZKAnswer{Provider: "p", Payer: "a", Channel: 4, Amount: amt, Model: 1, Count: int(amt / 7)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddZKAnswer(&StoredZKAnswer{Provider: "q", Payer: "a", Channel: 9, Amount: 7}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = OpenStore(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	billed, err := s.BilledByProvider(func(StoredReceipt) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	if billed["a/p"][4] != 135 || billed["a/q"][9] != 7 || len(billed) != 2 {
		t.Fatalf("billed %v, want a/p channel 4: 135 (a receipt of 100 and answers of 21 and 14), a/q channel 9: 7", billed)
	}
	a := &StoredZKAnswer{Provider: "q", Payer: "a", Channel: 9, Amount: 7}
	if err := s.AddZKAnswer(a); err != nil {
		t.Fatal(err)
	}
	if a.Seq != 4 {
		t.Fatalf("the answer after a reopen got seq %d, want 4", a.Seq)
	}
	var seqs []uint64
	s.ScanZK(func(a StoredZKAnswer) { seqs = append(seqs, a.Seq) })
	if len(seqs) != 4 || seqs[3] != 4 {
		t.Fatalf("stored answers %v", seqs)
	}
}
