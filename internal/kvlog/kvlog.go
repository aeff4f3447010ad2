// Package kvlog opens Pebble stores for the daemons' own state, with
// Pebble's informational logging silenced (errors still surface as errors).
package kvlog

import (
	"fmt"

	"github.com/cockroachdb/pebble"
)

type quiet struct{}

func (quiet) Infof(string, ...interface{})  {}
func (quiet) Errorf(string, ...interface{}) {}
func (quiet) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf(format, args...))
}

// Open opens (or creates) a Pebble store in dir.
func Open(dir string) (*pebble.DB, error) {
	return pebble.Open(dir, &pebble.Options{Logger: quiet{}})
}

// Options are Pebble options with the quiet logger, for stores opened elsewhere.
func Options() *pebble.Options { return &pebble.Options{Logger: quiet{}} }
