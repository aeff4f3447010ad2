//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || 386 || arm)

package kvlog

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dataSyncer makes a file's written data durable, like fdatasync(2), but
// without holding one of the Go scheduler's Ps while the disk works.
//
// Why: a goroutine blocked in fdatasync keeps its P until the runtime's
// monitor notices the syscall and hands the P on, tens of microseconds
// later at best; on a two-core machine whose request path syncs a few
// thousand times a second that left a fifth of the CPU idle under load
// (GOMAXPROCS=3 on the same two cores: +30 % gateway throughput). Here the
// sync is submitted through Linux AIO (IOCB_CMD_FDSYNC, served by a kernel
// worker since Linux 4.18) with an eventfd for completion, and the caller
// waits for the eventfd on the network poller, so its P runs other
// goroutines meanwhile.
//
// Where AIO is unavailable (seccomp, an old kernel, a file system that
// refuses it), it falls back to a plain fdatasync for good. One caller at a
// time: the log's leader.
type dataSyncer struct {
	ctx    uintptr  // aio_context_t
	ev     *os.File // the eventfd, non-blocking, on the network poller
	evFD   int
	plain  bool // fall back to fdatasync(2)
	events [1]ioEvent
	viaAIO int // syncs completed through AIO (what the tests check)
}

// iocb is struct iocb of linux/aio_abi.h (64 bytes; little-endian layout).
type iocb struct {
	data      uint64
	key       uint32
	rwFlags   int32
	opcode    uint16
	reqPrio   int16
	fildes    uint32
	buf       uint64
	nbytes    uint64
	offset    int64
	reserved2 uint64
	flags     uint32
	resFD     uint32
}

// ioEvent is struct io_event.
type ioEvent struct {
	data uint64
	obj  uint64
	res  int64
	res2 int64
}

const (
	iocbCmdFdsync = 3      // IOCB_CMD_FDSYNC
	iocbFlagResFD = 1 << 0 // IOCB_FLAG_RESFD: signal aio_resfd on completion
)

func newDataSyncer() *dataSyncer {
	s := &dataSyncer{plain: true}
	if os.Getenv("AGORA_PLAIN_FDATASYNC") != "" { // for A/B measurements
		return s
	}
	var ctx uintptr
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		return s
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Syscall(unix.SYS_IO_DESTROY, ctx, 0, 0)
		return s
	}
	s.ctx, s.evFD, s.ev, s.plain = ctx, efd, os.NewFile(uintptr(efd), "kvlog-aio-eventfd"), false
	return s
}

// fdatasync makes f's data durable; through AIO only if async (a lone
// writer is better served by a blocking fdatasync: with nothing else to
// run, the P would idle anyway, and the AIO round trip through a kernel
// worker and the poller costs ≈ 40 µs more per sync on this VM).
func (s *dataSyncer) fdatasync(f *os.File, async bool) error {
	fd := int(f.Fd())
	if s.plain || !async {
		return unix.Fdatasync(fd)
	}
	cb := iocb{opcode: iocbCmdFdsync, fildes: uint32(fd), flags: iocbFlagResFD, resFD: uint32(s.evFD)}
	cbs := [1]*iocb{&cb}
	// The kernel copies the iocb during the call.
	n, _, e := unix.Syscall(unix.SYS_IO_SUBMIT, s.ctx, 1, uintptr(unsafe.Pointer(&cbs[0])))
	switch {
	case e == unix.EINVAL:
		// This file system has no AIO fsync; nothing was queued.
		s.plain = true
		return unix.Fdatasync(fd)
	case e != 0 || n != 1:
		// Nothing was queued (EAGAIN: out of AIO resources; EBADF …).
		return unix.Fdatasync(fd)
	}
	var cnt [8]byte
	for {
		_, err := s.ev.Read(cnt[:])
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EINTR) {
			// The sync may still be in flight: wait for it in io_getevents.
			return s.reap(fmt.Errorf("waiting for an AIO fdatasync: %w", err))
		}
	}
	if err := s.reap(nil); err != nil {
		return err
	}
	s.viaAIO++
	return nil
}

// reap collects the one completion (at once if the eventfd has signalled
// it, else blocking until it comes).
func (s *dataSyncer) reap(waitErr error) error {
	for {
		n, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, s.ctx, 1, 1, uintptr(unsafe.Pointer(&s.events[0])), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return errors.Join(waitErr, fmt.Errorf("io_getevents: %w", e))
		}
		if n != 1 {
			return errors.Join(waitErr, errors.New("io_getevents: the AIO fdatasync did not complete"))
		}
		break
	}
	if res := s.events[0].res; res < 0 {
		return syscall.Errno(-res)
	}
	return waitErr
}

func (s *dataSyncer) close() {
	if s.ev != nil {
		s.ev.Close()
		unix.Syscall(unix.SYS_IO_DESTROY, s.ctx, 0, 0)
		s.ev = nil
	}
}
