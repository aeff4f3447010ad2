package oai

import (
	"bufio"
	"bytes"
)

// EventBuffered reports whether br already holds a whole server-sent event
// (a blank line ends one), so it can be read without waiting. Relays use it
// to write events that arrived together in one write, flushing only when
// the next event is not yet there: nothing waits, fewer syscalls.
func EventBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.Contains(b, []byte("\n\n")) || bytes.Contains(b, []byte("\n\r\n"))
}
