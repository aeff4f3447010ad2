// Package dirlock gives every lock an agora process takes on its directories
// one error when another process holds it: the node's home lock (a flock on
// data/agora.lock, which records its holder's pid) and the Pebble stores'
// LOCK files (fcntl locks, whose holder the kernel reports). A user running
// `agora gateway start` on a home `agora up` holds reads the same sentence
// as one running a second `agora start`, naming the directory and the pid.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// HeldError says another process (PID, 0 if unknown) holds Dir's lock.
type HeldError struct {
	Dir string
	PID int
}

func (e *HeldError) Error() string {
	pid := ""
	if e.PID > 0 {
		pid = fmt.Sprintf(" (pid %d)", e.PID)
	}
	return fmt.Sprintf("agora is already running on %s%s: stop it first, or use another --home", e.Dir, pid)
}

// Flock takes the exclusive lock on the file path without waiting and writes
// this process's pid into it, for the error a second process gets. dir is
// what the lock guards, named in that error.
func Flock(path, dir string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &HeldError{Dir: dir, PID: pidIn(path)}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The pid is informational: a lock without it still locks.
	if f.Truncate(0) == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// Unlock releases a lock Flock took and closes its file.
func Unlock(f *os.File) error {
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return f.Close()
}

// pidIn reads the pid a holder wrote into the lock file (0 if none yet).
func pidIn(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Pebble turns the error of opening the Pebble store in dir into a
// HeldError when the store's LOCK is what failed: held by another process
// (the fcntl lock's EAGAIN or EACCES, confirmed by asking the kernel for its
// holder) or by this one (Pebble's own check). Other errors pass unchanged.
func Pebble(dir string, err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "lock held by current process") {
		return &HeldError{Dir: dir, PID: os.Getpid()}
	}
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
		if pid := fcntlHolder(filepath.Join(dir, "LOCK")); pid > 0 {
			return &HeldError{Dir: dir, PID: pid}
		}
	}
	return err
}

// fcntlHolder returns the pid of the process holding a write lock on path
// (0 if none, or if it cannot tell).
func fcntlHolder(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil || lk.Type == unix.F_UNLCK {
		return 0
	}
	return int(lk.Pid)
}
