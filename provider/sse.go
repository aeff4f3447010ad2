package provider

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/agoranet/agora/internal/oai"
)

// maxSSELine bounds one server-sent event line.
const maxSSELine = 4 << 20

// readSSE calls onData with the payload of each "data: " line of an
// OpenAI-style event stream until "[DONE]" or the end of the body. more
// reports whether another whole event is already buffered.
func readSSE(body io.Reader, onData func(data []byte, more bool) error) error {
	br := oai.NewStreamReader(body)
	defer oai.ReleaseStreamReader(br)
	var long []byte // a line longer than the buffer, assembled
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if long = append(long, line...); len(long) > maxSSELine {
				return errors.New("backend stream: event line too long")
			}
			continue
		}
		if long != nil {
			if line, long = append(long, line...), nil; len(line) > maxSSELine {
				return errors.New("backend stream: event line too long")
			}
		}
		if err != nil && (err != io.EOF || len(line) == 0) {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("backend stream: %w", err)
		}
		data, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte("data: "))
		if !ok {
			continue
		}
		if string(data) == "[DONE]" {
			return nil
		}
		if err := onData(data, oai.EventBuffered(br)); err != nil {
			return err
		}
	}
}
