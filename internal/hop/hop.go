// Package hop is the HTTP/1.1 client of the request path's internal hops
// (gateway → provider, provider → backend). It writes each request and
// reads its response on the calling goroutine over pooled keep-alive
// connections, using the standard library's own request writer and response
// parser. net/http's Transport hands every exchange to two per-connection
// goroutines (a writer and a reader); on a busy machine those hand-offs cost
// as much as the rest of the client, and they are what this package saves.
// Cancellation works as with net/http: when the request's context ends, the
// connection is closed, which ends any read or write in progress.
//
// Only http:// URLs are handled here; anything else goes to a fallback
// net/http client.
package hop

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"time"
)

// Client is safe for concurrent use. The zero value is not usable: use New.
type Client struct {
	dialer   net.Dialer
	fallback *http.Client
	maxIdle  int           // idle connections kept per host
	idleFor  time.Duration // an idle connection older than this is closed, not reused

	mu   sync.Mutex
	idle map[string][]*conn
}

type conn struct {
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	host string
	used time.Time // when it went idle
}

// New returns a client keeping up to maxIdle idle connections per host;
// fallback serves URLs that are not plain http (nil: http.DefaultClient).
func New(maxIdle int, fallback *http.Client) *Client {
	if fallback == nil {
		fallback = http.DefaultClient
	}
	return &Client{dialer: net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}, fallback: fallback,
		maxIdle: maxIdle, idleFor: 50 * time.Second, idle: map[string][]*conn{}}
}

// Do sends req and returns its response; the caller must close the body.
// The connection goes back to the pool once the body has been read to the
// end and closed (a body closed early closes the connection).
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		return c.fallback.Do(req)
	}
	host := req.URL.Host
	if req.URL.Port() == "" {
		host = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	for attempt := 0; ; attempt++ {
		cn, reused, err := c.get(req.Context(), host)
		if err != nil {
			return nil, err
		}
		resp, err := c.exchange(cn, req)
		if err == nil {
			return resp, nil
		}
		// A pooled connection the server closed while it was idle fails
		// before any response byte: try once more on a fresh one, if the
		// body can be sent again.
		if reused && attempt == 0 && req.Context().Err() == nil && (req.Body == nil || req.GetBody != nil) && errors.Is(err, errStale) {
			if req.GetBody != nil {
				if req.Body, err = req.GetBody(); err != nil {
					return nil, err
				}
			}
			continue
		}
		return nil, err
	}
}

var errStale = errors.New("connection closed before the response")

// max1xx bounds the informational responses before a response.
const max1xx = 5

func (c *Client) exchange(cn *conn, req *http.Request) (*http.Response, error) {
	stop := context.AfterFunc(req.Context(), func() { cn.nc.Close() })
	fail := func(err error) (*http.Response, error) {
		stop()
		cn.nc.Close()
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	if err := req.Write(cn.bw); err != nil {
		return fail(err)
	}
	if err := cn.bw.Flush(); err != nil {
		return fail(errStale)
	}
	if _, err := cn.br.Peek(1); err != nil {
		return fail(errStale)
	}
	resp, err := http.ReadResponse(cn.br, req)
	// Informational responses (other than 101) come before the response:
	// handed to the request's httptrace.ClientTrace, as net/http does.
	for n := 0; err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols; n++ {
		if n == max1xx {
			return fail(fmt.Errorf("more than %d informational responses", max1xx))
		}
		if tr := httptrace.ContextClientTrace(req.Context()); tr != nil && tr.Got1xxResponse != nil {
			if err := tr.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
				return fail(err)
			}
		}
		resp, err = http.ReadResponse(cn.br, req)
	}
	if err != nil {
		return fail(err)
	}
	resp.Body = &body{ReadCloser: resp.Body, c: c, cn: cn, stop: stop, reuse: !resp.Close}
	return resp, nil
}

func (c *Client) get(ctx context.Context, host string) (*conn, bool, error) {
	now := time.Now()
	c.mu.Lock()
	for list := c.idle[host]; len(list) > 0; list = c.idle[host] {
		cn := list[len(list)-1]
		c.idle[host] = list[:len(list)-1]
		if now.Sub(cn.used) < c.idleFor {
			c.mu.Unlock()
			return cn, true, nil
		}
		cn.nc.Close()
	}
	c.mu.Unlock()
	nc, err := c.dialer.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, false, err
	}
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, 32<<10), bw: bufio.NewWriterSize(nc, 16<<10), host: host}, false, nil
}

func (c *Client) put(cn *conn) {
	cn.used = time.Now()
	c.mu.Lock()
	if len(c.idle[cn.host]) < c.maxIdle {
		c.idle[cn.host] = append(c.idle[cn.host], cn)
		cn = nil
	}
	c.mu.Unlock()
	if cn != nil {
		cn.nc.Close()
	}
}

// CloseIdle closes the pooled connections.
func (c *Client) CloseIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, list := range c.idle {
		for _, cn := range list {
			cn.nc.Close()
		}
		delete(c.idle, h)
	}
}

// body returns its connection to the pool when read to the end and closed.
type body struct {
	io.ReadCloser
	c     *Client
	cn    *conn
	stop  func() bool
	eof   bool
	reuse bool
	done  bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// A body closed before its end — an event stream left at its last event,
// whose chunked terminator is still in flight — is read on for up to
// drainBytes and drainWait, so its connection can be reused; a longer or
// slower tail closes the connection instead.
const (
	drainBytes = 4 << 10
	drainWait  = 10 * time.Millisecond
)

func (b *body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if !b.eof && b.reuse {
		b.cn.nc.SetReadDeadline(time.Now().Add(drainWait))
		if n, err := io.CopyN(io.Discard, b.ReadCloser, drainBytes+1); err == io.EOF && n <= drainBytes {
			b.eof = true
		}
		b.cn.nc.SetReadDeadline(time.Time{})
	}
	err := b.ReadCloser.Close()
	// stop reports false when the context already closed the connection.
	if b.stop() && b.eof && b.reuse && b.cn.br.Buffered() == 0 {
		b.c.put(b.cn)
	} else {
		b.cn.nc.Close()
	}
	return err
}
