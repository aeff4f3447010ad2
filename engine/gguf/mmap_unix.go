//go:build !wasip1

package gguf

import (
	"os"
	"syscall"
)

// mapFile memory-maps size bytes of f read-only: tensor data is read in
// place and only the pages touched are resident.
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	b, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return b, func() error { return syscall.Munmap(b) }, nil
}
