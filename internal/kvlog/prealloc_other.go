//go:build !linux

package kvlog

import "os"

// preallocate does nothing here: the segment grows as written, and each
// sync also flushes its size (correct, a little slower than on Linux).
func preallocate(f *os.File, size int64) error { return nil }
