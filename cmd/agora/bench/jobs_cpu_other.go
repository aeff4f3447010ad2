//go:build !linux

package bench

import "time"

// threadCPU falls back to the wall clock where the thread's CPU time is
// not available.
func threadCPU(f func() error) (time.Duration, error) {
	t0 := time.Now()
	err := f()
	return time.Since(t0), err
}
