package store

import (
	"slices"
	"testing"
)

// TestTimerQueue: Due returns the ids due at or before a height in
// (height, id) order and deletes them; later entries, other queues and
// dequeued ids stay out; negative heights count as zero.
func TestTimerQueue(t *testing.T) {
	tr, err := OpenMemTree()
	if err != nil {
		t.Fatal(err)
	}
	kv := NewCache(tr)
	q, other := []byte("q/"), []byte("q/x/")
	Enqueue(kv, q, 5, 9)
	Enqueue(kv, q, 3, 7)
	Enqueue(kv, q, 5, 2)
	Enqueue(kv, q, -4, 1)
	Enqueue(kv, q, 6, 3)
	Enqueue(kv, q, 4, 8)
	Dequeue(kv, q, 4, 8)
	Enqueue(kv, other, 1, 5)
	if got := Due(kv, q, 5); !slices.Equal(got, []uint64{1, 7, 2, 9}) {
		t.Fatalf("due at 5: %v", got)
	}
	if got := Due(kv, q, 5); len(got) != 0 {
		t.Fatalf("due again at 5: %v (entries must be deleted)", got)
	}
	if got := Due(kv, q, 100); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("due at 100: %v", got)
	}
	if got := IDsUnder(kv, other); !slices.Equal(got, []uint64{5}) {
		t.Fatalf("other queue: %v", got)
	}
}
