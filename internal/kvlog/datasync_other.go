//go:build !(linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || 386 || arm))

package kvlog

import (
	"os"
)

// dataSyncer makes a file's written data durable (see datasync_aio.go;
// elsewhere — other systems, big-endian Linux — it is a plain sync).
type dataSyncer struct {
	plain  bool
	viaAIO int // always 0 here
}

func newDataSyncer() *dataSyncer { return &dataSyncer{plain: true} }

func (s *dataSyncer) fdatasync(f *os.File, async bool) error { return f.Sync() }

func (s *dataSyncer) close() {}
