// Package kvlog opens Pebble stores for the daemons' own state, with
// Pebble's informational logging silenced (errors still surface as errors).
package kvlog

import (
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/agoranet/agora/internal/dirlock"
)

type quiet struct{}

func (quiet) Infof(string, ...interface{})  {}
func (quiet) Errorf(string, ...interface{}) {}
func (quiet) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf(format, args...))
}

// Open opens (or creates) a Pebble store in dir. A store another process
// has open fails with a dirlock.HeldError naming that process.
func Open(dir string) (*pebble.DB, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quiet{}})
	return db, dirlock.Pebble(dir, err)
}

// Options are Pebble options with the quiet logger, for stores opened elsewhere.
func Options() *pebble.Options { return &pebble.Options{Logger: quiet{}} }
