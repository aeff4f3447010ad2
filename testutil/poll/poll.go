// Package poll is the one way tests wait: on a condition, polled, with a
// deadline and a failure that says what was awaited — never a fixed sleep.
package poll

import (
	"testing"
	"time"
)

// Interval is how often a condition is polled.
const Interval = 25 * time.Millisecond

// Until polls cond until it holds, failing t after timeout with what was
// awaited and cond's last word (why it did not hold yet).
func Until(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	if err := Wait(timeout, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// True is Until for a condition with nothing to say.
func True(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	Until(t, timeout, what, func() (bool, string) { return cond(), "" })
}

// Wait polls cond until it holds or timeout passes; then it returns an
// error naming the timeout and cond's last word. For helpers that report
// instead of failing a test (from a goroutine, say).
func Wait(timeout time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			if why == "" {
				return &TimeoutError{Timeout: timeout}
			}
			return &TimeoutError{Timeout: timeout, Last: why}
		}
		time.Sleep(Interval)
	}
}

// TimeoutError is Wait's error.
type TimeoutError struct {
	Timeout time.Duration
	Last    string
}

func (e *TimeoutError) Error() string {
	if e.Last == "" {
		return "not within " + e.Timeout.String()
	}
	return "not within " + e.Timeout.String() + " (last: " + e.Last + ")"
}
