package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/internal/health"
)

// CometBFT recovers a panic in its consensus routine, logs it and halts
// while the process keeps serving: the log line must reach /healthz.
func TestConsensusFailureReachesHealth(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  string
		kv   []any
		want string // "" : still healthy
	}{
		{"a consensus failure", consensusFailure,
			[]any{"err", errors.New("failed to save priv validator state: open data/priv_validator_state.json: too many open files"), "stack", "goroutine 1 ..."},
			"consensus failed: failed to save priv validator state: open data/priv_validator_state.json: too many open files"},
		{"one without an error value", consensusFailure, []any{"stack", "..."}, "consensus failed: CometBFT logged a consensus failure (no error given)"},
		{"another error", "Error dialing peer", []any{"err", errors.New("connection refused")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mon := health.New(func(context.Context) (health.Head, error) { return health.Head{Height: 5, Time: time.Now()}, nil }, time.Hour, "health.max_block_age")
			mon.Poll(context.Background())
			l := cometLogger{l: slog.New(slog.NewTextHandler(io.Discard, nil)), onFailure: mon.Fail}
			// CometBFT logs through loggers derived with With.
			l.With("module", "consensus").Error(tc.msg, tc.kv...)
			err := mon.Check()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unhealthy after %q: %v", tc.msg, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("health = %v, want %q", err, tc.want)
			}
		})
	}
}
