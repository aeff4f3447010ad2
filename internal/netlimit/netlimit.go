// Package netlimit keeps a process's HTTP servers from taking the file
// descriptors consensus needs: it raises the soft RLIMIT_NOFILE, splits
// what is left after a reserve for consensus (databases, WAL, peers,
// outbound connections) among the servers the process runs, caps each
// server's open connections at its share, and bounds how long a client may
// take to send a request's headers and body and how long an idle
// keep-alive connection is kept.
//
// Without it a flood of slow requests (each sending one byte of a large
// body) held one descriptor per connection until the process ran out, and
// CometBFT halted on "too many open files" while saving its signing state.
package netlimit

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Limits are one HTTP server's connection cap and timeouts. A zero field
// takes its default (WithDefaults).
type Limits struct {
	// MaxConnections caps the connections open at once; further clients
	// wait in the kernel's accept queue, holding no descriptor of ours.
	// 0: this server's share of the process's descriptor budget.
	MaxConnections int `toml:"max_connections"`
	// HeaderTimeout bounds reading a request's headers (default 10s).
	HeaderTimeout time.Duration `toml:"header_timeout"`
	// BodyTimeout bounds reading a request's body: the whole request must
	// arrive within HeaderTimeout+BodyTimeout (default 30s). It does not
	// bound the response, so a long streamed completion is not cut.
	BodyTimeout time.Duration `toml:"body_timeout"`
	// IdleTimeout closes a keep-alive connection idle this long (default 60s).
	IdleTimeout time.Duration `toml:"idle_timeout"`
	// WriteTimeout bounds writing a response (0: none, for servers that
	// stream completions; the node API sets one).
	WriteTimeout time.Duration `toml:"write_timeout"`
}

// Defaults of the timeouts.
const (
	DefaultHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout   = 30 * time.Second
	DefaultIdleTimeout   = 60 * time.Second
	// maxHeaderBytes: requests carry a bearer key and a voucher header at
	// most; net/http's default of 1 MB is far more than any needs.
	maxHeaderBytes = 64 << 10
)

// Validate rejects negative values.
func (l Limits) Validate() error {
	switch {
	case l.MaxConnections < 0:
		return fmt.Errorf("max_connections %d: must be 0 (the descriptor budget's share) or positive", l.MaxConnections)
	case l.HeaderTimeout < 0, l.BodyTimeout < 0, l.IdleTimeout < 0, l.WriteTimeout < 0:
		return errors.New("limits: timeouts must not be negative")
	}
	return nil
}

// WithDefaults fills the zero fields: the timeouts with their defaults, the
// connection cap with one server's share of the process budget.
func (l Limits) WithDefaults() Limits {
	if l.MaxConnections == 0 {
		l.MaxConnections = Current().PerServer
	}
	if l.HeaderTimeout == 0 {
		l.HeaderTimeout = DefaultHeaderTimeout
	}
	if l.BodyTimeout == 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	return l
}

// Budget is how a process's descriptors are shared.
type Budget struct {
	Limit     int // the soft RLIMIT_NOFILE
	Reserve   int // kept for consensus: databases, WAL, p2p peers, outbound connections
	Servers   int // listeners sharing the rest (a proxying server counts twice)
	PerServer int // each listener's connection cap
}

func (b Budget) String() string {
	return fmt.Sprintf("%d descriptors: %d reserved for consensus, %d connections for each of %d server shares", b.Limit, b.Reserve, b.PerServer, b.Servers)
}

// Plan splits limit descriptors: a quarter, but at least 1024 or half of a
// small limit, is reserved; the rest is shared evenly by servers.
func Plan(limit, servers int) Budget {
	servers = max(servers, 1)
	reserve := max(limit/4, min(1024, limit/2))
	per := max((limit-reserve)/servers, 1)
	return Budget{Limit: limit, Reserve: reserve, Servers: servers, PerServer: per}
}

// servers is the number of server shares the process declared (Setup); a
// library used without Setup assumes a node, a provider and a gateway.
var servers atomic.Int64

const defaultServers = 5

// Current is the budget for the process's soft limit now.
func Current() Budget {
	n := int(servers.Load())
	if n == 0 {
		n = defaultServers
	}
	soft, _, err := NoFile()
	if err != nil {
		soft = 1024
	}
	return Plan(int(min(soft, 1<<30)), n)
}

// NoFile returns the process's RLIMIT_NOFILE.
func NoFile() (soft, hard uint64, err error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, fmt.Errorf("getrlimit NOFILE: %w", err)
	}
	return r.Cur, r.Max, nil
}

// RaiseNoFile raises the soft RLIMIT_NOFILE to the hard limit. (Go's runtime
// does this at start on Linux too; doing it here makes it explicit, logged,
// and true whatever started the process.)
func RaiseNoFile() (soft, hard uint64, err error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, fmt.Errorf("getrlimit NOFILE: %w", err)
	}
	if r.Cur < r.Max {
		want := r
		want.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return r.Cur, r.Max, fmt.Errorf("raise NOFILE soft limit from %d to %d: %w", r.Cur, r.Max, err)
		}
		r = want
	}
	return r.Cur, r.Max, nil
}

// Setup raises the soft descriptor limit and declares how many server
// shares the process runs (a proxying server, which opens an outbound
// connection per request, counts twice). It warns if the limit could not be
// raised; the caller logs the budget (Log) once it knows it will run, so a
// start refused at once says only why.
func Setup(logger *slog.Logger, shares int) Budget {
	if _, _, err := RaiseNoFile(); err != nil {
		logger.Warn("descriptor limit", "err", err)
	}
	servers.Store(int64(max(shares, 1)))
	return Current()
}

// Log logs the budget.
func (b Budget) Log(logger *slog.Logger) {
	logger.Info("descriptor budget", "rlimit_nofile", b.Limit, "reserved", b.Reserve, "per_server", b.PerServer, "shares", b.Servers)
}

// Listener caps ln at max connections open at once: Accept waits for a
// slot, so extra clients queue in the kernel (which holds no descriptor of
// this process) until one is released.
func Listener(ln net.Listener, max int) net.Listener {
	return &capListener{Listener: ln, sem: make(chan struct{}, max), done: make(chan struct{})}
}

type capListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *capListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &capConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *capListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

type capConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Server returns an HTTP server for h with l's timeouts (zero fields take
// their defaults), and ln wrapped with l's connection cap: serve the
// returned listener.
//
// The body deadline is http.Server's ReadTimeout (headers and body from the
// request's first byte): once a handler has read the body to its end,
// net/http lifts the deadline before it watches the connection for the
// client going away, so a response streamed for minutes is not cut. A body
// the handler leaves unread keeps the deadline, which bounds the server's
// discarding of it too.
func Server(ln net.Listener, h http.Handler, l Limits) (*http.Server, net.Listener) {
	l = l.WithDefaults()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.HeaderTimeout,
		ReadTimeout:       l.HeaderTimeout + l.BodyTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	return srv, Listener(ln, l.MaxConnections)
}
