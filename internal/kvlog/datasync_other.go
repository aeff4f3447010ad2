//go:build !linux

package kvlog

import (
	"os"
)

// dataSyncer makes a file's written data durable (see datasync_linux.go;
// elsewhere it is a plain sync).
type dataSyncer struct{}

func newDataSyncer() *dataSyncer { return &dataSyncer{} }

func (s *dataSyncer) fdatasync(f *os.File, async bool) error { return f.Sync() }

func (s *dataSyncer) close() {}
