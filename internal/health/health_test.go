package health

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fake is a chain head and a clock the test moves.
type fake struct {
	head Head
	err  error
	now  time.Time
}

func newFake(t0 time.Time, h Head, maxAge time.Duration) (*fake, *Monitor) {
	f := &fake{head: h, now: t0}
	m := New(func(context.Context) (Head, error) { return f.head, f.err }, maxAge, "health.max_block_age")
	m.now = func() time.Time { return f.now }
	m.seen = t0
	return f, m
}

func get(t *testing.T, m *Monitor) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestMonitor(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	const maxAge = 5 * time.Second
	for _, tc := range []struct {
		name string
		run  func(f *fake, m *Monitor)
		code int
		want []string
	}{
		{"blocks keep coming", func(f *fake, m *Monitor) {
			for i := 0; i < 10; i++ {
				f.now = f.now.Add(time.Second)
				f.head = Head{Height: f.head.Height + 1, Time: f.now}
				m.Poll(context.Background())
			}
		}, 200, []string{"ok\n"}},
		{"no block for longer than the maximum age", func(f *fake, m *Monitor) {
			m.Poll(context.Background())
			f.now = f.now.Add(time.Second)
			f.head = Head{Height: 12, Time: f.now}
			m.Poll(context.Background())
			for i := 0; i < 6; i++ { // 6 s more without a new block
				f.now = f.now.Add(time.Second)
				m.Poll(context.Background())
			}
		}, 503, []string{"unhealthy: consensus stalled: last block 12 (block time 2026-12-02T12:00:01Z), no new block for 6s, more than 5s (health.max_block_age)"}},
		{"a stall shorter than the maximum age", func(f *fake, m *Monitor) {
			m.Poll(context.Background())
			f.now = f.now.Add(maxAge)
			m.Poll(context.Background())
		}, 200, []string{"ok\n"}},
		{"a head already old at the first look", func(f *fake, m *Monitor) {
			f.head = Head{Height: 40, Time: t0.Add(-time.Hour)}
			m.Poll(context.Background())
		}, 503, []string{"last block 40", "no new block for 1h0m0s"}},
		{"the node does not answer", func(f *fake, m *Monitor) {
			m.Poll(context.Background())
			f.err = errors.New("node status: connection refused")
			f.now = f.now.Add(10 * time.Second)
			m.Poll(context.Background())
		}, 503, []string{"consensus stalled: last block 7", "chain head: node status: connection refused"}},
		{"consensus failed", func(f *fake, m *Monitor) {
			m.Poll(context.Background())
			m.Fail("open data/priv_validator_state.json: too many open files")
			f.now = f.now.Add(time.Second)
			f.head.Height++ // even with a block seen since: CometBFT does not resume
			m.Poll(context.Background())
		}, 503, []string{"unhealthy: consensus failed: open data/priv_validator_state.json: too many open files"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, m := newFake(t0, Head{Height: 7, Time: t0}, maxAge)
			tc.run(f, m)
			code, body := get(t, m)
			if code != tc.code {
				t.Fatalf("status %d (%q), want %d", code, body, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Fatalf("body %q lacks %q", body, w)
				}
			}
		})
	}
}

func TestDefaultMaxAge(t *testing.T) {
	for _, tc := range []struct{ block, want time.Duration }{
		{time.Second, 10 * time.Second},
		{200 * time.Millisecond, 10 * time.Second},
		{5 * time.Second, 50 * time.Second},
	} {
		if got := DefaultMaxAge(tc.block); got != tc.want {
			t.Errorf("DefaultMaxAge(%s) = %s, want %s", tc.block, got, tc.want)
		}
	}
}

var _ http.Handler = (*Monitor)(nil)

// Roles built without metrics pass a nil registry.
func TestRegisterNilRegistry(t *testing.T) {
	_, m := newFake(time.Now(), Head{Height: 1}, time.Second)
	var reg *prometheus.Registry
	m.Register(reg)
	reg = prometheus.NewRegistry()
	m.Register(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if strings.Join(names, ",") != "agora_chain_head_age_seconds,agora_chain_healthy" {
		t.Fatalf("metrics %v", names)
	}
}
