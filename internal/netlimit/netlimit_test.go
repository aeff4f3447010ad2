package netlimit

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/agoranet/agora/testutil/poll"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serve starts a server for h with l on a free loopback port.
func serve(t *testing.T, h http.Handler, l Limits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, capped := Server(ln, h, l)
	go srv.Serve(capped)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// slowBody sends the headers of a POST announcing size bytes and then one
// byte of its body, as the flood did, and returns the connection.
func slowBody(t *testing.T, addr, path string, size int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", path, size)
	return c
}

// closedBy reads from c until the server closes it or the wait runs out,
// and says whether the server closed it (after any response it wrote).
func closedBy(c net.Conn, wait time.Duration) (bool, string) {
	c.SetReadDeadline(time.Now().Add(wait))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, string(got)
	}
	return true, string(got)
}

func TestBodyTimeoutClosesSlowBodies(t *testing.T) {
	reading := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Write([]byte("read\n"))
	})
	// The node API answers POSTs it has no route for without reading the
	// body; the server then discards the rest of it, which must be bounded too.
	ignoring := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such route", http.StatusNotFound)
	})
	for _, tc := range []struct {
		name    string
		h       http.Handler
		size    int
		wantOut string
	}{
		{"handler reads the body", reading, 1 << 20, "400 Bad Request"},
		// net/http closes at once after a handler that left over 256 KB
		// unread; below that it reads the rest to keep the connection.
		{"handler ignores the body", ignoring, 100 << 10, "404 Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, tc.h, Limits{MaxConnections: 8, HeaderTimeout: time.Second, BodyTimeout: 200 * time.Millisecond})
			c := slowBody(t, addr, "/v1/chat/completions", tc.size)
			// Generous against a loaded machine, yet far short of forever:
			// without a body deadline the connection is held until the client goes.
			closed, out := closedBy(c, 20*time.Second)
			if !closed {
				t.Fatalf("a client sending 1 byte of a %d-byte body still holds its connection (read so far: %q)", tc.size, out)
			}
			if !strings.Contains(out, tc.wantOut) {
				t.Fatalf("response before the close: %q, want %q", out, tc.wantOut)
			}
		})
	}
}

// A completion streams long after its body was read: the body deadline
// must not cut it, nor cancel its context.
func TestBodyTimeoutSparesStreams(t *testing.T) {
	const chunks = 6
	var ctxErr atomic.Value
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		fl := w.(http.Flusher)
		for i := 0; i < chunks; i++ {
			select {
			case <-r.Context().Done():
				ctxErr.Store(r.Context().Err().Error())
				return
			case <-time.After(100 * time.Millisecond): // a token every 100 ms, past the 200 ms read deadline
			}
			fmt.Fprintf(w, "data: %d\n\n", i)
			fl.Flush()
		}
	}), Limits{MaxConnections: 8, HeaderTimeout: 100 * time.Millisecond, BodyTimeout: 100 * time.Millisecond})
	resp, err := http.Post("http://"+addr+"/stream", "application/json", strings.NewReader(`{"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	n := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			n++
		}
	}
	if n != chunks {
		t.Fatalf("got %d of %d chunks (scan err %v, context %v)", n, chunks, sc.Err(), ctxErr.Load())
	}
}

func TestConnectionCap(t *testing.T) {
	const limit, clients = 3, 8
	var inflight, peak atomic.Int64
	release := make(chan struct{})
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inflight.Add(-1)
		w.Write([]byte("ok\n"))
	}), Limits{MaxConnections: limit})

	var wg sync.WaitGroup
	codes := make(chan int, clients)
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := (&http.Client{Transport: tr}).Get("http://" + addr + "/")
			if err != nil {
				codes <- -1
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	poll.True(t, 20*time.Second, "the cap's connections to be served", func() bool { return inflight.Load() >= limit })
	// Give an uncapped server the chance to take the other clients too:
	// nothing marks that it will not, so this watches for a bounded
	// while; polled, it shows at once when it does.
	poll.Wait(500*time.Millisecond, func() (bool, string) { return inflight.Load() > limit, "" })
	if got := inflight.Load(); got != limit {
		t.Fatalf("%d requests served at once, cap %d", got, limit)
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Fatalf("a client waiting for a slot got %d, want 200 once one was free", c)
		}
	}
	if p := peak.Load(); p != limit {
		t.Fatalf("peak %d connections served at once, cap %d", p, limit)
	}
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		limit, servers       int
		wantReserve, wantPer int
	}{
		{1024, 6, 512, 85},            // a small limit keeps half for consensus
		{20000, 6, 5000, 2500},        // a quarter of a large one
		{4096, 2, 1024, 1536},         // at least 1024
		{1 << 20, 1, 1 << 18, 786432}, // one server gets all the rest
		{64, 100, 32, 1},              // never a zero cap
	} {
		b := Plan(tc.limit, tc.servers)
		if b.Reserve != tc.wantReserve || b.PerServer != tc.wantPer {
			t.Errorf("Plan(%d, %d) = reserve %d, per server %d; want %d, %d", tc.limit, tc.servers, b.Reserve, b.PerServer, tc.wantReserve, tc.wantPer)
		}
		if b.Reserve+b.PerServer*b.Servers > tc.limit && b.PerServer > 1 {
			t.Errorf("Plan(%d, %d) overcommits: %s", tc.limit, tc.servers, b)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		l    Limits
		want string
	}{
		{Limits{}, ""},
		{Limits{MaxConnections: -1}, "max_connections -1"},
		{Limits{BodyTimeout: -time.Second}, "must not be negative"},
	} {
		err := tc.l.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.l, err, tc.want)
		}
	}
}
