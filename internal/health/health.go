// Package health reports whether the chain a daemon depends on is alive:
// /healthz answers 503 with the reason once no block has been committed for
// longer than a maximum age (some number of block times), or once consensus
// has failed, rather than "ok" while vouchers can no longer settle.
package health

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	"github.com/prometheus/client_golang/prometheus"
)

// Head is what a Source reports: the latest committed height and its block
// time (zero when there is no block yet).
type Head struct {
	Height int64
	Time   time.Time
}

// Source reads the chain's head: the local block store for a node, the
// node's RPC for a gateway or provider.
type Source func(ctx context.Context) (Head, error)

// Monitor polls a Source and keeps the verdict, so /healthz is answered
// from memory. The age of the head is measured on the local clock from the
// moment a new height was first seen (the first head's own block time
// counts, so a chain halted before the daemon started is seen as such).
type Monitor struct {
	src    Source
	maxAge time.Duration
	what   string // the setting that sets maxAge, for the reason
	now    func() time.Time

	mu      sync.Mutex
	head    Head
	seen    time.Time // when head.Height was first seen (or its block time)
	polled  bool
	err     error  // the last poll's error
	failure string // a consensus failure: sticky
}

// DefaultMaxAge is 10 block times, but at least 10 s (several rounds of a
// slow proposer should not flap the verdict).
func DefaultMaxAge(blockTime time.Duration) time.Duration {
	return max(10*blockTime, 10*time.Second)
}

// New returns a monitor of src that declares the chain stalled when no new
// block came for maxAge; setting names the option that sets it.
func New(src Source, maxAge time.Duration, setting string) *Monitor {
	return &Monitor{src: src, maxAge: maxAge, what: setting, seen: time.Now(), now: time.Now}
}

// MaxAge is the age of the head past which the chain counts as stalled.
func (m *Monitor) MaxAge() time.Duration { return m.maxAge }

// Poll reads the source once.
func (m *Monitor) Poll(ctx context.Context) {
	h, err := m.src(ctx)
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
	if err != nil {
		return
	}
	switch {
	case !m.polled:
		m.polled = true
		m.head = h
		if !h.Time.IsZero() && h.Time.Before(now) {
			m.seen = h.Time
		}
	case h.Height != m.head.Height:
		m.head, m.seen = h, now
	}
}

// Run polls every interval (a tenth of the maximum age, at most a second)
// until ctx is done.
func (m *Monitor) Run(ctx context.Context) {
	every := min(m.maxAge/10, time.Second)
	t := time.NewTicker(max(every, 10*time.Millisecond))
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, max(every, time.Second))
		m.Poll(pctx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Fail records that consensus failed with reason: the monitor stays
// unhealthy (consensus does not resume by itself after a failure).
func (m *Monitor) Fail(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failure == "" {
		m.failure = reason
	}
}

// Age is how long ago the current head was first seen.
func (m *Monitor) Age() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now().Sub(m.seen)
}

// Check returns nil when the chain is alive, else why not.
func (m *Monitor) Check() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failure != "" {
		return fmt.Errorf("consensus failed: %s", m.failure)
	}
	age := m.now().Sub(m.seen)
	if age <= m.maxAge {
		return nil
	}
	var last string
	switch {
	case !m.polled:
		last = "no chain head read yet"
	case m.head.Height == 0:
		last = "no block committed yet"
	default:
		last = fmt.Sprintf("last block %d", m.head.Height)
		if !m.head.Time.IsZero() {
			last += " (block time " + m.head.Time.UTC().Format(time.RFC3339) + ")"
		}
	}
	reason := fmt.Sprintf("consensus stalled: %s, no new block for %s, more than %s (%s)",
		last, age.Round(10*time.Millisecond), m.maxAge, m.what)
	if m.err != nil {
		reason += "; chain head: " + m.err.Error()
	}
	return fmt.Errorf("%s", reason)
}

// ServeHTTP answers "ok" (200), or "unhealthy: <reason>" (503).
func (m *Monitor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := m.Check(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "unhealthy: %v\n", err)
		return
	}
	w.Write([]byte("ok\n"))
}

// Register adds the gauges agora_chain_head_age_seconds (how long since a
// new block was seen) and agora_chain_healthy (1 or 0) to reg.
func (m *Monitor) Register(reg *prometheus.Registry) {
	if reg == nil {
		return
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "agora", Subsystem: "chain", Name: "head_age_seconds",
			Help: "Seconds since a new block was last seen."}, func() float64 { return m.Age().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "agora", Subsystem: "chain", Name: "healthy",
			Help: "1 while blocks are being committed, 0 once consensus has stalled or failed (see /healthz)."}, func() float64 {
			if m.Check() != nil {
				return 0
			}
			return 1
		}),
	)
}

// StatusFunc is a node RPC client's status call (client.Client.Status).
type StatusFunc func(ctx context.Context) (*ctypes.ResultStatus, error)

// FromStatus is a Source reading a node's head over its RPC, for the roles
// that run beside a node rather than in it.
func FromStatus(status StatusFunc) Source {
	return func(ctx context.Context) (Head, error) {
		st, err := status(ctx)
		if err != nil {
			return Head{}, fmt.Errorf("node status: %w", err)
		}
		return Head{Height: st.SyncInfo.LatestBlockHeight, Time: st.SyncInfo.LatestBlockTime}, nil
	}
}
