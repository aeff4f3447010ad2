package app

import "testing"

// TestRetainHeight: the retain height keeps the last KeepBlocks blocks,
// never passes RetainLimit, and only moves up (CometBFT refuses lowering).
func TestRetainHeight(t *testing.T) {
	limit := int64(0)
	a := &App{}
	a.KeepBlocks = 10
	a.RetainLimit = func() int64 { return limit }
	for _, c := range []struct {
		height, limit, want, retained int64
	}{
		{5, 100, 0, 0},    // fewer blocks than the window
		{10, 100, 0, 0},   // exactly the window: block 1 is kept
		{11, 100, 2, 2},   // block 1 may go
		{50, 100, 41, 41}, // the last 10: 41..50
		{51, 30, 0, 41},   // a reader behind: never lower, nothing new
		{60, 45, 45, 45},  // a reader at 44 needs 45: stop there
		{70, 0, 0, 45},    // the reader is gone (stopping): keep all
		{80, 100, 71, 71}, // back: catch up
	} {
		limit = c.limit
		if got := a.retainHeight(c.height); got != c.want || a.RetainHeight() != c.retained {
			t.Fatalf("height %d, limit %d: retain %d (kept %d), want %d (%d)", c.height, c.limit, got, a.RetainHeight(), c.want, c.retained)
		}
	}
	off := &App{}
	if got := off.retainHeight(1_000_000); got != 0 {
		t.Fatalf("keep all: retain height %d", got)
	}
	a.NoteRetained(60)
	a.NoteRetained(3)
	if a.RetainHeight() != 71 {
		t.Fatalf("NoteRetained lowered the retain height to %d", a.RetainHeight())
	}
}
