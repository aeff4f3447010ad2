package bench

import (
	"runtime"
	"syscall"
	"time"
)

// threadCPU measures f by the CPU time (user + system) of the OS thread
// running it, which other processes' load does not inflate as it does the
// wall clock; the goroutine is locked to its thread meanwhile (wazero runs
// a module's code and its host calls on the calling goroutine).
func threadCPU(f func() error) (time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var a, b syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD
	if err := syscall.Getrusage(rusageThread, &a); err != nil {
		return 0, err
	}
	err := f()
	if err2 := syscall.Getrusage(rusageThread, &b); err2 != nil && err == nil {
		err = err2
	}
	cpu := func(r syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	return cpu(b) - cpu(a), err
}
