// Package market holds the end-to-end tests of Agora's markets: compute
// jobs (training among them), data and storage. They are a package apart
// from e2e so that go test runs the two halves of the end-to-end tests at
// the same time; what both share is in testutil/e2eutil.
package market

import (
	"testing"

	// The subprocess tests run a binary built from cmd/agora, which is
	// cmd/agora/cli and what it imports: importing it here makes the test
	// cache see a change anywhere in that binary (it would otherwise
	// replay a pass of the old binary).
	_ "github.com/agoranet/agora/cmd/agora/cli"
	"github.com/agoranet/agora/testutil/e2eutil"
)

func TestMain(m *testing.M) { e2eutil.Main(m) }
