package node

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	cmtlog "github.com/cometbft/cometbft/libs/log"
)

// cometLogger adapts slog to CometBFT's logger interface.
type cometLogger struct {
	l *slog.Logger
	// onFailure hears of a consensus failure: CometBFT recovers the panic,
	// logs it and stops its consensus routine while the process (and every
	// server in it) keeps running, so the log line is the only sign.
	onFailure func(reason string)
}

func (c cometLogger) Debug(msg string, kv ...any) { c.l.Debug(msg, kv...) }
func (c cometLogger) Info(msg string, kv ...any)  { c.l.Info(msg, kv...) }
func (c cometLogger) Error(msg string, kv ...any) {
	if msg == consensusFailure && c.onFailure != nil {
		c.onFailure(failureReason(kv))
	}
	if isShutdownNoise(msg, kv) {
		c.l.Debug(msg, kv...)
		return
	}
	c.l.Error(msg, kv...)
}

// isShutdownNoise recognises the errors CometBFT logs when its listeners are
// closed during a normal stop, so a clean shutdown does not print errors.
func isShutdownNoise(msg string, kv []any) bool {
	if msg == "Stopped accept routine, as transport is closed" {
		return true
	}
	for _, v := range kv {
		if err, ok := v.(error); ok && strings.Contains(err.Error(), "use of closed network connection") {
			return true
		}
	}
	return false
}
func (c cometLogger) With(kv ...any) cmtlog.Logger {
	return cometLogger{l: c.l.With(kv...), onFailure: c.onFailure}
}

// consensusFailure is the message CometBFT's consensus state logs when it
// recovers from a panic and halts.
const consensusFailure = "CONSENSUS FAILURE!!!"

// failureReason is the "err" value of a consensus failure's key-values.
func failureReason(kv []any) string {
	for i := 0; i+1 < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok && k == "err" {
			return fmt.Sprint(kv[i+1])
		}
	}
	return "CometBFT logged a consensus failure (no error given)"
}

// quietHandler lowers CometBFT's chatty info logs to debug, so an operator
// sees our logs and CometBFT's warnings and errors at the default level.
type quietHandler struct{ slog.Handler }

func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo {
		r.Level = slog.LevelDebug
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if l == slog.LevelInfo {
		return h.Handler.Enabled(ctx, slog.LevelDebug)
	}
	return h.Handler.Enabled(ctx, l)
}

func (h quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(as)}
}

func (h quietHandler) WithGroup(n string) slog.Handler { return quietHandler{h.Handler.WithGroup(n)} }
