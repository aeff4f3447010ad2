package provider

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// TestReadSSE: data lines in order with CRLF or LF, comments and other
// fields skipped, an event longer than the read buffer assembled, [DONE]
// ending the stream, more telling when the next event is already buffered,
// and a line over the limit refused.
func TestReadSSE(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	in := ": comment\r\nevent: x\ndata: a\r\n\r\ndata: " + long + "\n\ndata: c\n\ndata: [DONE]\n\ndata: after\n\n"
	var got []string
	var mores []bool
	err := readSSE(strings.NewReader(in), func(d []byte, more bool) error {
		got = append(got, string(d))
		mores = append(mores, more)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != "a" || got[1] != long || got[2] != "c" {
		t.Fatalf("events %d: %.20q", len(got), got)
	}
	// after "a" the long event is not whole in the buffer; after it, "c" is;
	// after "c", the [DONE] event
	if mores[0] || !mores[1] || !mores[2] {
		t.Fatalf("more flags %v", mores)
	}
	// one event at a time from the network: nothing else is buffered
	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, "data: one\n\n")
		io.WriteString(pw, "data: two\n\n")
		pw.Close()
	}()
	var first *bool
	readSSE(pr, func(d []byte, more bool) error {
		if first == nil {
			first = &more
		}
		return nil
	})
	if first == nil || *first {
		t.Fatal("more reported for an event not yet received")
	}
	// a stream cut without [DONE] ends without error; an oversize line fails
	if err := readSSE(strings.NewReader("data: x"), func([]byte, bool) error { return nil }); err != nil {
		t.Fatalf("unterminated: %v", err)
	}
	huge := "data: " + strings.Repeat("y", maxSSELine+10) + "\n\n"
	if err := readSSE(strings.NewReader(huge), func([]byte, bool) error { return nil }); err == nil {
		t.Fatal("an oversize event was accepted")
	}
	stop := errors.New("stop")
	if err := readSSE(strings.NewReader("data: a\n\n"), func([]byte, bool) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("callback error: %v", err)
	}
}
