// Package market holds the end-to-end tests of Agora's markets: compute
// jobs (training among them) and data (storage deals are in e2e, for
// balance). They are a package apart
// from e2e so that go test runs the two halves of the end-to-end tests at
// the same time; what both share is in testutil/e2eutil.
package market

import (
	"testing"

	_ "github.com/agoranet/agora/cmd/agora/cli" // for the test cache: see e2eutil.Main
	"github.com/agoranet/agora/testutil/e2eutil"
)

// agoraBin is the binary e2eutil.Main built, for the tests that start it
// themselves.
var agoraBin string

func TestMain(m *testing.M) { e2eutil.Main(m, &agoraBin) }
