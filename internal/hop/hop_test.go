package hop

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agoranet/agora/testutil/poll"
)

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// server counts the connections it accepted.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s, &conns
}

func post(t *testing.T, c *Client, ctx context.Context, url, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return c.Do(req)
}

// TestKeepAliveAndConcurrency: sequential requests reuse one connection;
// concurrent ones each get their own and all answers match their requests;
// chunked and sized bodies both come back whole.
func TestKeepAliveAndConcurrency(t *testing.T) {
	s, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Query().Get("chunked") != "" {
			w.(http.Flusher).Flush() // no Content-Length: chunked
		}
		fmt.Fprintf(w, "echo:%s", b)
	})
	c := New(8, nil)
	defer c.CloseIdle()
	for i := 0; i < 20; i++ {
		url := s.URL + "/x"
		if i%2 == 1 {
			url += "?chunked=1"
		}
		resp, err := post(t, c, context.Background(), url, fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != fmt.Sprintf("echo:%d", i) || resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("20 sequential requests used %d connections", n)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, s.URL, strings.NewReader(fmt.Sprint("c", i)))
			resp, err := c.Do(req)
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != fmt.Sprintf("echo:c%d", i) {
				errs <- fmt.Errorf("request %d got %q", i, b)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestStreamingAndCancel: a streamed body is readable event by event as the
// server writes it; cancelling the context mid-stream ends the read and the
// connection is not reused; a body closed before its end closes its
// connection too.
func TestStreamingAndCancel(t *testing.T) {
	release := make(chan struct{})
	s, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		fl := w.(http.Flusher)
		fmt.Fprint(w, "data: one\n\n")
		fl.Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: two\n\n")
	})
	c := New(8, nil)
	defer c.CloseIdle()
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := post(t, c, ctx, s.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	var reading atomic.Bool // a read of the body is in progress
	br := bufio.NewReader(readerFunc(func(p []byte) (int, error) {
		reading.Store(true)
		defer reading.Store(false)
		return resp.Body.Read(p)
	}))
	if line, _ := br.ReadString('\n'); line != "data: one\n" {
		t.Fatalf("first event %q", line)
	}
	br.ReadString('\n')
	done := make(chan error, 1)
	go func() { _, err := br.ReadString('\n'); done <- err }()
	// the cancel comes while that read waits for the next event
	poll.True(t, 5*time.Second, "the read of the next event to start", reading.Load)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read went on after the cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not end the read")
	}
	resp.Body.Close()
	close(release)

	resp, err = post(t, c, context.Background(), s.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(b, []byte("data: one\n\ndata: two\n\n")) {
		t.Fatalf("body %q", b)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("the cancelled connection was reused (%d connections)", n)
	}
	// closed after its last event, before the chunked terminator was read:
	// the short tail is drained and the connection reused
	resp, _ = post(t, c, context.Background(), s.URL, "")
	br = bufio.NewReader(resp.Body)
	for i := 0; i < 4; i++ {
		br.ReadString('\n')
	}
	resp.Body.Close()
	resp, err = post(t, c, context.Background(), s.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := conns.Load(); n != 2 {
		t.Fatalf("a connection with a drained tail was not reused (%d connections)", n)
	}
}

// TestLongTailNotReused: a body closed with more than a short tail left (or
// a tail that does not come) closes its connection rather than wait.
func TestLongTailNotReused(t *testing.T) {
	hold := make(chan struct{})
	s, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		if r.URL.Path == "/big" {
			w.Write(bytes.Repeat([]byte("x"), 64<<10))
			return
		}
		select { // a stream that does not end
		case <-hold:
		case <-r.Context().Done():
		}
	})
	defer close(hold)
	c := New(8, nil)
	defer c.CloseIdle()
	for _, path := range []string{"/big", "/slow"} {
		resp, err := post(t, c, context.Background(), s.URL+path, "")
		if err != nil {
			t.Fatal(err)
		}
		bufio.NewReader(resp.Body).ReadString('\n')
		t0 := time.Now()
		resp.Body.Close()
		if d := time.Since(t0); d > time.Second {
			t.Fatalf("%s: close waited %v", path, d)
		}
	}
	resp, err := post(t, c, context.Background(), s.URL+"/big", "")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections: a connection closed with a long or missing tail was reused", n)
	}
}

// TestStaleConnectionRetried: a pooled connection the server closed while
// idle is replaced transparently, the request body sent again whole.
func TestStaleConnectionRetried(t *testing.T) {
	s, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	c := New(8, nil)
	defer c.CloseIdle()
	for i := 0; i < 2; i++ {
		resp, err := post(t, c, context.Background(), s.URL, "payload")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "payload" {
			t.Fatalf("request %d: %q", i, b)
		}
		s.CloseClientConnections() // the idle connection dies: closed when this returns
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections", n)
	}
	// a server that is gone is an error, not a hang
	s.Close()
	if _, err := post(t, c, context.Background(), s.URL, "x"); err == nil {
		t.Fatal("a closed server answered")
	}
}

// TestInformational: 103 responses before the response reach the request's
// httptrace.ClientTrace in order, with their headers, and the response
// after them is read whole on a reused connection; a server that never
// stops sending them is refused.
func TestInformational(t *testing.T) {
	s, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		n := 2
		if r.URL.Query().Get("flood") != "" {
			n = 10
		}
		for i := 0; i < n; i++ {
			w.Header().Set("X-Early", fmt.Sprint("hint-", i))
			w.WriteHeader(http.StatusEarlyHints)
		}
		w.Header().Del("X-Early")
		io.WriteString(w, "final")
	})
	c := New(8, nil)
	defer c.CloseIdle()
	for round := 0; round < 2; round++ {
		var got []string
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			got = append(got, fmt.Sprint(code, " ", h.Get("X-Early")))
			return nil
		}})
		resp, err := post(t, c, ctx, s.URL+"/x", "")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "final" || strings.Join(got, ",") != "103 hint-0,103 hint-1" {
			t.Fatalf("round %d: status %d body %q informational %v", round, resp.StatusCode, b, got)
		}
	}
	if conns.Load() != 1 {
		t.Fatalf("%d connections for two sequential requests", conns.Load())
	}
	// Without a trace they are skipped.
	resp, err := post(t, c, context.Background(), s.URL+"/x", "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "final" {
		t.Fatalf("body %q", b)
	}
	if _, err := post(t, c, context.Background(), s.URL+"/x?flood=1", ""); err == nil || !strings.Contains(err.Error(), "informational responses") {
		t.Fatalf("flood of 103s: %v", err)
	}
}
