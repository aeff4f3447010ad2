//go:build wasip1

package gguf

import (
	"io"
	"os"
)

// mapFile reads size bytes of f into memory: WASI has no mmap (a compute
// job that loads a model, such as a training job starting from a base
// GGUF, holds it in its linear memory).
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, nil, err
	}
	return b, func() error { return nil }, nil
}
